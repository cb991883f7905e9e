"""The zoo's holdout targets: new to the committed zoo, deterministic, and checked against its journal."""

import json
from pathlib import Path

import numpy as np

from services.common.diffusion.data import render_synthetic
from services.common.diffusion.zoo import TARGET_DATASETS
from services.selection.holdout import CHECKED, DEFAULT_JOURNAL, holdout_targets


def test_holdout_targets_are_new_deterministic_and_all_measured_in_the_journal():
    targets = holdout_targets()
    assert len({t.name for t in targets}) == 10
    assert not {t.name for t in targets} & {t.name for t in TARGET_DATASETS}  # never seen by the committed records
    assert holdout_targets() == targets  # registering again is a no-op
    for t in targets:
        a, caps = render_synthetic(t.domain, n=3, seed=t.seed)
        b, _ = render_synthetic(t.domain, n=3, seed=t.seed)
        assert np.array_equal(a, b) and all(caps)
    journal = Path(__file__).resolve().parents[2] / DEFAULT_JOURNAL
    rows = [json.loads(line) for line in journal.read_text().splitlines()]
    pairs = {(r["model"], r["dataset"]) for r in rows}
    models = {r["model"] for r in rows}
    assert len(models) == 10 and len(pairs) == len(rows) == 10 * (len(targets) + len(CHECKED))
