"""The zoo's holdout targets: new to the committed zoo, deterministic, and checked against its journal."""

import json
from pathlib import Path

import numpy as np

from services.common.diffusion.data import render_synthetic
from services.common.diffusion.zoo import TARGET_DATASETS
from services.selection.holdout import CHECKED, DEFAULT_JOURNAL, WAVES, holdout_targets


def test_holdout_targets_are_new_deterministic_and_all_measured_in_the_journal():
    targets = holdout_targets()
    assert len({t.name for t in targets}) == 10 * len(WAVES)
    assert not {t.name for t in targets} & {t.name for t in TARGET_DATASETS}  # never seen by the committed records
    assert holdout_targets() == targets  # registering again is a no-op
    assert holdout_targets((1,)) == targets[:10]  # the first wave as its journal knows it
    assert [t.seed for t in targets[:10]] == list(range(5000, 5010)) and targets[0].name == "target-ho-digits-warm-white"
    for t in targets:
        a, caps = render_synthetic(t.domain, n=3, seed=t.seed)
        b, _ = render_synthetic(t.domain, n=3, seed=t.seed)
        assert np.array_equal(a, b) and all(caps)
    journal = Path(__file__).resolve().parents[2] / DEFAULT_JOURNAL
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    pairs = {(r["model"], r["dataset"]) for r in rows}
    models = {r["model"] for r in rows}
    assert len(models) == 10 and len(pairs) == len(rows) == 10 * (len(targets) + len(CHECKED))


def test_the_holdout_bench_refuses_an_unknown_ablation_or_wave_before_any_fine_tuning(monkeypatch):
    from typer.testing import CliRunner

    from services import selection
    from services.cli import app

    calls = []
    monkeypatch.setattr(selection.holdout, "run_pairs", lambda *a, **kw: calls.append(a))
    result = CliRunner().invoke(app, ["bench", "zoo-holdout", "--ablation", "mc_no_graph,mc_nope"])
    assert result.exit_code == 2 and "mc_nope" in result.output
    for waves in ("3", "1,x", ""):
        result = CliRunner().invoke(app, ["bench", "zoo-holdout", "--waves", waves])
        assert result.exit_code == 2 and "--waves" in result.output, result.output
    assert calls == []


def test_the_holdout_table_pairs_the_primary_with_each_row():
    from services.selection.bench import PRIMARY, paired_comparisons
    from services.selection.holdout import table

    targets = [f"t{i}" for i in range(5)]

    def method(pearson, rel):
        per = {t: {"pearson": pearson + 0.01 * i, "spearman": 0.0, "rel@1": rel, "hit@1": float(rel == 1.0)}
               for i, t in enumerate(targets)}
        return {**{k: float(np.mean([v[k] for v in per.values()])) for k in ("pearson", "spearman", "rel@1", "hit@1")},
                "per_target": per}

    methods = {PRIMARY: method(0.9, 1.0), "best_on_average": method(0.8, 0.95), "mc_no_graph": method(0.9, 1.0)}
    report = {"methods": methods, "paired": paired_comparisons(methods)}
    text = table(report)
    assert f"{PRIMARY} - best_on_average: pearson +0.100" in text
    assert f"{PRIMARY} - mc_no_graph: pearson +0.000" in text and "ties 5" in text
    assert "paired" not in table({"methods": methods})
    assert "wave" not in table({"methods": methods, "by_wave": {1: methods}})  # one wave: its table is the table
    by_wave = {1: {PRIMARY: method(0.9, 1.0)}, 2: {PRIMARY: method(0.5, 0.8)}}
    assert "wave 2 alone:\nmethod" in table({"methods": methods, "by_wave": by_wave})
