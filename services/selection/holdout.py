"""`atelier bench zoo-holdout`: does selection on the T2I zoo hold on targets it has never seen?

Ten new targets, variants of the zoo's renderer families with palettes and backgrounds no
committed target has, were defined before any of their results was measured (HOLDOUT_DOMAINS; one
definition was mended before any pair ran: a cool palette without the navy of its navy
background). Every zoo model is fine-tuned on each with the zoo's pair budget in fp32 (memlean
emulates bf16 on CPUs without it, 9-14x slower; two committed targets are measured the same way
to show that fp32 keeps the committed order), resumable through a journal. The ranker is then fitted on the committed
records (all 32 targets) and ranks each new target as a new dataset, from its profile's distances
and coverage divergences only, beside the zero-training rules and best-on-average.

A second wave of ten (wave 2) was added on 2026-12-08 because ten targets left the first wave's
result a doubt: one more target per source family, with a palette, background or layout that no
committed target and no first-wave target of that family has, written down in its own commit
before any of its pairs ran. `--waves` picks which waves to fine-tune and rank (default: all).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_JOURNAL = Path("bench/data/t2i-zoo-holdout/runs.jsonl")
ZOO_DIR = Path("bench/data/t2i-zoo")
CHECKED = ("target-digits-ink", "target-blobs-warm-white")  # committed targets re-measured in fp32


WAVES = (1, 2)


def holdout_domains(wave: int = 1) -> list[tuple[str, str, dict]]:
    """Wave `wave`'s ten (name, renderer family, renderer parameters)."""
    from services.common.diffusion.data import COOL, WARM
    from services.common.diffusion.zoo import EARTH, NEON, PASTEL

    if wave == 2:  # one a source family, each in a combination its family has in no target before it
        return [
            ("ho2-shapes-earth-gray", "shapes", {"colors": EARTH, "backgrounds": ("gray",)}),
            ("ho2-stripes-neon-diagonal", "stripes", {"colors": NEON, "orientations": ("diagonal",)}),
            ("ho2-digits-pastel-gray", "digits", {"colors": PASTEL, "backgrounds": ("gray",)}),
            ("ho2-checker-earth-coarse", "checkerboard", {"colors": EARTH, "cells": (2, 3)}),
            ("ho2-noise-warm-coarse", "noise", {"colors": WARM, "scales": ("coarse",)}),
            ("ho2-gradients-neon-linear", "gradient", {"colors": NEON, "directions": ("left to right", "diagonal")}),
            ("ho2-rings-neon-navy", "rings", {"colors": NEON, "backgrounds": ("navy",)}),
            ("ho2-blobs-earth-navy", "blobs", {"colors": EARTH, "backgrounds": ("navy",), "max_blobs": 3}),
            ("ho2-dots-neon-black", "dots", {"colors": NEON, "backgrounds": ("black",)}),
            ("ho2-photo-flower-gray", "photo", {"images": ("flower",), "crop": (0.3, 0.6), "gray": True}),
        ]
    if wave != 1:
        raise ValueError(f"unknown holdout wave {wave}; expected one of {WAVES}")
    return [
        ("ho-digits-warm-white", "digits", {"colors": WARM, "backgrounds": ("white",)}),
        ("ho-digits-cool-navy", "digits", {"colors": tuple(c for c in COOL if c != "navy"), "backgrounds": ("navy",)}),
        ("ho-blobs-cool-black", "blobs", {"colors": COOL, "backgrounds": ("black",)}),
        ("ho-blobs-neon-gray", "blobs", {"colors": NEON, "backgrounds": ("gray",)}),
        ("ho-shapes-neon-black", "shapes", {"colors": NEON, "backgrounds": ("black",)}),
        ("ho-rings-pastel-white", "rings", {"colors": PASTEL, "backgrounds": ("white",)}),
        ("ho-stripes-earth", "stripes", {"colors": EARTH}),
        ("ho-checker-pastel", "checkerboard", {"colors": PASTEL}),
        ("ho-noise-neon", "noise", {"colors": NEON}),
        ("ho-dots-earth-white", "dots", {"colors": EARTH, "backgrounds": ("white",)}),
    ]


def holdout_targets(waves: Sequence[int] = WAVES):
    """The waves' targets (ZooDataset specs, ten a wave), their domains registered once per process."""
    from services.common.diffusion.data import SYNTHETIC_DOMAINS, register_domain
    from services.common.diffusion.zoo import TARGET_N, ZooDataset

    targets = []
    for wave in waves:
        domains = holdout_domains(wave)
        for i, (name, family, params) in enumerate(domains):
            if name not in SYNTHETIC_DOMAINS:
                register_domain(name, family, f"holdout variant of {family}", **params)
            targets.append(ZooDataset(f"target-{name}", name, TARGET_N, 1000 * (4 + wave) + i))
    return targets


def _finetune(args: tuple[str, str, str]) -> dict[str, Any]:
    model_dir, dataset, folder = args
    import torch
    from huggingface_hub.utils import disable_progress_bars

    from services.common.diffusion.zoo import PairBudget, finetune_pair

    torch.set_num_threads(1)
    disable_progress_bars()  # else two transformers bars a pair, between the bench's own lines
    holdout_targets()  # a spawned process registers the domains anew
    r = finetune_pair(model_dir, folder, replace(PairBudget(), mode="fp32"), seed=0)
    return {"model": Path(model_dir).name, "dataset": dataset, "value": r["final_val_loss"], "seconds": r["seconds"]}


def run_pairs(data_dir: Path, journal: Path, *, waves: Sequence[int] = WAVES, workers: int = 2,
              say: Callable[[str], None] = print) -> None:
    """Fine-tune every (zoo model, holdout target of `waves` or checked target) pair not in the journal."""
    from multiprocessing import get_context

    from services.common.diffusion.zoo import dataset_spec, generate_target_dataset

    folders = {}
    for spec in [*holdout_targets(waves), *(dataset_spec(n) for n in CHECKED)]:
        folder = data_dir / spec.name
        if not (folder / "metadata.jsonl").is_file():
            generate_target_dataset(spec, folder, overwrite=True)
        folders[spec.name] = folder
    done = set()
    if journal.exists():
        done = {(r["model"], r["dataset"]) for r in map(json.loads, journal.read_text().splitlines())}
    models = sorted(p for p in (ZOO_DIR / "models").iterdir() if p.is_dir())
    todo = [(str(m), n, str(f)) for n, f in folders.items() for m in models if (m.name, n) not in done]
    say(f"{len(todo)} pairs to fine-tune ({len(done)} in the journal)")
    journal.parent.mkdir(parents=True, exist_ok=True)
    with get_context("spawn").Pool(workers) as pool, journal.open("a") as fh:
        for i, r in enumerate(pool.imap_unordered(_finetune, todo), 1):
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            say(f"[{i}/{len(todo)}] {r['model']} on {r['dataset']}: {r['value']:.5f} ({r['seconds']:.1f} s)")


def evaluate(data_dir: Path, journal: Path, *, waves: Sequence[int] = WAVES, ablations: Sequence[str] = (),
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """The methods on the holdout targets (truth: the journal), with the fp32 check on committed targets;
    `ablations` (names of bench.ablation_methods) rank beside the primary, as it does (with coverage)."""
    import pandas as pd
    from scipy import stats

    from services.gateway.zoobuild import ensure_datasets, make_plan
    from services.selection.bench import PRIMARY, PRIMARY_CONFIG, ablation_methods, check_ablations, paired_comparisons
    from services.selection.mc.evaluate import lgbm_without_graph, selection_metrics
    from services.selection.mc.graph import tables_from_zoo
    from services.selection.mc.predictor import Ranker
    from services.selection.mc.profile import PixelStatsEncoder, packaged_sentence_encoder, profile_imagefolder
    from services.selection.mc.records import load_benchmark_dir
    from services.selection.mc.similarity import profile_coverage, profile_distances

    ablations = check_ablations(ablations)  # before any work
    started = time.perf_counter()
    truth = pd.DataFrame([json.loads(x) for x in journal.read_text().splitlines()]).pivot_table(
        index="dataset", columns="model", values="value")
    committed = pd.read_csv(ZOO_DIR / "records.csv").pivot_table(index="finetuned_dataset", columns="model", values="value")
    check = {t: {"spearman_fp32_vs_committed": float(stats.spearmanr(truth.loc[t], committed.loc[t, truth.columns])[0]),
                 "best_fp32": truth.loc[t].idxmin(), "best_committed": committed.loc[t, truth.columns].idxmin()}
             for t in CHECKED if t in truth.index}
    # the profiles the zoo build made (same folders, same encoders), and the new targets'
    targets = [s.name for s in holdout_targets(waves)]
    say(f"profiling the zoo's 42 datasets and the {len(targets)} new targets")
    encoder, captions = PixelStatsEncoder(), packaged_sentence_encoder()
    folders = ensure_datasets(make_plan(), data_dir)
    folders.update({t: data_dir / t for t in targets})
    profiles = {n: profile_imagefolder(f, image_encoder=encoder, caption_encoder=captions).embedding
                for n, f in folders.items()}
    zoo, _ = load_benchmark_dir(ZOO_DIR)
    tables = tables_from_zoo(zoo)
    pretraining = {m: row.pretraining_data for m, row in zoo.models.items()}
    say("fitting the primary and LightGBM without the graph on the committed records")
    rankers = {PRIMARY: Ranker(PRIMARY_CONFIG).fit(zoo), "lightgbm_no_graph": Ranker(lgbm_without_graph().config).fit(zoo)}
    every = ablation_methods()
    for name in ablations:
        say(f"fitting the ablation {name}")
        rankers[name] = Ranker(every[name].config).fit(zoo)
    modality = {"atelier_profile": "combined", "atelier_profile_image": "image", "atelier_profile_caption": "caption"}
    known = [n for n in profiles if n in tables.dist.index]
    per: dict[str, dict[str, dict]] = {}
    for t in targets:
        distances = {n: profile_distances(profiles[t], profiles[n]) for n in known}
        coverage = {src: profile_coverage(profiles[t], profiles[src]) for src in set(pretraining.values())}
        truth_t = -truth.loc[t].reindex(tables.models).to_numpy(dtype=float)  # oriented: higher is better
        scores = {
            "best_on_average": tables.norm.mean(axis=1).to_numpy(dtype=float),
            "nearest_pretraining_frechet": np.array([-distances[pretraining[m]]["combined"] for m in tables.models]),
            "nearest_pretraining_coverage": np.array([-coverage[pretraining[m]] for m in tables.models]),
        }
        for name, ranker in rankers.items():
            measure = modality.get(ranker.config.similarity, "combined")
            dist = {n: v[measure] for n, v in distances.items()}
            variants = ((name, coverage),) if name in ablations else ((name, coverage), (f"{name}_without_coverage", None))
            for label, cov in variants:
                ranked = ranker.rank(tables, f"{t}:{label}", distances=dist, coverage=cov, k=None)
                by_model = {r.model: r.score for r in ranked}
                scores[label] = np.array([by_model[m] for m in tables.models])
        per[t] = {}
        for name, s in scores.items():
            metrics = selection_metrics(s, truth_t)
            per[t][name] = {**metrics, "top": tables.models[int(np.argmax(s))]}
        say(f"{t}: best {truth.loc[t].idxmin()}; " + ", ".join(f"{n} {v['top']}" for n, v in per[t].items()
                                                            if n in (PRIMARY, "nearest_pretraining_coverage")))
    def means(over: list[str]) -> dict[str, dict[str, float]]:
        return {name: {k: float(np.mean([per[t][name][k] for t in over])) for k in ("pearson", "spearman", "rel@1", "hit@1")}
                for name in per[targets[0]]}

    methods = means(targets)
    for name in methods:
        methods[name]["per_target"] = {t: per[t][name] for t in targets}
    by_wave = {wave: means([s.name for s in holdout_targets((wave,))]) for wave in waves}
    return {"methods": methods, "primary": PRIMARY, "targets": targets, "waves": list(waves), "by_wave": by_wave,
            "fp32_check": check,
            # the primary against the baselines and every other row, paired over the targets
            "paired": paired_comparisons(methods), "ablations": list(ablations),
            "similarity": {n: r.config.similarity for n, r in rankers.items()},
            "budget": "PairBudget with mode fp32", "seconds": time.perf_counter() - started}


def table(report: dict[str, Any]) -> str:
    """The metrics table and, where the report has them, the paired differences of the primary."""
    from services.selection.bench import _comparison_lines, metrics_table

    lines = [metrics_table(report["methods"], name_width=36)]
    if len(report.get("by_wave") or {}) > 1:
        for wave, methods in report["by_wave"].items():
            lines += [f"wave {wave} alone:", metrics_table(methods, name_width=36)]
    if report.get("paired"):
        lines += ["paired differences over targets, mean [95% bootstrap interval]:"]
        lines += ["  " + line for line in _comparison_lines(report["paired"])]
    return "\n".join(lines)
