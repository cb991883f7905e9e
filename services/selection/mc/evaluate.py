"""Leave-one-dataset-out evaluation: metrics, baselines and the harness.

For each target every record of the target is removed from the zoo BEFORE anything is
built (tables, graph, features, predictor); the target keeps its node, metadata and
similarity rows. Predictions are compared with the hidden records.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats
from scipy.optimize import linprog

from .graph import GraphTables, tables_from_zoo
from .kriging import filled_with_model_means
from .predictor import (
    NARROW_PRETRAIN_GRID, TAUS, Ranker, RankerConfig, evidence_score, pretraining_distance, relative_quality,
)
from .records import Zoo

Method = Callable[[GraphTables, str, list[str]], np.ndarray]  # (tables without target results, target, train) -> scores


def selection_metrics(score: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """pearson/spearman over models with a record; rel@1 = relative_quality of the top (truth[top]/best,
    or best/top loss for lower-is-better metrics); hit@1: top is a best one."""
    score, truth = np.asarray(score, float), np.asarray(truth, float)
    m = np.isfinite(truth) & np.isfinite(score)
    s, t = score[m], truth[m]
    if len(t) < 2:
        return {"pearson": float("nan"), "spearman": float("nan"), "rel@1": float("nan"), "hit@1": float("nan")}
    const = np.std(s) == 0
    top = int(np.argmax(s))
    best = t.max()
    return {
        "pearson": 0.0 if const else float(stats.pearsonr(s, t)[0]),
        "spearman": 0.0 if const else float(stats.spearmanr(s, t)[0]),
        "rel@1": float(relative_quality(t[top], t)),
        "hit@1": float(t[top] >= best - 1e-12),
    }


# ---------------------------------------------------------------- baselines


@dataclass(frozen=True)
class RandomMethod:
    """Baseline: random scores, stable per (seed, target) in any process. (Methods are picklable
    objects so that the harness can evaluate targets in worker processes.)"""

    seed: int = 0

    def __call__(self, tables: GraphTables, target: str, train: list[str]) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(target.encode())])
        return rng.random(len(tables.models))


def random_method(seed: int = 0) -> Method:
    return RandomMethod(seed)


def best_on_average(tables: GraphTables, target: str, train: list[str]) -> np.ndarray:
    return tables.norm[train].mean(axis=1).to_numpy()


def nearest_dataset(tables: GraphTables, target: str, train: list[str]) -> np.ndarray:
    """Each model's normalised quality on the nearest training dataset it has a result on."""
    dist = tables.distance(target, train)
    X = tables.norm[train].to_numpy(dtype=float)
    return first_result_in_order(X, np.argsort(np.where(np.isfinite(dist), dist, np.inf)))


def first_result_in_order(X: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Each row's value in the first column of `order` where it has one (NaN where it has none):
    transfer from one dataset, a model without a result there taking the next one's."""
    out = np.full(X.shape[0], np.nan)
    for j in order:
        out = np.where(np.isnan(out), X[:, j], out)
    return out


def nearest_pretraining(tables: GraphTables, target: str, train: list[str]) -> np.ndarray:
    """The model whose pretraining data is nearest the target first; models without a pretraining
    distance after them, and ties, by best-on-average (so with no pretraining profiles it is that)."""
    dist = pretraining_distance(tables, target)
    boa = np.nan_to_num(best_on_average(tables, target, train), nan=-np.inf)
    order = np.lexsort((-boa, np.where(np.isfinite(dist), dist, np.inf)))  # last key sorts first
    score = np.empty(len(order))
    score[order] = np.arange(len(order), 0, -1, dtype=float)
    return score


def choose_tau(tables: GraphTables, train: list[str]) -> float:
    """Evidence temperature by leave-one-dataset-out over the training datasets only."""
    best, best_tau = -np.inf, TAUS[0]
    for tau in TAUS:
        s = 0.0
        for d in train:
            m = selection_metrics(evidence_score(tables, d, [c for c in train if c != d], tau), tables.quality[d].to_numpy())
            s += np.nan_to_num(m["pearson"]) + np.nan_to_num(m["rel@1"])
        if s > best:
            best, best_tau = s, tau
    return best_tau


def similarity_weighted(tables: GraphTables, target: str, train: list[str]) -> np.ndarray:
    return evidence_score(tables, target, train, choose_tau(tables, train))


@dataclass(frozen=True)
class RankerMethod:
    """A Ranker of this configuration fitted on the training datasets, scoring the target."""

    config: RankerConfig

    def __call__(self, tables: GraphTables, target: str, train: list[str]) -> np.ndarray:
        r = Ranker(self.config).fit(tables, hide=[d for d in tables.datasets if d not in train], targets=[target])
        return r.scores(tables, target, train)[0]


def ranker_method(config: RankerConfig) -> Method:
    return RankerMethod(config)


def lgbm_without_graph() -> Method:
    """Baseline: LightGBM regression over model, dataset and evidence features, no graph, no
    blend, no top blend, one seed (inner CV chooses only its size and, where there are several,
    the similarity method, as the primary does)."""
    return ranker_method(RankerConfig(families=("model", "dataset", "evidence"), embedding="none", blend_grid=(1.0,), members=1,
                                      corrections=("lgbm",), graph_grid=(0.0,), monotone=False, top_blend=False,
                                      objective="regression", select_graph_family=False,
                                      # the grid and the one-SE choice it was measured with
                                      pretrain_grid=NARROW_PRETRAIN_GRID, band_mean=()))


# ---------------------------------------------------------------- harness


def sparse_training_zoo(zoo: Zoo, keep_fraction: float, seed: int = 0) -> Zoo:
    """The zoo with each (model, dataset) result kept with probability `keep_fraction`: how the
    methods hold up on a sparse matching graph, as a real one is (nobody fine-tunes every model on
    every dataset). A pair's fate is drawn from a hash of (seed, model, dataset), so it is the same
    in every process, for every target and for every method. Models and datasets stay."""
    if keep_fraction >= 1.0:
        return zoo
    z = zoo.copy()
    z.results = [r for r in zoo.results
                 if zlib.crc32(f"{seed}\x1f{r.model}\x1f{r.dataset}".encode()) < keep_fraction * 2 ** 32]
    return z


@dataclass
class TargetResult:
    metrics: dict[str, float]
    seconds: float


def leave_one_dataset_out(
    zoo: Zoo,
    methods: dict[str, Method],
    targets: Sequence[str],
    *,
    exclude_from_training: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
    keep_fraction: float = 1.0,
    keep_seed: int = 0,
) -> dict[str, dict[str, TargetResult]]:
    """Every method on every target, the target's records hidden. Targets are independent and
    seeded, so `jobs` > 1 evaluates them in that many worker processes (spawned, one torch thread
    each) with the same results; each TargetResult's seconds are its own process's. With
    `keep_fraction` < 1 the methods see only that share of the other datasets' results
    (`sparse_training_zoo`); the target is still scored on all of its own."""
    targets = list(targets)
    per_target: dict[str, dict[str, TargetResult]] = {}

    def done(target: str, result: dict[str, TargetResult]) -> None:
        per_target[target] = result
        if progress:
            progress(f"[{len(per_target)}/{len(targets)}] {target}: " + ", ".join(
                f"{n} p={r.metrics['pearson']:.3f} r={r.metrics['rel@1']:.3f}" for n, r in result.items()))

    if jobs > 1 and len(targets) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=min(jobs, len(targets)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init,
                                 initargs=(zoo, methods, tuple(exclude_from_training), keep_fraction, keep_seed)) as pool:
            futures = {pool.submit(_worker_target, t): t for t in targets}
            for future in as_completed(futures):
                done(futures[future], future.result())
    else:
        harness = _Harness(zoo, methods, tuple(exclude_from_training), keep_fraction, keep_seed)
        for target in targets:
            done(target, harness.target(target))
    return {name: {t: per_target[t][name] for t in targets} for name in methods}


class _Harness:
    """What every target's evaluation shares: the zoo, its full tables (the truth), the methods, and
    the zoo the methods learn from (all of it, or a sparse share: sparse_training_zoo)."""

    def __init__(self, zoo: Zoo, methods: dict[str, Method], exclude_from_training: tuple[str, ...],
                 keep_fraction: float = 1.0, keep_seed: int = 0):
        self.zoo, self.methods, self.excluded = zoo, methods, set(exclude_from_training)
        self.truth_tables = tables_from_zoo(zoo)
        self.training_zoo = sparse_training_zoo(zoo, keep_fraction, keep_seed)

    def tables(self, target: str) -> tuple[GraphTables, list[str], np.ndarray]:
        """(the tables without the target's results, the training datasets, the target's truth)."""
        tables = tables_from_zoo(self.training_zoo.without_results_of([target]))
        train = [d for d in tables.datasets if d != target and d not in self.excluded
                 and tables.norm[d].notna().sum() >= 2]
        return tables, train, self.truth_tables.quality[target].reindex(tables.models).to_numpy(dtype=float)

    def target(self, target: str) -> dict[str, TargetResult]:
        tables, train, truth = self.tables(target)
        out = {}
        for name, method in self.methods.items():
            t0 = time.perf_counter()
            score = method(tables, target, train)
            out[name] = TargetResult(selection_metrics(score, truth), time.perf_counter() - t0)
        return out


_WORKER: _Harness | None = None


def _worker_init(zoo: Zoo, methods: dict[str, Method], exclude_from_training: tuple[str, ...],
                 keep_fraction: float, keep_seed: int) -> None:
    import torch

    global _WORKER
    torch.set_num_threads(1)
    _WORKER = _Harness(zoo, methods, exclude_from_training, keep_fraction, keep_seed)


def _worker_target(target: str) -> dict[str, TargetResult]:
    assert _WORKER is not None
    return _WORKER.target(target)


ORACLE_TAUS = tuple(float(t) for t in np.geomspace(0.02, 20.0, 31)) + (float("inf"),)  # relative, as TAUS


def oracle_ceilings(zoo: Zoo, targets: Sequence[str], *, exclude_from_training: Sequence[str] = (),
                    keep_fraction: float = 1.0, keep_seed: int = 0) -> dict[str, dict]:
    """What the other datasets' records allow at best: ORACLES that read the target's hidden
    results, never methods. Each bounds a family of methods; a goal above a bound asks for more
    than that family can get from these records, whatever its similarity or its weights.

    - ``oracle_nearest_dataset``: each model's normalised quality on the training dataset whose
      results correlate best (pearson) with the target's own, i.e. nearest-dataset transfer under
      a perfect similarity (a model without a result there takes the next best-correlated one's).
    - ``oracle_similarity_tau``: the similarity-weighted evidence (``evidence_score``) at each
      temperature of ORACLE_TAUS (best-on-average is the infinite one); per target and per metric
      the best temperature's value. It bounds every choice of temperature, inner CV included.
    - ``oracle_convex_weights``: rel@1 and hit@1 of the truly best model that some weighting of the
      training datasets (weights >= 0, summing to 1, missing results filled with the model's mean as
      kriging does) ranks first, found by one linear program per model in order of truth. It bounds
      every method whose score is a weighted mean of the other datasets' results: kriging,
      similarity weighting, best-on-average. (The order of all candidates under such weights is not
      a linear problem, so pearson and spearman are left out.)

    With `keep_fraction` < 1 they read the same sparse records as the methods (leave_one_dataset_out).
    """
    harness = _Harness(zoo, {}, tuple(exclude_from_training), keep_fraction, keep_seed)
    per: dict[str, dict[str, TargetResult]] = {"oracle_nearest_dataset": {}, "oracle_similarity_tau": {},
                                                "oracle_convex_weights": {}}
    for target in targets:
        t0 = time.perf_counter()
        tables, train, truth = harness.tables(target)
        X = tables.norm[train].to_numpy(dtype=float)
        corr = []
        for j in range(X.shape[1]):
            m = np.isfinite(X[:, j]) & np.isfinite(truth)
            ok = m.sum() >= 3 and np.std(X[m, j]) > 0 and np.std(truth[m]) > 0
            corr.append(float(np.corrcoef(X[m, j], truth[m])[0, 1]) if ok else -np.inf)
        # the best-correlated dataset's results, falling back as nearest_dataset does by distance
        score = first_result_in_order(X, np.argsort(-np.asarray(corr), kind="stable"))
        per["oracle_nearest_dataset"][target] = TargetResult(selection_metrics(np.nan_to_num(score, nan=-1.0), truth),
                                                             time.perf_counter() - t0)
        t0 = time.perf_counter()
        by_tau = [selection_metrics(evidence_score(tables, target, train, tau), truth) for tau in ORACLE_TAUS]
        per["oracle_similarity_tau"][target] = TargetResult(
            {k: float(np.nanmax([m[k] for m in by_tau])) for k in by_tau[0]}, time.perf_counter() - t0)
        t0 = time.perf_counter()
        rel = convex_weighting_ceiling(X, truth)
        per["oracle_convex_weights"][target] = TargetResult(
            {"pearson": float("nan"), "spearman": float("nan"), "rel@1": rel, "hit@1": float(rel >= 1.0 - 1e-12)},
            time.perf_counter() - t0)
    return summarise(per)


def convex_weighting_ceiling(X: np.ndarray, truth: np.ndarray) -> float:
    """relative_quality of the truly best model that some convex weighting of X's columns (models x
    datasets, normalised quality, NaN where missing) puts first among the models with a truth, a
    tie for first included (a bound, so ties go the oracle's way: on sparse records two models
    with the same few results can share the top under every weighting). Per model, in order of
    truth, a linear program maximises its smallest lead over the others (variables: the weights
    and the lead); the first whose lead is not negative is the bound."""
    have = np.isfinite(truth)
    if have.sum() < 2 or X.shape[1] == 0:
        return float("nan")
    F, t = filled_with_model_means(X)[2][have], truth[have]
    if not np.isfinite(F).all():
        F = np.nan_to_num(F, nan=-1.0)
    n = F.shape[1]
    for m in np.argsort(-t, kind="stable"):
        others = np.delete(np.arange(len(t)), m)
        # (F[o] - F[m]) . w + lead <= 0 for every other model o; maximise the lead
        fit = linprog(c=np.r_[np.zeros(n), -1.0], A_ub=np.hstack([F[others] - F[m], np.ones((len(others), 1))]),
                      b_ub=np.zeros(len(others)), A_eq=np.r_[np.ones(n), 0.0][None], b_eq=[1.0],
                      bounds=[(0, None)] * n + [(None, None)], method="highs")
        if fit.status == 0 and -fit.fun >= -1e-12:
            return float(relative_quality(t[m], t))
    return float("nan")


def summarise(results: dict[str, dict[str, TargetResult]]) -> dict[str, dict]:
    summary = {}
    for name, per in results.items():
        keys = ("pearson", "spearman", "rel@1", "hit@1")
        summary[name] = {k: _mean_of_finite([r.metrics[k] for r in per.values()]) for k in keys}
        summary[name]["seconds"] = float(sum(r.seconds for r in per.values()))
        summary[name]["per_target"] = {t: {**r.metrics, "seconds": r.seconds} for t, r in per.items()}
    return summary


def _mean_of_finite(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def paired_comparison(a: dict[str, float], b: dict[str, float], *, confidence: float = 0.95,
                      n_resamples: int = 9999, seed: int = 0) -> dict:
    """Method a against method b on the targets both were scored on: the mean per-target
    difference a - b, its BCa bootstrap interval over targets (scipy.stats.bootstrap; an interval
    that holds 0 means these targets do not tell the two apart), and the targets a wins, ties
    (within 1e-9) and loses."""
    targets = [t for t in a if t in b and np.isfinite(a[t]) and np.isfinite(b[t])]
    d = np.array([a[t] - b[t] for t in targets], dtype=float)
    out = {"targets": len(targets), "mean_a": float(np.mean([a[t] for t in targets])) if targets else float("nan"),
           "mean_b": float(np.mean([b[t] for t in targets])) if targets else float("nan"),
           "difference": float(d.mean()) if len(d) else float("nan"),
           "wins": int((d > 1e-9).sum()), "ties": int((np.abs(d) <= 1e-9).sum()), "losses": int((d < -1e-9).sum())}
    if len(d) < 2 or np.ptp(d) == 0:  # nothing to resample: every target differs by the same amount
        out["interval"] = [out["difference"], out["difference"]]
    else:
        ci = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                             method="BCa", rng=np.random.default_rng(seed)).confidence_interval
        out["interval"] = [float(ci.low), float(ci.high)]
    out["confidence"] = confidence
    return out
