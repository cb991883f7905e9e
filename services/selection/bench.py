"""`atelier bench selection`: leave-one-dataset-out benchmark of M&C model selection.

Runs on any directory in the TransferGraph format (records.csv, model_config_dataset.csv,
target_dataset_features.csv, corr_domain_similarity_*.csv), loaded through the same
importer the API uses (mc.records).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from .mc.evaluate import (
    best_on_average, leave_one_dataset_out, lgbm_without_graph, nearest_dataset, nearest_pretraining, random_method,
    oracle_ceilings, paired_comparison, ranker_method, similarity_weighted, summarise,
)
from .mc.predictor import FAMILIES, NARROW_PRETRAIN_GRID, Ranker, RankerConfig
from .mc.records import MIN_COMPARING_DATASETS, datasets_comparing_models, load_benchmark_dir, load_published

PUBLISHED_TARGETS = ["stanfordcars", "svhn", "caltech101", "pets", "cifar100", "flowers", "smallnorb_label_elevation", "dtd"]
PRIMARY = "mc_gat"
# The primary is RankerConfig's defaults: a best-on-average / low-rank anchor, corrected by
# LightGBM (model, dataset, evidence and GAT graph-score features), similarity-weighted evidence or
# nearest-dataset transfer with one shrinkage weight, plus graph-score and pretraining-match terms,
# all chosen by grouped inner CV with the one-SE rule; a second blend chosen on rel@1 alone picks the
# first model where the main blend's own rel@1 is more than one SE below that blend's; with several
# similarity methods, the one inner CV scores best; three such rankers with seeds 0-2, scores
# averaged (predictor.py).
PRIMARY_CONFIG = RankerConfig()
BASELINES = ("random", "best_on_average", "nearest_dataset", "nearest_pretraining", "similarity_weighted",
             "lightgbm_no_graph")


def default_methods() -> dict:
    return {
        "random": random_method(0),
        "best_on_average": best_on_average,
        "nearest_dataset": nearest_dataset,
        "nearest_pretraining": nearest_pretraining,
        "similarity_weighted": similarity_weighted,
        "lightgbm_no_graph": lgbm_without_graph(),
        PRIMARY: ranker_method(PRIMARY_CONFIG),
    }


def _without(*families: str, **changes) -> RankerConfig:
    return replace(PRIMARY_CONFIG, families=tuple(f for f in PRIMARY_CONFIG.families if f not in families), **changes)


def ablation_methods() -> dict:
    """Each changes one thing of the primary."""
    return {
        "mc_no_graph": ranker_method(_without("graph", embedding="none")),
        "mc_sage": ranker_method(replace(PRIMARY_CONFIG, embedding="sage")),
        "mc_node2vec": ranker_method(replace(PRIMARY_CONFIG, embedding="node2vec")),
        "mc_no_evidence": ranker_method(_without("evidence", priors=(), taus=())),
        "mc_single_seed": ranker_method(replace(PRIMARY_CONFIG, members=1)),
        "mc_source_relative": ranker_method(replace(PRIMARY_CONFIG, families=FAMILIES)),
        "mc_no_model_meta": ranker_method(_without("model")),
        "mc_no_dataset_meta": ranker_method(_without("dataset")),
        "mc_lgbm_only": ranker_method(replace(PRIMARY_CONFIG, blend_grid=(1.0,), corrections=("lgbm",), graph_grid=(0.0,))),
        "mc_lambdarank": ranker_method(replace(PRIMARY_CONFIG, objective="lambdarank")),
        "mc_cv_objective_graph": ranker_method(replace(PRIMARY_CONFIG, objective="auto", select_graph_family=True)),
        "mc_boa_anchor": ranker_method(replace(PRIMARY_CONFIG, priors=("e_mean",))),
        # the anchors before kriging (e_krig stays a LightGBM feature)
        "mc_no_kriging_anchor": ranker_method(replace(PRIMARY_CONFIG, priors=("e_mean", "e_cf1"))),
        "mc_no_one_se": ranker_method(replace(PRIMARY_CONFIG, one_se=False, band_mean=())),
        # the primary averages the one-SE band for its main blend: also for the top blend, or for
        # neither (the simplest blend of each band, the primary until 2026-11-28)
        "mc_band_mean": ranker_method(replace(PRIMARY_CONFIG, band_mean=("main", "top"))),
        "mc_one_se_simplest": ranker_method(replace(PRIMARY_CONFIG, band_mean=())),
        # the top blend's band member best on the main criterion, not its simplest
        "mc_top_by_main": ranker_method(replace(PRIMARY_CONFIG, top_tiebreak="main")),
        # the similarity method chosen on the band mean's own inner-CV criterion
        "mc_band_inner_score": ranker_method(replace(PRIMARY_CONFIG, band_inner_score=True)),
        # the top blend's first pick judged among every model of a training dataset, as at rank
        # time, where it has a result; not among the models with results only
        "mc_top_judged_on_all": ranker_method(replace(PRIMARY_CONFIG, top_judged_on="all")),
        # the same, an unjudged pick counted as a random observed model rather than dropped
        "mc_top_judged_on_all_mean": ranker_method(replace(PRIMARY_CONFIG, top_judged_on="all_mean")),
        # the top blend's pick first even where rel@1 cannot tell the main blend from the top band's
        # best (the primary until 2026-12-07's second session)
        "mc_top_no_deferral": ranker_method(replace(PRIMARY_CONFIG, top_defers_to_main=False)),
        # the main blend keeps the first pick where the training datasets show fewer than half the
        # candidates (rel@1 among a few judges a pick among a few); measured, not adopted
        "mc_top_main_where_sparse": ranker_method(replace(PRIMARY_CONFIG, top_min_coverage=0.5)),
        "mc_no_monotone": ranker_method(replace(PRIMARY_CONFIG, monotone=False)),
        "mc_no_pretrain_term": ranker_method(replace(PRIMARY_CONFIG, pretrain_grid=(0.0,))),
        # the primary before its pretraining weight could outweigh the evidence (p <= 1)
        "mc_pretrain_narrow": ranker_method(replace(PRIMARY_CONFIG, pretrain_grid=NARROW_PRETRAIN_GRID)),
        # the primary before the top blend: one blend orders all and picks the first; no
        # nearest-dataset correction, no tau 0.25
        "mc_no_top_blend": ranker_method(replace(PRIMARY_CONFIG, top_blend=False, taus=(0.5, 1.0, 2.0),
                                                 corrections=("lgbm", "sw"))),
        # the GNN's edge-regression score alone (is the graph signal worth blending at all?)
        "gnn_only": ranker_method(replace(PRIMARY_CONFIG, families=("graph",), priors=(), corrections=(), graph_grid=(1.0,))),
    }


def check_ablations(names: Sequence[str]) -> list[str]:
    """The names, each an ablation of ablation_methods(); ValueError naming the unknown ones."""
    names = list(names)
    unknown = sorted(set(names) - set(ablation_methods()))
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; known: {', '.join(ablation_methods())}")
    return names


def _device() -> str:
    from services.common.hardware import describe_device

    return describe_device("cpu", threads=1)


COMPARED_METRICS = ("pearson", "rel@1", "hit@1")


def paired_comparisons(summary: dict, published: dict | None = None) -> dict:
    """Per metric, the primary against each baseline, each ablation run beside it and, where the
    data directory has published per-target numbers, the published method with the best mean over
    the same targets: mean difference, bootstrap interval over targets, wins / ties / losses
    (evaluate.paired_comparison)."""
    primary = summary[PRIMARY]["per_target"]

    def of(per: dict, metric: str) -> dict[str, float]:
        return {t: v[metric] for t, v in per.items()}

    def against(names) -> dict:
        return {b: {k: paired_comparison(of(primary, k), of(summary[b]["per_target"], k)) for k in COMPARED_METRICS}
                for b in names}

    out: dict = {"baselines": against([b for b in BASELINES if b in summary])}
    variants = [m for m in summary if m != PRIMARY and m not in BASELINES]
    if variants:  # ablations: what the primary gains over each variant of itself
        out["ablations"] = against(variants)
    rows = {}
    for metric, methods in (published or {}).items():
        covering = {m: v for m, v in methods.items() if all(t in v for t in primary)}
        if metric in COMPARED_METRICS and covering:
            best = max(covering, key=lambda m: np.mean([covering[m][t] for t in primary]))
            rows[metric] = {"method": best, **paired_comparison(of(primary, metric), covering[best])}
    if rows:
        out["published"] = rows
    return out


def _comparison_lines(comparisons: dict) -> list[str]:
    def fmt(c: dict) -> str:
        lo, hi = c["interval"]
        return (f"{c['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                f"(wins {c['wins']}, ties {c['ties']}, losses {c['losses']})")

    lines = [f"{PRIMARY} - {b}: " + "; ".join(f"{k} {fmt(c)}" for k, c in per.items())
             for group in ("baselines", "ablations") for b, per in comparisons.get(group, {}).items()]
    lines += [f"{PRIMARY} - published best {k} ({c['method']}, mean {c['mean_b']:.3f}): {fmt(c)}"
              for k, c in comparisons.get("published", {}).items()]
    return lines


def metrics_table(summary: dict, *, name_width: int = 22) -> str:
    """One row per method: pearson, spearman, rel@1, hit@1 and, where every row has them, seconds."""
    timed = all("seconds" in m for m in summary.values())
    lines = [f"{'method':<{name_width}}{'pearson':>9}{'spearman':>10}{'rel@1':>8}{'hit@1':>7}" + (f"{'seconds':>9}" if timed else "")]
    for name, m in summary.items():
        lines.append(f"{name:<{name_width}}{m['pearson']:>9.3f}{m['spearman']:>10.3f}{m['rel@1']:>8.3f}{m['hit@1']:>7.3f}"
                     + (f"{m['seconds']:>9.1f}" if timed else ""))
    return "\n".join(lines)


@dataclass
class LatencySetup:
    """What the latency is measured on: the replicated zoo, its tables, a ranker trained with
    the target hidden, the target and the candidate list (shared with the gateway measurement)."""

    zoo: Any
    tables: Any
    ranker: Ranker
    target: str
    candidates: list[str]


def latency_setup(zoo, *, n_models: int = 1000, seed: int = 0, config: RankerConfig | None = None,
                  compile_forests: bool = True) -> LatencySetup:
    """The zoo's models replicated with jittered metadata and results up to n_models; the
    primary's configuration trained on it with the first dataset hidden, its LightGBM models
    compiled as the service compiles them (mc.forest; `compile_forests=False` leaves LightGBM)."""
    import copy

    from .mc.graph import tables_from_zoo
    from .mc.records import ResultRow

    rng = np.random.default_rng(seed)
    big = zoo.copy()
    base = list(zoo.models.values())
    by_model: dict[str, list] = {}
    for r in zoo.results:
        by_model.setdefault(r.model, []).append(r)
    i = 0
    while len(big.models) < n_models:
        src = base[i % len(base)]
        m = copy.deepcopy(src)
        m.name = f"{src.name}#copy{i}"
        if m.num_parameters:
            m.num_parameters *= float(rng.uniform(0.8, 1.25))
        big.models[m.name] = m
        for r in by_model.get(src.name, []):
            if rng.random() < 0.5:
                big.results.append(ResultRow(m.name, r.dataset, r.metric, r.value * float(rng.uniform(0.97, 1.0)), r.higher_is_better))
        i += 1
    tables = tables_from_zoo(big)
    target = tables.datasets[0]
    ranker = Ranker(config or replace(PRIMARY_CONFIG, inner_folds=3)).fit(tables, hide=[target])
    if compile_forests:
        ranker.compile_forests()
    return LatencySetup(big, tables, ranker, target, list(tables.models[:n_models]))


def _reference_workload(a: np.ndarray) -> float:
    """A fixed CPU workload (a few small matrix products) timed beside rank: its spread is the
    machine's own, so a p99 can be read against it."""
    return float(sum(float((a @ a).sum()) for _ in range(4)))


def measure_rank_latency(zoo=None, *, n_models: int = 1000, calls: int = 200, seed: int = 0,
                         setup: LatencySetup | None = None) -> dict:
    """p50/p99 of Ranker.rank over n_models candidates, in-process, on the GraphTables the
    service keeps in memory. Three kinds of call, interleaved so they meet the same machine:
      * cold (p50_ms / p99_ms): each call ranks a dataset new to the tables, given inline by its
        distances (the hidden target's, jittered), under a new name: nothing is memoised for it,
        as for a user's first rank of a new dataset;
      * existing_cold: a dataset of the tables that has results, ranked by name with everything
        memoised for it dropped (the GNN forward pass without its results, its message graph):
        the first rank of such a dataset;
      * warm: that call again (memo kept).
    Every call recomputes the evidence features and the LightGBM prediction. Each kind is timed with
    the LightGBM models compiled (what the service serves once mc.forest has compiled them) and
    with LightGBM's own predict, call for call in turn: `inference` names the served one, whose
    numbers are the top-level keys; `by_inference` holds both. reference_*: a fixed numpy workload
    timed the same way between the calls (its p99 / p50 is the machine's own spread).
    first_call_ms: the very first call on the tables, with the per-tables precompute (done once
    per data revision). Pass `setup` to reuse a LatencySetup."""
    setup = setup or latency_setup(zoo, n_models=n_models, seed=seed)
    ranker, tables, target, cands = setup.ranker, setup.tables, setup.target, setup.candidates
    rng = np.random.default_rng(seed)
    row = tables.dist.loc[target]
    known = {d: float(v) for d, v in row.items() if d != target and d in tables.datasets and np.isfinite(v)}
    a = rng.standard_normal((160, 160))

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000

    ranked = tables.with_method(ranker.config.similarity)
    with_results = [d for d in tables.datasets if d != target and tables.norm[d].notna().any()]
    other = with_results[0]
    other_context = tuple(ranker._context(ranked, other, None))

    def forget():
        """Drop what is memoised for `other` alone: keys naming its context (the shown datasets)."""
        for t in {id(t): t for t in (tables, ranked)}.values():
            cache = t.__dict__.get("_memo", {})
            for key in [k for k in cache if isinstance(k, tuple) and k and k[0] in ("graph_score", "gnn_graph", "gnn_states")
                        and other_context in k]:
                del cache[key]

    def new_dataset(i: int):
        jittered = {d: v * float(rng.uniform(0.9, 1.1)) for d, v in known.items()}
        ranker.rank(tables, f"latency-new-{i}", candidates=cands, k=10, distances=jittered)

    def existing():
        ranker.rank(tables, other, candidates=cands, k=10)

    members = ranker.members or [ranker]
    compiled = [m.forest for m in members]
    inference = {"compiled": compiled} if any(f is not None for f in compiled) else {}
    inference["lightgbm"] = [None] * len(members)

    def use(name: str) -> None:
        for m, f in zip(members, inference[name]):
            m.forest = f

    served = next(iter(inference))
    use(served)
    tables.__dict__.pop("_memo", None)
    first = timed(lambda: ranker.rank(tables, target, candidates=cands, k=10))
    new_dataset(-1)  # the parent's per-version state (GNN layer states for the shown datasets)
    times = {name: {"cold": [], "existing_cold": [], "warm": []} for name in inference}
    reference = []
    try:
        for i in range(calls):
            for name in inference:
                use(name)
                times[name]["cold"].append(timed(lambda: new_dataset(i)))
                forget()
                times[name]["existing_cold"].append(timed(existing))
            reference.append(timed(lambda: _reference_workload(a)))
        existing()
        for _ in range(calls):
            for name in inference:
                use(name)
                times[name]["warm"].append(timed(existing))
    finally:
        use(served)

    def pct(v, q):
        return float(np.percentile(v, q))

    def summary(t: dict[str, list[float]]) -> dict[str, float]:
        return {"p50_ms": pct(t["cold"], 50), "p99_ms": pct(t["cold"], 99),
                **{f"{kind}_p{q}_ms": pct(t[kind], q) for kind in ("cold", "existing_cold", "warm") for q in (50, 99)}}

    by_inference = {name: summary(t) for name, t in times.items()}
    return {"candidates": len(cands), "calls": calls, "target": target, "existing_dataset": other, "first_call_ms": first,
            "inference": served, **by_inference[served], "by_inference": by_inference,
            "reference_p50_ms": pct(reference, 50), "reference_p99_ms": pct(reference, 99),
            "reference_p99_over_p50": pct(reference, 99) / pct(reference, 50)}


def run_benchmark(
    *,
    data_dir: str | Path,
    targets: str | Sequence[str] | None = None,
    similarity: str | Path | None = None,
    out: str | Path | None = None,
    latency: bool = False,
    gateway_latency_fn: Callable[..., dict] | None = None,
    ablations: bool | Sequence[str] = False,
    drop_degenerate: bool = False,
    exclude_degenerate_training: bool = True,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
    keep_fraction: float = 1.0,
    keep_seed: int = 0,
) -> dict:
    import torch

    if not 0.0 < keep_fraction <= 1.0:  # before the data is loaded
        raise ValueError(f"keep_fraction must be in (0, 1], not {keep_fraction}")
    torch.set_num_threads(1)
    say = progress or (lambda s: print(s, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    if not (Path(data_dir) / "records.csv").is_file():
        raise ValueError(f"{data_dir} has no records.csv (the benchmark format: see the README)")
    zoo, report = load_benchmark_dir(data_dir, similarity=similarity, drop_degenerate=drop_degenerate)
    say(report.summary())
    comparing = datasets_comparing_models(zoo.results)
    if len(comparing) < MIN_COMPARING_DATASETS:
        raise ValueError(f"leave-one-dataset-out needs {MIN_COMPARING_DATASETS} datasets with results for at "
                         f"least two models each; {data_dir} has {len(comparing)}")
    with_results = sorted({r.dataset for r in zoo.results})
    if targets is None:
        targets = [t for t in PUBLISHED_TARGETS if t in with_results] or with_results
    elif isinstance(targets, str):
        targets = with_results if targets == "all" else [t.strip() for t in targets.split(",") if t.strip()]
    missing = [t for t in targets if t not in with_results]
    targets = [t for t in targets if t in with_results]
    if not targets:
        raise ValueError(f"no target with results among {', '.join(missing) or 'none given'}; "
                         f"the datasets with results: {', '.join(with_results)}")
    if missing:
        say(f"targets without results, skipped: {', '.join(missing)}")
    methods = default_methods()
    if ablations:  # True: all of them; or the names of some
        every = ablation_methods()
        methods.update({n: every[n] for n in (list(every) if ablations is True else check_ablations(ablations))})
    # data-quality rule (every method alike): datasets the importer flags as degenerate, from
    # their own results only, are never training rows or evidence; they can still be targets.
    excluded = sorted(report.degenerate) if exclude_degenerate_training else []
    if excluded:
        say(f"excluded from training (degenerate): {', '.join(excluded)}")
    t_lodo = time.perf_counter()
    sparse = {"keep_fraction": keep_fraction, "keep_seed": keep_seed}
    if keep_fraction < 1.0:
        say(f"sparse records: the methods see {keep_fraction:.0%} of the other datasets' results (seed {keep_seed})")
    results = leave_one_dataset_out(zoo, methods, targets, exclude_from_training=excluded, progress=say, jobs=jobs, **sparse)
    lodo_seconds = time.perf_counter() - t_lodo
    summary = summarise(results)
    print(metrics_table(summary), flush=True)
    ceilings = oracle_ceilings(zoo, targets, exclude_from_training=excluded, **sparse)
    say("ceilings (oracles that read the target's results, not methods; see evaluate.oracle_ceilings):")
    for name, c in ceilings.items():
        say(f"  {name:24s} pearson {c['pearson']:.3f}, rel@1 {c['rel@1']:.3f}, hit@1 {c['hit@1']:.3f}")
    payload = {
        "methods": summary,
        "primary": PRIMARY,
        "targets": list(targets),
        "device": _device(),
        "seconds": time.perf_counter() - t_start,
        "lodo_seconds": lodo_seconds,
        "jobs": jobs,  # worker processes over the targets; a method's seconds are summed over its targets
        **sparse,  # the share of the other datasets' results the methods saw (evaluate.sparse_training_zoo)
        "exclude_degenerate_training": exclude_degenerate_training,
        "excluded_from_training": excluded,
        "baselines": [b for b in BASELINES if b in summary],
        "primary_beats_baselines": {
            k: all(summary[PRIMARY][k] > summary[b][k] for b in BASELINES if b in summary) for k in ("pearson", "rel@1")
        } if PRIMARY in summary else None,
        "import_report": report.to_dict(),
        "ceiling": ceilings,
    }
    if PRIMARY in summary:
        # published numbers were measured on all the records: compared only when the methods saw them all
        payload["paired"] = paired_comparisons(summary, load_published(data_dir) if keep_fraction >= 1.0 else None)
        say("paired differences over targets, mean [95% bootstrap interval]:")
        for line in _comparison_lines(payload["paired"]):
            say("  " + line)
    if latency:
        setup = latency_setup(zoo)
        lat = measure_rank_latency(setup=setup)
        say(f"rank latency over {lat['candidates']} candidates (p50 / p99 ms), served with {lat['inference']} "
            f"LightGBM models; first call on the tables {lat['first_call_ms']:.1f}")
        for name, t in lat["by_inference"].items():
            say(f"  {name:9s} new dataset {t['cold_p50_ms']:.1f} / {t['cold_p99_ms']:.1f}; dataset in the tables, "
                f"first call {t['existing_cold_p50_ms']:.1f} / {t['existing_cold_p99_ms']:.1f}; again "
                f"{t['warm_p50_ms']:.1f} / {t['warm_p99_ms']:.1f}")
        say(f"  fixed reference workload {lat['reference_p50_ms']:.1f} / {lat['reference_p99_ms']:.1f} "
            f"(p99/p50 {lat['reference_p99_over_p50']:.2f})")
        payload["latency"] = {"in_process": lat}
        if gateway_latency_fn is not None:
            payload["latency"]["gateway"] = gateway_latency_fn(setup.zoo, setup.ranker, setup.target, list(setup.candidates))
    payload["seconds"] = time.perf_counter() - t_start
    if out:
        Path(out).write_text(json.dumps(payload, indent=2, default=float))
    return payload
