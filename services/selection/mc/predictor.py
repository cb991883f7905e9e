"""The M&C predictor: a best-on-average (or low-rank) anchor, corrected by LightGBM or the
similarity-weighted evidence with one shrinkage weight, plus an optional graph-score term.

Every feature of a row (model m, dataset d) is computed from datasets other than d:
- training rows use the other training datasets only (their own dataset is left out);
  graph scores of a training row come from an encoder trained on the other inner folds;
- rank time uses the current rows, so a newly recorded result changes the evidence
  immediately while the trained LightGBM / GNN are reused (no retrain per result).

Score: (1 - s) z(anchor) + s z(correction) + g z(graph score) + p z(pretraining-data match).
The anchor is a model's mean normalised quality on the other datasets (best-on-average), its
low-rank collaborative-filtering prediction, or its kriged quality (the other datasets' results
weighed by ordinary kriging over a correlogram fitted to them, see kriging.py: near-duplicate
datasets share one vote); the correction is LightGBM (over model, dataset,
evidence and graph features, monotone in the evidence) or the similarity-weighted evidence; the
match says how much nearer the target a model's pretraining data is than the other models'.
Anchor, correction, s in {0, .25, .5, 1}, g in {0, .25} and p in {0, .25, .5, 1, 2, 4} are chosen by
grouped cross-validation over the training datasets only, scored on the benchmark's own metrics (pearson + rel@1 = truth of the top /
best truth, per held-out training dataset, averaged), with the one-standard-error rule: the
simplest blend within one SE of the best (few, small options: less overfitting of 11 folds);
by default (`band_mean`) the main blend is the mean of the blends within that band instead (one
blend: the mean of weighted sums of z-scores is one).
The correction may also be nearest-dataset transfer (e_nn1), so each neighbour baseline is a blend
the inner CV can choose. With `top_blend` (the default) a second blend, chosen on rel@1 alone, picks
the first model and the rest keep the first blend's order; with `top_defers_to_main` (the default)
only where the main blend's own rel@1 over the training datasets is more than one SE below it. With
several similarity methods the whole fit runs once per method and the best inner-CV score keeps its
method (`similarity="auto"`).

Data-quality rule (decided from the training rows alone, never from a target's results):
datasets that `records.flag_degenerate` flags (near-constant results, most runs failed,
mostly near chance) carry no ranking signal; with `drop_degenerate=True` (the default)
they are neither training rows nor evidence. `ranker.excluded` lists them.

Rank time is numpy throughout: target-independent views of the tables are memoised per
`GraphTables` (treat tables as immutable), the GNN score of a (tables, target, context) is
memoised, evidence and the LightGBM prediction (float32, one thread) are recomputed per call.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .graph import GraphTables, derived_from, memo, tables_from_zoo
from .kriging import Correlogram, column_correlations, filled_with_model_means, fit_correlogram, kriging_weights
from .records import Zoo, flag_degenerate
from .similarity import distance_to_weight

# feature families: model / dataset metadata, neighbour evidence, source evidence (quality near the
# model's pretraining data, see source_evidence), the graph score, and "relative": each model's
# standing among the candidates on the same target (see _relative)
FAMILIES = ("model", "dataset", "evidence", "source", "graph", "relative")
# the primary's: source and relative measured no better under a 3-seed ensemble
# (docs/selection-measurements.md), so optional
DEFAULT_FAMILIES = ("model", "dataset", "evidence", "graph")
RELATIVE_OF = ("e_mean", "e_rmean", "e_sw", "e_rsw", "e_nn", "e_cf", "e_krig", "e_src", "m_pretrain_match", "g_score")
SOURCE_TAUS = (0.5, 1.0)  # "source": evidence kernel over the distance from a model's pretraining data
TAUS = (0.25, 0.5, 1.0, 2.0, 4.0, float("inf"))  # inf: plain mean (best-on-average)
RANK_TAUS = (0.5, 2.0)
CF_RANKS = (1, 2)  # low-rank collaborative-filtering features e_cf1, e_cf2
CF_TAU = 1.0  # temperature of the target's loading (neighbour-weighted mean of loadings)
NARROW_PRETRAIN_GRID = (0.0, 0.25, 0.5, 1.0)  # p <= 1: the grid before 2026-11-27's widening
ANCHORS = ("e_mean", "e_cf1", "e_krig")  # best-on-average / rank-1 collaborative filtering / kriging
PRIORS = ANCHORS


# ---------------------------------------------------------------- features


def _rel_tau(tau: float, dist: np.ndarray) -> float:
    """Temperatures are relative to the spread of the target's distances, so they transfer
    across distance measures of different scales."""
    d = dist[np.isfinite(dist)]
    spread = float(np.std(d)) if d.size > 1 else 0.0
    return tau * (spread if spread > 0 else 1.0)


def _weights(dist: np.ndarray, tau: float) -> np.ndarray:
    return _weights_by_tau(dist)(tau)


def _weights_by_tau(dist: np.ndarray) -> Callable[[float], np.ndarray]:
    """_weights(dist, tau) as a function of tau: the filled distances and their spread are worked
    out once for the several temperatures of one target's features."""
    dist = np.where(np.isfinite(dist), dist, np.nanmax(dist) if np.isfinite(dist).any() else 1.0)
    spread = _rel_tau(1.0, dist)
    return lambda tau: distance_to_weight(dist, tau * spread)


def _weighted(X: np.ndarray, dist: np.ndarray, tau: float, have: np.ndarray | None = None,
              X0: np.ndarray | None = None, weights: Callable[[float], np.ndarray] | None = None) -> np.ndarray:
    """Similarity-weighted mean of each row of X over its finite entries (columns = context);
    `weights`: _weights_by_tau(dist), when the caller has it."""
    if X.shape[1] == 0:
        return np.full(X.shape[0], np.nan)
    w = (weights or _weights_by_tau(dist))(tau)
    have = np.isfinite(X) if have is None else have
    X0 = np.where(have, X, 0.0) if X0 is None else X0
    num = X0 @ w
    den = (have if have.dtype == np.float64 else have.astype(float)) @ w
    return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)


def evidence_score(tables: GraphTables, target: str, context: Sequence[str], tau: float) -> np.ndarray:
    """Similarity-weighted mean of each model's normalised quality on the context datasets."""
    context = [c for c in context if c != target]
    if not context:
        return np.full(len(tables.models), np.nan)
    return _weighted(tables.norm[context].to_numpy(dtype=float), tables.distance(target, context), tau)


def rank_normalise(norm: pd.DataFrame) -> pd.DataFrame:
    """Per-dataset percentile rank of each model (0 worst .. 1 best; ties averaged): robust to
    a few failed runs that squeeze every other model together under min-max."""
    r = norm.rank(axis=0, method="average")
    n = norm.notna().sum(axis=0)
    return (r - 1) / (n - 1).where(n > 1, 1.0)


def low_rank_factors(X: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collaborative filtering of the normalised quality matrix (models x context datasets):
    missing entries filled with the model's mean (else the global mean), centred per model,
    truncated SVD. Returns (model mean, model factors U*s, dataset loadings V)."""
    M, C = X.shape
    if C == 0:
        return np.full(M, np.nan), np.zeros((M, 0)), np.zeros((0, 0))
    mu, mu_f, filled = filled_with_model_means(X, empty=0.0)
    F = filled - mu_f[:, None]
    r = max(0, min(rank, C - 1, M))
    if r == 0:
        return mu, np.zeros((M, 0)), np.zeros((C, 0))
    # truncated SVD through the small (context x context) Gram matrix: F = U s V^T, U s = F V
    ev, V = np.linalg.eigh(F.T @ F)
    V = V[:, np.argsort(-ev)[:r]]
    return mu, F @ V, V


def cf_score(X: np.ndarray, dist: np.ndarray, rank: int, tau: float = CF_TAU, factors=None) -> np.ndarray:
    """Low-rank prediction for the target: model mean + factors x the target's loading, the
    similarity-weighted mean of its context datasets' loadings."""
    mu, UF, V = factors if factors is not None else low_rank_factors(X, rank)
    if UF.shape[1] == 0:
        return mu
    w = _weights(dist, tau)
    return mu + UF @ ((V * w[:, None]).sum(axis=0) / max(w.sum(), 1e-12))


class _Base:
    """Target-independent numpy views of one GraphTables (memoised per tables object)."""

    def __init__(self, tables: GraphTables):
        self.pos = {d: j for j, d in enumerate(tables.datasets)}
        self.norm = tables.norm.reindex(columns=tables.datasets).to_numpy(dtype=float)
        self.ranks = rank_normalise(tables.norm.reindex(columns=tables.datasets)).to_numpy(dtype=float)
        self.have = np.isfinite(self.norm)
        self.have_f = self.have.astype(float)
        self.norm0 = np.where(self.have, self.norm, 0.0)
        self.ranks0 = np.where(self.have, self.ranks, 0.0)
        self.model_feats = tables.model_feats.reindex(tables.models).to_numpy(dtype=float)
        self.model_cols = [f"m_{c}" for c in tables.model_feats.columns]
        self.family = tables.model_family.reindex(tables.models).fillna("").to_numpy()
        self.pretrain = _pretrain_pos(tables)
        self.dist_pos = tables.dist_positions()
        self.dist = tables.dist.to_numpy(dtype=float)
        self.dataset_feats = tables.dataset_feats

    @classmethod
    def with_new_dataset(cls, parent: "_Base", tables: GraphTables, name: str) -> "_Base":
        """The views of `tables` = the parent's tables plus one new dataset without results (the
        last column and the last distance row): the parent's arrays with an empty column, the
        same as _Base(tables) without re-ranking every column."""
        b = copy.copy(parent)
        b.pos = {**parent.pos, name: len(parent.pos)}

        def widen(a: np.ndarray, fill) -> np.ndarray:
            return np.concatenate([a, np.full((a.shape[0], 1), fill, dtype=a.dtype)], axis=1)

        b.norm, b.ranks = widen(parent.norm, np.nan), widen(parent.ranks, np.nan)
        b.have, b.have_f = widen(parent.have, False), widen(parent.have_f, 0.0)
        b.norm0, b.ranks0 = widen(parent.norm0, 0.0), widen(parent.ranks0, 0.0)
        b.dist_pos = {**parent.dist_pos, name: len(parent.dist_pos)}
        b.dist = tables.dist.to_numpy(dtype=float)
        b.dataset_feats = tables.dataset_feats
        return b


RECENT_TARGETS = 32
_recent_lock = threading.Lock()


def _with_target_recent(tables: GraphTables, target: str, distances: dict[str, float],
                        metadata: dict[str, float] | None, coverage: dict[str, float] | None = None) -> GraphTables:
    """tables.with_target, the last RECENT_TARGETS kept per tables: a client ranking one new
    dataset again gets the same tables and what is memoised on them, and a stream of new
    datasets does not grow the memory of a long-running service."""
    key = (target, tuple(sorted(distances.items())), tuple(sorted((metadata or {}).items())),
           tuple(sorted((coverage or {}).items())))
    with _recent_lock:
        recent = memo(tables, "recent_targets", OrderedDict)
        hit = recent.get(key)
        if hit is not None:
            recent.move_to_end(key)
            return hit
    made = tables.with_target(target, distances, metadata, coverage)
    with _recent_lock:
        hit = recent.setdefault(key, made)
        recent.move_to_end(key)
        while len(recent) > RECENT_TARGETS:
            recent.popitem(last=False)
    return hit


def _base(tables: GraphTables) -> _Base:
    def make() -> _Base:
        derived = derived_from(tables)
        if derived is not None:
            parent, name = derived
            return _Base.with_new_dataset(_base(parent), tables, name)
        return _Base(tables)

    return memo(tables, "numpy_base", make)


def _family_codes(tables: GraphTables, categories: Sequence[str]) -> np.ndarray:
    """Model family as a float code against a fixed category list (the one LightGBM saw)."""
    key = ("family_codes", tuple(categories))
    root = (derived_from(tables) or (tables,))[0]  # the same models as a new dataset's tables: shared with them

    def make():
        idx = {c: i for i, c in enumerate(categories)}
        return np.array([idx.get(f, np.nan) for f in _base(root).family], dtype=float)

    return memo(root, key, make)


def feature_matrix(
    tables: GraphTables, target: str, context: Sequence[str], graph_score: np.ndarray | None = None,
    families: Sequence[str] = DEFAULT_FAMILIES, categories: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Feature names and the (models x features) float matrix for `target` from the results of
    `context` only (numpy throughout: this is the rank-time path)."""
    b = _base(tables)
    context = [c for c in context if c != target and c in b.pos]
    M = len(tables.models)
    names: list[str] = []
    cols: list[np.ndarray] = []

    def add(name, v):  # a column, or one value for every model
        names.append(name)
        cols.append(v)

    ti = b.dist_pos.get(target)
    ci = np.array([b.dist_pos.get(c, -1) for c in context], dtype=int)
    cj = np.array([b.pos[c] for c in context], dtype=int)  # context columns of the quality matrix
    dist = (np.where(ci >= 0, b.dist[ti, np.maximum(ci, 0)], np.nan) if ti is not None
            else np.full(len(context), np.nan))
    if "model" in families:
        for j, c in enumerate(b.model_cols):
            add(c, b.model_feats[:, j])
        add("m_family", _family_codes(tables, categories if categories is not None else tables.families))
        pretrain = pretraining_distance(tables, target)
        add("m_pretrain_distance", pretrain)
        add("m_pretrain_match", pretrain_match(pretrain))
    if "dataset" in families:
        dfe = memo(tables, "dataset_feats_np", lambda: {d: r for d, r in zip(
            tables.dataset_feats.index.tolist(), tables.dataset_feats.reindex(columns=["log_size", "log_classes"]).to_numpy(dtype=float))})
        df = dfe.get(target, np.full(2, np.nan))
        add("d_log_size", df[0])
        add("d_log_classes", df[1])
        add("d_nearest_distance", np.nanmin(dist) if np.isfinite(dist).any() else np.nan)
    if "evidence" in families:
        # what does not depend on the target's distances, once per context (a new dataset's
        # tables share their parent's: the same models and the same context columns)
        root = (derived_from(tables) or (tables,))[0]
        ev = memo(root, ("context_evidence", tuple(context)), lambda: _context_evidence(b, cj))
        X, R, have_f, X0, R0 = ev.X, ev.R, ev.have_f, ev.X0, ev.R0
        for name, v in ev.columns.items():
            add(name, v)
        weights = _weights_by_tau(dist)
        for tau in TAUS:
            add(f"e_sw{tau}", _weighted(X, dist, tau, have_f, X0, weights))
        for tau in RANK_TAUS:
            add(f"e_rsw{tau}", _weighted(R, dist, tau, have_f, R0, weights))
        order = np.argsort(np.where(np.isfinite(dist), dist, np.inf))
        for r in range(2):
            add(f"e_nn{r + 1}", X[:, order[r]] if len(order) > r else np.nan)
        for r in CF_RANKS:
            # target-independent: a new dataset's tables share their parent's
            fac = memo((derived_from(tables) or (tables,))[0], ("cf", tuple(context), r), lambda: low_rank_factors(X, r))
            add(f"e_cf{r}", cf_score(X, dist, r, factors=fac))
        add("e_krig", kriging_evidence(tables, b, context, ci, cj, dist))
    if "source" in families:
        for tau in SOURCE_TAUS:
            add(f"e_src{tau}", source_evidence(b, ti, ci, cj, tau))
    if "graph" in families and graph_score is not None:
        add("g_score", graph_score)
    if "relative" in families:
        for name, v in list(zip(names, cols)):
            if name.startswith(RELATIVE_OF):
                add(f"r_{name}", _relative(v))
    F = np.empty((M, len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        F[:, j] = c
    return names, F


@dataclass
class _ContextEvidence:
    """The context's columns of the quality tables and the evidence features made from them alone."""

    X: np.ndarray  # normalised quality, models x context
    R: np.ndarray  # its per-dataset ranks
    have_f: np.ndarray  # 1.0 where a result exists
    X0: np.ndarray  # X and R with 0 for no result
    R0: np.ndarray
    columns: dict[str, np.ndarray]  # e_mean .. e_count, in feature order


def _context_evidence(b: "_Base", cj: np.ndarray) -> _ContextEvidence:
    X, R, have, have_f = b.norm[:, cj], b.ranks[:, cj], b.have[:, cj], b.have_f[:, cj]
    X0, R0 = b.norm0[:, cj], b.ranks0[:, cj]
    cnt = have.sum(axis=1).astype(float)
    cols: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        cols["e_mean"] = np.where(cnt > 0, X0.sum(axis=1) / cnt, np.nan)
        cols["e_rmean"] = np.where(cnt > 0, R0.sum(axis=1) / cnt, np.nan)
        mn = np.min(np.where(have, X, np.inf), axis=1) if X.shape[1] else np.full(X.shape[0], np.inf)
        cols["e_min"] = np.where(np.isfinite(mn), mn, np.nan)
        mean = np.where(cnt > 0, X0.sum(axis=1) / cnt, np.nan)
        cols["e_std"] = np.sqrt(np.where(have, (X0 - mean[:, None]) ** 2, 0).sum(axis=1) / cnt)
        cols["e_top_share"] = np.where(cnt > 0, (have & (X0 >= 0.98)).sum(axis=1) / cnt, np.nan)
    cols["e_count"] = cnt
    for a in (X, R, have_f, X0, R0, *cols.values()):
        a.flags.writeable = False  # shared by every rank of this context
    return _ContextEvidence(X, R, have_f, X0, R0, cols)


def kriging_evidence(tables: GraphTables, b: _Base, context: list[str], ci: np.ndarray, cj: np.ndarray,
                     dist: np.ndarray) -> np.ndarray:
    """Each model's normalised quality on the context datasets, combined with the ordinary-kriging
    weights of the context for the target (see kriging.py). The correlogram is fitted on pairs of
    context datasets only, so a training row's own dataset never shapes it."""
    X = b.norm[:, cj]
    if len(context) == 0:
        return np.full(X.shape[0], np.nan)
    parent = (derived_from(tables) or (tables,))[0]  # target-independent: shared with a new dataset's tables
    rho = memo(parent, ("correlogram", tuple(context)), lambda: _correlogram(parent, ci, cj))
    if rho is None:
        w = np.full(len(context), 1.0 / len(context))
    else:
        known = np.maximum(ci, 0)
        among = np.where((ci[:, None] >= 0) & (ci[None, :] >= 0), b.dist[np.ix_(known, known)], np.nan)
        w = kriging_weights(rho, dist, among)
    # kriging.kriged(X, w), with X filled once per context (as the correlogram is)
    filled = memo(parent, ("kriging_filled", tuple(context)), lambda: filled_with_model_means(X)[2])
    return filled @ w


def _correlogram(tables: GraphTables, ci: np.ndarray, cj: np.ndarray) -> Correlogram | None:
    b = _base(tables)
    corr = memo(tables, "column_correlations", lambda: column_correlations(b.norm))
    a, c = np.triu_indices(len(cj), k=1)
    ok = (ci[a] >= 0) & (ci[c] >= 0)
    d = np.where(ok, b.dist[np.maximum(ci[a], 0), np.maximum(ci[c], 0)], np.nan)
    return fit_correlogram(d, corr[cj[a], cj[c]])


def source_evidence(b: "_Base", ti: int | None, ci: np.ndarray, cj: np.ndarray, tau: float) -> np.ndarray:
    """Each model's mean normalised quality on the context datasets that lie about as far from its
    pretraining data as the target does (kernel exp(-|d(c, src) - d(t, src)| / tau'), tau' relative
    to the spread of those gaps per model). A specialist shows its strength only near its own
    source, a generalist everywhere; a target near a model's source is judged by that model's
    results on the other datasets near it, whatever those datasets' similarity to the target."""
    M = len(b.pretrain)
    if ti is None or len(cj) == 0:
        return np.full(M, np.nan)
    ok_m = b.pretrain >= 0
    p = np.maximum(b.pretrain, 0)
    a = np.where(ok_m, b.dist[p, ti], np.nan)  # (M,) target's distance to each model's source
    D = np.where((ci >= 0)[None, :], b.dist[np.ix_(p, np.maximum(ci, 0))], np.nan)  # (M, C)
    gap = np.abs(D - a[:, None])
    X, have = b.norm[:, cj], b.have[:, cj] & np.isfinite(gap)
    with np.errstate(all="ignore"):
        n = have.sum(axis=1)
        g0 = np.where(have, gap, 0.0)
        mean = g0.sum(axis=1) / np.maximum(n, 1)
        scale = np.sqrt(np.where(have, (g0 - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(n, 1))
        scale = np.where(scale > 0, scale, 1.0)
        w = np.where(have, np.exp(-np.nan_to_num(gap) / (tau * scale[:, None])), 0.0)
        num = (w * np.where(have, X, 0.0)).sum(axis=1)
        den = w.sum(axis=1)
    return np.where(ok_m & (den > 0), num / np.maximum(den, 1e-12), np.nan)


def _relative(v: np.ndarray) -> np.ndarray:
    """Percentile of each model among the models on the same target (1 = the highest; ties share;
    NaN stays NaN). Tree models compare a row with a threshold, never with the other rows of its
    target; what decides a ranking is the standing among the candidates, so it is a feature."""
    from scipy.stats import rankdata

    v = np.asarray(v, dtype=float)
    ok = np.isfinite(v)
    n = int(ok.sum())
    if n < 2:
        return np.where(ok, 0.5, np.nan)
    out = np.full(v.shape, np.nan)
    out[ok] = (rankdata(v[ok]) - 1) / (n - 1)
    return out


def pretraining_distance(tables: GraphTables, target: str) -> np.ndarray:
    """Per model, how far the target lies from its pretraining dataset (NaN where unknown): the
    log coverage divergence, log(1 + KL(target || pretraining set)), when the tables have the
    target's coverage row (see graph.coverage_table), else the similarity distance between them.
    One measure for all models of a target, never a mix."""
    covered = pretraining_coverage(tables, target)
    if covered is not None:
        return covered
    b = _base(tables)
    ti = b.dist_pos.get(target)
    if ti is None:
        return np.full(len(tables.models), np.nan)
    return np.where(b.pretrain >= 0, b.dist[ti, np.maximum(b.pretrain, 0)], np.nan)


def pretraining_coverage(tables: GraphTables, target: str) -> np.ndarray | None:
    """log(1 + coverage divergence) of the target by each model's pretraining set (NaN for a model
    without one); None when the target has no coverage row or the row names no pretraining set."""
    C = tables.coverage
    if target not in C.index:
        return None

    def make():  # memoised: the features and the explanation of one rank both read it
        cols = memo(tables, "pretrain_coverage_cols", lambda: np.array(
            [C.columns.get_loc(k) if isinstance(k, str) and k in C.columns else -1
             for k in tables.pretrain_key.reindex(tables.models).to_numpy()], dtype=int))
        row = C.loc[target].to_numpy(dtype=float)
        out = np.where(cols >= 0, row[np.maximum(cols, 0)], np.nan)
        return np.log1p(out) if np.isfinite(out).any() else None

    return memo(tables, ("pretrain_coverage", target), make)


def pretrain_match(pretrain_distance: np.ndarray) -> np.ndarray:
    """How much nearer the target a model's pretraining data is than the other models': minus the
    distance standardised across the models (per target, so distance levels that differ between
    targets do not matter). NaN where a model's pretraining data has no distance; 0 when all tie."""
    d = np.asarray(pretrain_distance, dtype=float)
    ok = np.isfinite(d)
    if ok.sum() < 2:
        return np.full(d.shape, np.nan)
    sd = float(np.std(d[ok]))
    return np.where(ok, -(d - np.mean(d[ok])) / sd, np.nan) if sd > 0 else np.where(ok, 0.0, np.nan)


def row_features(
    tables: GraphTables, target: str, context: Sequence[str], graph_scores: dict[str, np.ndarray] | None = None,
    families: Sequence[str] = DEFAULT_FAMILIES, ranks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Feature frame for every model on `target`, from the results of `context` only
    (`ranks` is accepted for compatibility; rank-normalised quality is per column anyway)."""
    gs = graph_scores.get(target) if graph_scores else None
    names, F = feature_matrix(tables, target, context, gs, families)
    return pd.DataFrame(F, index=tables.models, columns=names)


def _pretrain_pos(tables: GraphTables) -> np.ndarray:
    """Row of each model's pretraining dataset in tables.dist (-1: none)."""
    pos = tables.dist_positions()
    pk = tables.pretrain_key.reindex(tables.models).to_numpy()
    return np.array([pos.get(k, -1) if isinstance(k, str) else -1 for k in pk], dtype=int)


# A large prediction (rows x trees) is split by rows over a few threads. LightGBM's C call
# releases the GIL (ctypes), so the chunks run in parallel; plain threads rather than LightGBM's
# OpenMP team, whose threads spin while they wait and would fight the service's own worker threads
# under concurrent requests. Rows are independent, so the result is the same as in one call.
PARALLEL_PREDICT_MIN_WORK = 40_000  # rows x trees below which one call is cheaper (~1.5 ms here)
_predict_pool = None
_predict_pool_lock = threading.Lock()


def _predict_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def _pool():
    global _predict_pool
    with _predict_pool_lock:
        if _predict_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _predict_pool = ThreadPoolExecutor(max_workers=_predict_threads(), thread_name_prefix="lgbm-predict")
        return _predict_pool


def _forget_pool_in_child() -> None:
    """A forked child (a prefork worker) has none of the parent's threads: it starts its own pool."""
    global _predict_pool, _predict_pool_lock
    _predict_pool, _predict_pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _prediction_chunks(model, X: np.ndarray):
    """(booster, row chunks of X as contiguous float32): one chunk below PARALLEL_PREDICT_MIN_WORK."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    booster = model.booster_
    chunks = min(_predict_threads(), len(X) * booster.num_trees() // PARALLEL_PREDICT_MIN_WORK + 1)
    return booster, np.array_split(X, chunks)


def _predict_later(model, X: np.ndarray, forest=None) -> Callable[[], np.ndarray]:
    """_predict started on the prediction threads; calling the result waits for it and returns
    the same array. The caller computes something else meanwhile (the next ensemble member's graph
    score: Python and small torch calls, while LightGBM's C call runs without the GIL). A compiled
    forest (forest.CompiledForest) predicts at once: handed off, its 0.5 ms measured slightly slower
    (mc/README, "Compiled forests")."""
    if forest is not None:
        done = forest.predict(X)
        return lambda: done
    booster, parts = _prediction_chunks(model, X)
    futures = [_pool().submit(booster.predict, part, num_threads=1) for part in parts]
    return lambda: np.concatenate([f.result() for f in futures])


def _predict(model, X: np.ndarray, forest=None) -> np.ndarray:
    """LightGBM prediction on a contiguous float32 matrix, one LightGBM thread per call; a large
    matrix in row chunks on the shared prediction threads (see PARALLEL_PREDICT_MIN_WORK). With
    `forest`, the model's compiled form predicts (the same numbers)."""
    if forest is not None:
        return forest.predict(X)
    booster, parts = _prediction_chunks(model, X)
    if len(parts) == 1:
        return booster.predict(parts[0], num_threads=1)
    futures = [_pool().submit(booster.predict, part, num_threads=1) for part in parts[1:]]
    first = booster.predict(parts[0], num_threads=1)  # this thread takes a chunk too
    return np.concatenate([first, *(f.result() for f in futures)])


# ---------------------------------------------------------------- ranker


# top_judged_on="all" needs the median blend judged on this many training datasets: fewer cannot
# tell hundreds of blends apart (on sparse TransferGraph, ~4 of 12, it lost first picks)
MIN_JUDGED_MEDIAN = 5


@dataclass
class RankerConfig:
    families: tuple[str, ...] = DEFAULT_FAMILIES
    embedding: str = "gat"  # gat | sage | node2vec | none
    inner_folds: int = 4  # grouped CV over training datasets (LightGBM out-of-fold predictions)
    graph_folds: int = 3  # encoders that give training rows graph scores without their dataset
    blend_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)  # shrinkage weight of the correction (vs the anchor)
    prior_grid: tuple[float, ...] = ()  # unused (kept so stored configs still load)
    graph_grid: tuple[float, ...] = (0.0, 0.25)  # extra weight of the graph score
    # extra weight of the pretraining-data match; up to 4x the anchor's, so that it can decide alone
    # where the results say little (on sparse zoo records the inner CV chose the old edge, p = 1;
    # complete records choose no more than 1, the same picks and scores on both record sets)
    pretrain_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    priors: tuple[str, ...] = ANCHORS  # anchors: best-on-average mean / low-rank collaborative filtering / kriging
    taus: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # similarity-weighted evidence as a correction
    # what may correct the anchor: LightGBM, similarity-weighted evidence, nearest-dataset transfer
    # (with the latter two every neighbour baseline is a blend the inner CV can choose)
    corrections: tuple[str, ...] = ("lgbm", "sw", "nn")
    objective: str = "regression"  # regression | lambdarank | auto (chosen by inner CV; 2x the fits)
    select_graph_family: bool = False  # inner CV also tries LightGBM without the graph features (2x the fits)
    monotone: bool = True  # LightGBM: more evidence of quality never lowers the prediction
    one_se: bool = True  # inner CV: simplest blend within one standard error of the best
    # inner CV: score with the mean of the blends within one SE of the best (their weights averaged)
    # instead of the simplest of them, for the main blend ("main") and / or the top blend ("top").
    # The main blend's mean held on complete records and ordered sparse ones better; the top blend's
    # rel@1 band is wide (a third to a half of the blends on TransferGraph), its mean follows the
    # grid, and it lost TransferGraph's first picks (docs/selection-measurements.md, "Averaging the
    # band")
    band_mean: tuple[str, ...] = ("main",)
    # the metrics ask two things: the order of all candidates (pearson) and the choice of the first
    # (rel@1). With top_blend the inner CV also picks a second blend on rel@1 alone; its best model
    # goes first and the rest keep the first blend's order
    top_blend: bool = True
    # which blend of the top blend's one-SE band (rel@1 alone) goes first: "simplest", or "main",
    # the one best on the main blend's criterion (pearson + rel@1). rel@1 ties across many blends (a
    # few distinct first picks per training dataset), and where it cannot decide, the simplest blend
    # is the anchor alone whether or not the anchor orders the records well. "main" lost
    # TransferGraph's stanfordcars pick, which the simplest (best-on-average's) gets right, so it is
    # the ablation mc_top_by_main, not the default (docs/selection-measurements.md, "Which of the
    # top band goes first")
    top_tiebreak: str = "simplest"
    # with the band mean, the inner-CV score that `similarity="auto"` compares is the band mean's
    # own criterion rather than one chosen combo's (False: the primary's, as measured). Measured as
    # mc_band_inner_score: the same on complete records, sparse zoo first picks back
    # (docs/selection-measurements.md, "Averaging the band"); not the default until its adoption
    # runs are done
    band_inner_score: bool = False
    # on which of a training dataset's models the inner CV judges the top blend's first pick:
    # "observed", the models with a result there (the pick among a sparse dataset's 3 of 10 models
    # is easy: nearly every blend reaches rel@1 0.9+ and the band holds a fifth to two fifths of the
    # grid), or "all", the pick among every candidate as at rank time, counted only where that pick
    # has a result ("observed" where the median blend's pick has a result in fewer than
    # MIN_JUDGED_MEDIAN training datasets), or "all_mean", where a pick without a result counts as a
    # random one of the dataset's observed models would (their mean rel@1). The same on complete
    # records by construction. Measured, not adopted (ablations mc_top_judged_on_all and _all_mean;
    # docs/selection-measurements.md, "Judging the first pick among all models"): dropping unjudged
    # datasets compares blends on different subsets and rewards lucky ones (rel@1 -0.13 on fresh
    # sparse sets); "all_mean" -0.01
    top_judged_on: str = "observed"
    # the top blend puts its pick first only where the inner CV shows it better: where the main
    # blend's own rel@1 is within one SE of the top band's best, the main blend's pick stays first
    # (the top blend is then the main blend). The same picks on every complete record set and the
    # holdout, sparse zoo picks back; adopted by a rule written before its runs
    # (docs/selection-measurements.md, "Letting the main blend keep its pick"). False (ablation
    # mc_top_no_deferral): the primary before
    top_defers_to_main: bool = True
    # the top blend is judged by rel@1 among the models that have a result in each training dataset.
    # Where those are a small share of the candidates, that judges a pick among a few, not the pick
    # among all that rank time makes: on the sparse zoo (3 of 10 models per dataset, seed 0) it
    # rated best-on-average's pick 0.86 and the pretraining match's 0.92, where among all models
    # they reach 0.62 and 0.97 (docs/selection-measurements.md, "Where the first pick is judged
    # among a few"). Below this median share of candidates with a result, the main blend keeps the
    # first pick (0: never). Complete records are above any threshold up to 0.97. Measured at 0.5,
    # not adopted (ablation mc_top_main_where_sparse): it failed the rule written before its runs;
    # on the sparse zoo the main blend's picks were better on seeds 0 and 1 and much worse on seed 2
    top_min_coverage: float = 0.0
    # several similarity methods (e.g. one per profile modality): "auto" fits a ranker on each
    # method's distances and keeps the one with the best inner-CV score; or a method's name
    similarity: str = "auto"
    drop_degenerate: bool = True  # data-quality rule, see the module docstring
    # members fitted with seeds seed .. seed+members-1, their standardised scores averaged: the
    # inner CV's fold split, the GNN's initialisation and LightGBM's sampling all follow the seed,
    # and one seed's choices are noisy (one seed's zoo hit@1 ranged 0.53-0.66 over three seeds)
    members: int = 3
    lgbm_grid: tuple[dict, ...] = (
        {"n_estimators": 80, "learning_rate": 0.08, "num_leaves": 7, "min_child_samples": 20},
        {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 20},
    )
    seed: int = 0


@dataclass
class RankedModel:
    model: str
    score: float
    rank: int
    evidence: dict[str, Any] = field(default_factory=dict)


def _lgbm(params: dict, objective: str, seed: int, monotone: list[int] | None = None):
    import lightgbm as lgb

    common = dict(subsample=0.8, subsample_freq=1, colsample_bytree=0.8, verbose=-1, n_jobs=1, random_state=seed)
    if monotone and any(monotone):
        common.update(monotone_constraints=monotone, monotone_constraints_method="basic")
    if objective == "lambdarank":
        return lgb.LGBMRanker(objective="lambdarank", **common, **params)
    return lgb.LGBMRegressor(**common, **params)


def _monotone(names: Sequence[str]) -> list[int]:
    """+1 on the evidence of quality elsewhere (means, weighted means, nearest, low-rank, kriged) and on the
    nearness of a model's pretraining data (the premise of model selection by data similarity)."""
    up = ("e_mean", "e_rmean", "e_min", "e_sw", "e_rsw", "e_nn", "e_cf", "e_krig", "e_src", "m_pretrain_match")
    return [1 if n.removeprefix("r_").startswith(up) else 0 for n in names]


def _relevance(y: np.ndarray) -> np.ndarray:
    """LambdaRank needs integer grades: 0..10 from the normalised quality."""
    return np.clip(np.round(np.nan_to_num(y) * 10), 0, 10).astype(int)


def _z(x: np.ndarray) -> np.ndarray:
    """Standardised over the finite entries; NaN (no evidence) becomes the mean, 0."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    if ok.all():  # the common case, on the rank path many times a call: no masked copies
        # np.mean and np.std's own reductions, once each (their Python wrappers cost more than
        # the sums over 1,000 values)
        d = x - np.add.reduce(x) / x.size
        s = float(np.sqrt(np.add.reduce(d * d) / x.size))
        return d / (s if s > 0 else 1.0)
    if not ok.any():
        return np.zeros_like(x)
    s = np.std(x[ok])
    return np.where(ok, (x - np.mean(x[ok])) / (s if s > 0 else 1.0), 0.0)


def _fold_of(datasets: Sequence[str], k: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(sorted(datasets)))
    return {d: i % k for i, d in enumerate(order)}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    m = np.isfinite(a) & np.isfinite(b)
    if m.sum() < 3 or np.std(a[m]) == 0 or np.std(b[m]) == 0:
        return 0.0
    return float(np.corrcoef(a[m], b[m])[0, 1])


def relative_quality(chosen, truth: np.ndarray):
    """rel@1 of a chosen model's oriented quality against the best of `truth` (1 = a best model).

    Higher-is-better metrics (accuracy): chosen / best. Lower-is-better metrics arrive negated
    (all values < 0, e.g. -loss): best loss / chosen loss, the same ratio read the other way.
    Values of mixed sign have no meaningful ratio: the chosen value's min-max position instead.
    Vectorised in chosen.
    """
    best = np.max(truth)
    if best > 0:
        return chosen / best
    if best < 0:
        return best / chosen
    worst = np.min(truth)
    return (np.asarray(chosen) - worst) / (best - worst + 1e-12)


def _criterion(S: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's metrics, pearson and rel@1 (truth of the top / best truth), of each row of S
    (candidate scores) against truth t (oriented raw quality)."""
    Sc = S - S.mean(axis=1, keepdims=True)
    tc = t - t.mean()
    den = np.sqrt((Sc ** 2).sum(axis=1) * (tc ** 2).sum())
    pear = np.where(den > 0, (Sc @ tc) / np.maximum(den, 1e-300), 0.0)
    top = t[np.argmax(S, axis=1)]
    return pear, relative_quality(top, t)


def _classes(tables: GraphTables) -> dict[str, float]:
    lc = tables.dataset_feats["log_classes"] if "log_classes" in tables.dataset_feats else pd.Series(dtype=float)
    return {d: float(10 ** v) for d, v in lc.items() if np.isfinite(v)}


def _one_se_band(crit: np.ndarray) -> np.ndarray:
    """Indices of the blends whose mean criterion is within one standard error (paired over the
    training datasets) of the best; the best alone with fewer than 3 datasets."""
    mean = crit.mean(axis=1)
    best = int(np.argmax(mean))
    if crit.shape[1] < 3:
        return np.array([best])
    diff = crit[best][None, :] - crit
    se = diff.std(axis=1, ddof=1) / np.sqrt(crit.shape[1])
    return np.where(mean >= mean[best] - se)[0]


def _judged_band(crit: np.ndarray, *, one_se: bool = True, min_judged: int = 3) -> np.ndarray:
    """_one_se_band where NaN means "not judged" (a first pick without a result there): each blend's
    mean over the datasets that judged it, among blends judged on at least `min_judged`; the
    standard error of each difference from the best over the datasets that judged both (without
    one_se: the blends tied with the best)."""
    judged = np.isfinite(crit)
    count = judged.sum(axis=1)
    mean = np.where(count >= min_judged, np.nansum(crit, axis=1) / np.maximum(count, 1), -np.inf)
    best = int(np.argmax(mean))
    both = judged & judged[best][None, :]
    n = both.sum(axis=1)
    diff = np.where(both, crit[best][None, :] - np.where(judged, crit, 0.0), 0.0)
    dmean = diff.sum(axis=1) / np.maximum(n, 1)
    var = ((diff - dmean[:, None]) ** 2 * both).sum(axis=1) / np.maximum(n - 1, 1)
    se = np.where((n >= 3) & one_se, np.sqrt(var / np.maximum(n, 1)), 0.0)
    return np.where(mean >= mean[best] - se)[0]


def _within_one_se_of_best(crit: np.ndarray, row: np.ndarray) -> bool:
    """Whether a blend with criterion `row` (per training dataset) would be in the one-SE band of
    the blends `crit`."""
    return len(crit) in _one_se_band(np.vstack([crit, row[None, :]]))


def _simplest_within_one_se(combos: list[tuple], crit: np.ndarray, one_se: bool) -> int:
    """Index of the chosen blend: the best mean criterion, or (one-SE rule) the simplest blend whose
    mean is within one standard error (paired over the training datasets) of the best."""
    if not one_se:
        return int(np.argmax(crit.mean(axis=1)))
    return int(min(_one_se_band(crit), key=lambda i: (_complexity(combos[i]), i)))


def _best_on_main_within_one_se(combos: list[tuple], crit_top: np.ndarray, crit_main: np.ndarray) -> int:
    """Index of the blend within one SE of the best on crit_top that is best on crit_main (mean over
    the training datasets); ties go to the simplest."""
    main = crit_main.mean(axis=1)
    return int(min(_one_se_band(crit_top), key=lambda i: (-main[i], _complexity(combos[i]), i)))


def _band_mean_metrics(scores: Sequence[tuple[np.ndarray, np.ndarray]], band: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(pearson, rel@1) per training dataset of the band's mean blend: per dataset, the mean of the
    band's score rows is that blend's score."""
    rows = [_criterion(S[list(band)].mean(axis=0, keepdims=True), t) for S, t in scores]
    return np.array([p.item() for p, _ in rows]), np.array([r.item() for _, r in rows])


def _band_mean_criterion(scores: Sequence[tuple[np.ndarray, np.ndarray]], band: Sequence[int]) -> float:
    """The inner-CV criterion (pearson + rel@1, mean over the training datasets) of the band's mean blend."""
    return float(np.mean(sum(_band_mean_metrics(scores, band))))


def _combo_weights(combo: tuple, anchors: Sequence[str]) -> dict[str, float]:
    """A combo's score as weights of z-scored components: feature names, or "lgbm"."""
    ai, corr, s, g, p = combo
    w: dict[str, float] = {}
    if ai is not None and s < 1:
        w[anchors[ai]] = 1 - s
    if corr is not None and s > 0:
        name = {"L": "lgbm", "S": f"e_sw{corr[1]}", "F": corr[1]}[corr[0]]
        w[name] = w.get(name, 0.0) + s
    if g > 0:
        w["g_score"] = g
    if p > 0:
        w["m_pretrain_match"] = p
    return w


def _band_weights(combos: list[tuple], band: Sequence[int], anchors: Sequence[str]) -> dict[str, float]:
    """The mean of the band's blends (each a weighted sum of z-scores, so their mean is one)."""
    total: dict[str, float] = {}
    for i in band:
        for name, w in _combo_weights(combos[i], anchors).items():
            total[name] = total.get(name, 0.0) + w / len(band)
    return dict(sorted(total.items()))


def _blend_of(combo: tuple, anchors: Sequence[str]) -> dict[str, Any]:
    """A chosen (anchor, correction, s, g, p) combo as the stored blend, with names: the anchor
    feature, the correction ("lgbm", "e_sw<tau>" or a feature such as "e_nn1"; None at s = 0)."""
    ai, corr, s, g, p = combo
    correction = {"L": "lgbm", "S": f"e_sw{corr[1]}", "F": corr[1]}[corr[0]] if corr is not None and s > 0 else None
    return {"anchor": anchors[ai] if ai is not None else None, "correction": correction,
            "shrink": s, "graph": g, "pretrain": p}


def _complexity(combo: tuple) -> tuple:
    anchor_i, corr, s, g, p = combo
    return (int(s > 0) + int(g > 0) + int(p > 0), s + g + p, anchor_i)


class Ranker:
    """fit(zoo) -> trained ranker; rank(target) -> models ranked with explanations."""

    def __init__(self, config: RankerConfig | None = None):
        self.config = config or RankerConfig()
        self.model = None
        self.embedder = None
        self.graph_scores: dict[str, np.ndarray] | None = None
        self.feature_names: list[str] = []
        self.categories: list[str] = []
        self.tau: float = 1.0
        self.alpha: float = 0.0
        self.blend: dict[str, Any] = {}
        self.top_blend: dict[str, Any] | None = None  # see RankerConfig.top_blend
        self.lgbm_params: dict = {}
        self.lgbm_features: list[str] = []
        self.objective: str = "regression"
        self.trained_on: list[str] = []
        self.excluded: dict[str, str] = {}
        self.version: str = ""
        self.cv: dict[str, Any] = {}
        self.members: list[Ranker] = []
        self.forest = None  # self.model compiled (compile_forests): not stored, built per machine

    # ---- training
    def _graph_scores(self, tables: GraphTables, train: Sequence[str], targets: Sequence[str]) -> dict[str, np.ndarray] | None:
        """Graph scores for training datasets, each from an encoder that never saw its results."""
        cfg = self.config
        if "graph" not in cfg.families or cfg.embedding == "none":
            return None
        from .embed import make_embedder

        folds = _fold_of(train, cfg.graph_folds, cfg.seed)
        out: dict[str, np.ndarray] = {}
        for f in range(cfg.graph_folds):
            held = [d for d in train if folds[d] == f]
            seen = [d for d in train if folds[d] != f]
            if not held or not seen:
                continue
            emb = make_embedder(cfg.embedding, cfg.seed).fit(tables, seen)
            out.update(emb.edge_scores(tables, seen, held))
        self.embedder = make_embedder(cfg.embedding, cfg.seed).fit(tables, train)
        rest = [t for t in targets if t not in train]
        if rest:
            out.update(self.embedder.edge_scores(tables, train, rest))
        return out

    def fit(self, zoo: Zoo | GraphTables, *, hide: Sequence[str] = (), targets: Sequence[str] = ()) -> "Ranker":
        """Train on every dataset with results except `hide`. `targets` are datasets the
        caller will rank right away (their graph scores are computed here, inductively)."""
        cfg = self.config
        tables = zoo if isinstance(zoo, GraphTables) else tables_from_zoo(zoo)
        if cfg.similarity == "auto" and tables.dist_by_method:
            # which similarity to trust is learnt like the rest: by the training datasets' inner CV
            fits = {m: Ranker(replace(cfg, similarity=m)).fit(tables, hide=hide, targets=targets)
                    for m in sorted(tables.dist_by_method)}
            scores = {m: r.inner_score for m, r in fits.items()}
            chosen = max(scores, key=lambda m: scores[m])
            self.__dict__.update(fits[chosen].__dict__)
            self.cv = {**self.cv, "similarity": chosen, "similarity_inner_scores": scores}
            return self
        tables = tables.with_method(cfg.similarity)
        if cfg.members > 1:
            self.members = [Ranker(replace(cfg, members=1, seed=cfg.seed + k)).fit(tables, hide=hide, targets=targets)
                            for k in range(cfg.members)]
            self._adopt_members()
            return self
        hidden = set(hide)
        train = [d for d in tables.datasets if d not in hidden and tables.norm[d].notna().sum() >= 2]
        if not train:
            raise ValueError("no dataset to learn from: fitting needs a dataset with results for at least two models")
        self.excluded = {}
        if cfg.drop_degenerate:
            self.excluded = flag_degenerate(tables.quality[train], _classes(tables))
            if len(train) - len(self.excluded) >= 2:
                train = [d for d in train if d not in self.excluded]
            else:
                self.excluded = {}
        self.trained_on = train
        self.categories = list(tables.families)
        self.graph_scores = self._graph_scores(tables, train, targets)
        frames, ys, groups, truths = [], [], [], {}
        shares = []  # per training dataset, the share of the models with a result there
        # with top_judged_on="all": each training dataset's rows without a result (scored, never
        # trained on) and the row positions of those with one
        judge_all = cfg.top_blend and cfg.top_judged_on in ("all", "all_mean")
        unjudged, unjudged_groups, observed_at = [], [], {}
        names: list[str] = []
        for d in train:
            ctx = [c for c in train if c != d]
            gs = self.graph_scores.get(d) if self.graph_scores else None
            names, F = feature_matrix(tables, d, ctx, gs, cfg.families, self.categories)
            y = tables.norm[d].to_numpy(dtype=float)
            ok = np.isfinite(y)
            frames.append(F[ok])
            ys.append(y[ok])
            groups += [d] * int(ok.sum())
            truths[d] = tables.quality[d].to_numpy(dtype=float)[ok]
            shares.append(float(ok.mean()))
            if judge_all and not ok.all():
                unjudged.append(F[~ok])
                unjudged_groups += [d] * int((~ok).sum())
                observed_at[d] = ok
        X = np.concatenate(frames)
        y = np.concatenate(ys)
        coverage = float(np.median(shares))
        groups = np.array(groups)
        self.feature_names = list(names)
        col = {n: j for j, n in enumerate(names)}

        # LightGBM variants: size x objective x (with / without graph features)
        objectives = ("regression", "lambdarank") if cfg.objective == "auto" else (cfg.objective,)
        featsets = [tuple(names)]
        if cfg.select_graph_family and "g_score" in col:
            featsets.append(tuple(c for c in names if c != "g_score"))
        use_lgbm = "lgbm" in cfg.corrections and any(s > 0 for s in cfg.blend_grid)
        variants = list(itertools.product(range(len(cfg.lgbm_grid)), objectives, range(len(featsets)))) if use_lgbm else []

        # out-of-fold LightGBM predictions over groups of training datasets
        folds = _fold_of(train, cfg.inner_folds, cfg.seed + 1)
        fold_arr = np.array([folds[g] for g in groups])
        oof = {v: np.full(len(y), np.nan) for v in variants}
        X_un = np.concatenate(unjudged) if unjudged else np.zeros((0, X.shape[1]))
        groups_un = np.array(unjudged_groups)
        fold_un = np.array([folds[g] for g in groups_un], dtype=int)
        oof_un = {v: np.full(len(X_un), np.nan) for v in variants}
        for v in variants:
            pi, obj, fs = v
            cj = [col[c] for c in featsets[fs]]
            for f in range(cfg.inner_folds):
                tr, te = fold_arr != f, fold_arr == f
                if not te.any() or not tr.any():
                    continue
                m = self._fit_one(X[tr][:, cj], y[tr], groups[tr], cfg.lgbm_grid[pi], obj, featsets[fs])
                oof[v][te] = _predict(m, X[te][:, cj])
                if (fold_un == f).any():
                    oof_un[v][fold_un == f] = _predict(m, X_un[fold_un == f][:, cj])

        # blend: score = (1-s) z(anchor) + s z(correction) + g z(graph); anchor, correction, s, g
        # chosen on the benchmark's own metrics per held-out training dataset
        anchors = [p for p in cfg.priors if p in col]
        corrs = [("L", v) for v in variants]
        if "sw" in cfg.corrections:
            corrs += [("S", t) for t in cfg.taus if f"e_sw{t}" in col]
        if "nn" in cfg.corrections and "e_nn1" in col:
            corrs.append(("F", "e_nn1"))  # nearest-dataset transfer, the baseline, as a candidate blend
        has_g = "g_score" in col
        ggrid = cfg.graph_grid if has_g else (0.0,)
        # the pretraining-data match is a term only where it varies between models in training rows
        pm = X[:, col["m_pretrain_match"]] if "m_pretrain_match" in col else np.zeros(0)
        has_p = bool(np.isfinite(pm).sum() > 1 and np.std(pm[np.isfinite(pm)]) > 0)
        pgrid = (cfg.pretrain_grid or (0.0,)) if has_p else (0.0,)
        combos: list[tuple] = []
        for ai in (range(len(anchors)) if anchors else [None]):
            for s in (cfg.blend_grid if ai is not None else (1.0,)):
                for corr in ([None] if s == 0 else corrs):
                    for g in ggrid:
                        for p in pgrid:
                            combos.append((ai, corr, s, g, p))
        if not combos and has_g:
            combos = [(None, None, 0.0, 1.0, 0.0)]
        if not combos:
            raise ValueError("nothing to score with: no anchor, correction or graph score")
        crit = np.zeros((len(combos), len(train)))
        crit_top = np.zeros((len(combos), len(train)))
        crit_top_all = np.zeros((len(combos), len(train))) if judge_all else None
        pick_seen = np.ones((len(combos), len(train)), dtype=bool)  # the pick among all models has a result
        # (S, truth) per dataset, for band_inner_score and top_defers_to_main
        kept_scores: list[tuple[np.ndarray, np.ndarray]] = []

        def blend_scores(Xd: np.ndarray, lgbm: dict) -> np.ndarray:
            """Every combo's score (a row each) of one dataset's rows Xd; lgbm: variant -> out-of-fold predictions."""
            comp: dict[Any, np.ndarray] = {("L", v): _z(lgbm[v]) for v in variants}
            for t in cfg.taus:
                if f"e_sw{t}" in col:
                    comp[("S", t)] = _z(Xd[:, col[f"e_sw{t}"]])
            for c in corrs:
                if c[0] == "F":
                    comp[c] = _z(Xd[:, col[c[1]]])
            for i, a in enumerate(anchors):
                comp[("A", i)] = _z(Xd[:, col[a]])
            G = _z(Xd[:, col["g_score"]]) if has_g else 0.0
            P = _z(Xd[:, col["m_pretrain_match"]]) if has_p else 0.0
            zero = np.zeros(len(Xd))
            return np.stack([
                ((1 - s) * comp[("A", ai)] if ai is not None and s < 1 else zero)
                + (s * comp[corr] if corr is not None and s > 0 else zero)
                + (g * G if g > 0 else zero)
                + (p * P if p > 0 else zero)
                for ai, corr, s, g, p in combos
            ])

        for k, d in enumerate(train):
            m = groups == d
            S = blend_scores(X[m], {v: oof[v][m] for v in variants})
            pear, rel = _criterion(S, truths[d])
            crit[:, k], crit_top[:, k] = pear + rel, rel
            if cfg.band_inner_score or cfg.top_defers_to_main:
                kept_scores.append((S, truths[d]))
            if judge_all:
                if d not in observed_at:  # every model has a result: the same pick
                    crit_top_all[:, k] = rel
                    continue
                ok, mu = observed_at[d], groups_un == d
                rows = np.empty((len(ok), X.shape[1]))
                rows[ok], rows[~ok] = X[m], X_un[mu]
                lgbm_all = {}
                for v in variants:
                    lgbm_all[v] = np.empty(len(ok))
                    lgbm_all[v][ok], lgbm_all[v][~ok] = oof[v][m], oof_un[v][mu]
                picks = np.argmax(blend_scores(rows, lgbm_all), axis=1)
                truth_all = np.full(len(ok), np.nan)
                truth_all[ok] = truths[d]
                chosen_truth = truth_all[picks]
                has = pick_seen[:, k] = np.isfinite(chosen_truth)
                # "all_mean": an unjudged pick counts as a random one of the observed models would
                crit_top_all[:, k] = np.nan if cfg.top_judged_on == "all" else float(np.mean(relative_quality(truths[d], truths[d])))
                crit_top_all[has, k] = relative_quality(chosen_truth[has], truths[d])
        best = _simplest_within_one_se(combos, crit, cfg.one_se)
        if "main" in cfg.band_mean:  # the LightGBM variant of the best mean: one fitted model serves the band
            top_mean = combos[int(np.argmax(crit.mean(axis=1)))]
            if top_mean[1] is not None and top_mean[1][0] == "L":
                best = combos.index(top_mean)
        ai, corr, s, g, p = combos[best]
        v = corr[1] if corr is not None and corr[0] == "L" else (variants[0] if variants else (0, objectives[0], 0))
        pi, obj, fs = v
        self.lgbm_params, self.objective = cfg.lgbm_grid[pi], obj
        self.lgbm_features = list(featsets[fs])
        # the same LightGBM variant as the main blend (or none): one fitted model serves every blend
        allowed = [i for i, c in enumerate(combos) if c[1] is None or c[1][0] != "L" or c[1][1] == v]

        def band_of(criterion: np.ndarray) -> list[int]:  # the one-SE band among the allowed blends
            return [allowed[i] for i in _one_se_band(criterion[allowed])]

        def chosen(criterion: np.ndarray, index: int, averaged: bool, band: list[int] | None = None) -> dict[str, Any]:
            blend = _blend_of(combos[index], anchors)
            if averaged:
                band = band if band is not None else band_of(criterion)
                blend["weights"] = _band_weights(combos, band, anchors)
                blend["band"] = len(band)
            return blend

        self.blend = chosen(crit, best, "main" in cfg.band_mean)
        uses_lgbm = self._names_lgbm(self.blend)
        self.top_blend = None
        top_judged = None  # judged on all models: in how many training datasets the top blend's pick has a result
        if cfg.top_blend:
            sub = [combos[i] for i in allowed]
            top_band = None
            # dropping unjudged picks ("all") needs enough left to judge by; "all_mean" drops none
            if judge_all and (cfg.top_judged_on == "all_mean"
                              or np.median(pick_seen[allowed].sum(axis=1)) >= MIN_JUDGED_MEDIAN):
                top_band = [allowed[i] for i in _judged_band(crit_top_all[allowed], one_se=cfg.one_se)]
                main = crit.mean(axis=1)
                by_main = cfg.top_tiebreak == "main" and cfg.one_se
                ti = min(top_band, key=lambda i: ((-main[i] if by_main else 0.0), _complexity(combos[i]), i))
                top_judged = int(pick_seen[ti].sum())
            elif cfg.top_tiebreak == "main" and cfg.one_se:
                ti = allowed[_best_on_main_within_one_se(sub, crit_top[allowed], crit[allowed])]
            else:
                ti = allowed[_simplest_within_one_se(sub, crit_top[allowed], cfg.one_se)]
            self.top_blend = chosen(crit_top, ti, "top" in cfg.band_mean, top_band)
            if cfg.top_defers_to_main and cfg.one_se:
                main_rel = _band_mean_metrics(kept_scores, band_of(crit))[1] if "weights" in self.blend else crit_top[best]
                if _within_one_se_of_best(crit_top[allowed], main_rel):  # rel@1 cannot tell them apart
                    self.top_blend = {**self.blend, "defers_to_main": True}
            if coverage < cfg.top_min_coverage:  # rel@1 judged the pick among a few, not among all
                self.top_blend = {**self.blend, "defers_to_main": True, "sparse": True}
        self.alpha = s if uses_lgbm else 0.0
        self.tau = corr[1] if corr is not None and corr[0] == "S" else 1.0
        anchor = self.blend["anchor"]
        inner_score = float(crit[best].mean())
        if cfg.band_inner_score and "weights" in self.blend:
            inner_score = _band_mean_criterion(kept_scores, band_of(crit))
        self.cv = {
            "inner_score": inner_score, "inner_score_best": float(crit.mean(axis=1).max()),
            "one_se": cfg.one_se, "tau": self.tau, "alpha": self.alpha, "lgbm": pi, "objective": obj,
            "lgbm_graph_features": "g_score" in self.lgbm_features, "prior": anchor, "anchor": anchor,
            "correction": self.blend["correction"], "shrink": s, "prior_share": 1 - s, "graph_weight": g,
            "pretrain_weight": p, "weights": self.blend.get("weights"), "top_blend": self.top_blend,
            "excluded": dict(self.excluded), "combos": len(combos), "coverage": coverage,
            **({"top_judged": top_judged} if top_judged is not None else {}),
        }
        self.model = None
        if uses_lgbm or self._names_lgbm(self.top_blend):
            cj = [col[c] for c in self.lgbm_features]
            self.model = self._fit_one(X[:, cj], y, groups, self.lgbm_params, obj, self.lgbm_features)
        self.version = hashlib.sha256(
            pickle.dumps((sorted(train), tables.norm[train].round(6).fillna(-1).to_numpy().tobytes(), repr(cfg)))
        ).hexdigest()[:16]
        return self

    _LEAD_ATTRS = ("model", "embedder", "graph_scores", "feature_names", "categories", "tau", "alpha", "blend", "top_blend",
                   "lgbm_params", "lgbm_features", "objective", "trained_on", "excluded")

    def _adopt_members(self) -> None:
        """An ensemble reads like its first member (explanations, stored metadata); cv lists them all."""
        lead = self.members[0]
        for attr in self._LEAD_ATTRS:
            setattr(self, attr, getattr(lead, attr))
        self.cv = {**lead.cv, "members": [m.cv for m in self.members]}
        self.version = hashlib.sha256("".join(m.version for m in self.members).encode()).hexdigest()[:16]

    @property
    def inner_score(self) -> float:
        """The chosen blend's inner-CV criterion (pearson + rel@1), averaged over members."""
        return float(np.mean([m.cv["inner_score"] for m in (self.members or [self])]))

    def _fit_one(self, X, y, groups, params, objective, names):
        names = list(names)
        cat = [names.index("m_family")] if "m_family" in names else "auto"
        mono = _monotone(names) if self.config.monotone else None
        model = _lgbm(params, objective, self.config.seed, mono)
        if objective == "lambdarank":
            order = np.argsort(groups, kind="stable")
            _, counts = np.unique(groups[order], return_counts=True)
            return model.fit(X[order], _relevance(y[order]), group=counts, categorical_feature=cat)
        return model.fit(X, y, categorical_feature=cat)

    # ---- ranking
    def _context(self, tables: GraphTables, target: str, context: Sequence[str] | None) -> list[str]:
        b = _base(tables)
        excluded = set(self.excluded)
        any_result = memo(tables, "any_result", lambda: b.have.any(axis=0))
        return [d for d in (context if context is not None else tables.datasets)
                if d != target and d not in excluded and d in b.pos and any_result[b.pos[d]]]

    def _graph_score(self, tables: GraphTables, target: str, context: list[str]) -> np.ndarray | None:
        """The GNN's predicted quality of every model on `target`: one forward pass, memoised per
        (tables, target, context) (tables are immutable; a new target node means new tables)."""
        if "graph" not in self.config.families or self.embedder is None:
            return None
        gs = self.graph_scores
        if gs and target in gs and len(gs[target]) == len(tables.models):
            return gs[target]
        key = ("graph_score", id(self.embedder), target, tuple(context))
        cache = tables.__dict__.setdefault("_memo", {})
        hit = cache.get(key)
        if hit is None or hit[0] is not self.embedder:
            hit = (self.embedder, self.embedder.edge_scores(tables, context, [target])[target])
            cache[key] = hit
        return hit[1]

    def _score_matrix(self, tables: GraphTables, target: str, context: Sequence[str] | None = None):
        """(score, top score or None, feature names, features, context). An ensemble averages its
        members' standardised scores; the features are computed once and only the graph columns
        differ between members. The top score (RankerConfig.top_blend) picks the first model."""
        context = self._context(tables, target, context)
        members = self.members or [self]
        lead = members[0]
        gs = lead._graph_score(tables, target, context)
        names, F = feature_matrix(tables, target, context, gs, lead.config.families, lead.categories or tables.families)
        graph_cols = [j for j, n in enumerate(names) if n in ("g_score", "r_g_score")]
        total, top = np.zeros(F.shape[0]), None
        started = []  # each member's LightGBM prediction runs while the next member's graph score is computed
        for k, m in enumerate(members):
            Fm = F
            if graph_cols and k > 0:
                gm = m._graph_score(tables, target, context)
                Fm = F.copy()
                for j in graph_cols:
                    Fm[:, j] = gm if names[j] == "g_score" else _relative(gm)
            started.append((m, Fm, m._start_lgbm(names, Fm)))
        for m, Fm, lgbm in started:
            shared: dict = {} if lgbm is None else {"lgbm": _z(lgbm())}
            main = _z(m._blend_score(names, Fm, memo_=shared))
            total = total + main
            if m.top_blend is not None:
                # a top blend that defers to the main one is that blend: its score is the one above
                own = main if m.top_blend.get("defers_to_main") else _z(m._blend_score(names, Fm, m.top_blend, memo_=shared))
                top = (0.0 if top is None else top) + own
        top = None if top is None else np.nan_to_num(top, nan=-1e9)
        return np.nan_to_num(total / len(members), nan=-1e9), top, names, F, context

    @staticmethod
    def _top_first(score: np.ndarray, top: np.ndarray | None, among: np.ndarray) -> np.ndarray:
        """`score` with the top score's best model of `among` raised to just above their maximum."""
        if top is None or not len(among):
            return score
        j = among[int(np.argmax(top[among]))]
        out = score.copy()
        out[j] = max(out[j], float(np.nextafter(out[among].max(), np.inf)))
        return out

    @staticmethod
    def _names_lgbm(blend: dict[str, Any] | None) -> bool:
        if not blend:
            return False
        if "weights" in blend:
            return blend["weights"].get("lgbm", 0.0) > 0
        return blend["shrink"] > 0 and blend["correction"] == "lgbm"

    def _uses_lgbm(self, blend: dict[str, Any] | None) -> bool:
        return self._names_lgbm(blend) and self.model is not None

    def _lgbm_input(self, names: list[str], F: np.ndarray) -> np.ndarray:
        col = {n: j for j, n in enumerate(names)}
        return F[:, [col[c] for c in self.lgbm_features]]

    def _start_lgbm(self, names: list[str], F: np.ndarray) -> Callable[[], np.ndarray] | None:
        """The LightGBM prediction _blend_score would make on F, started (see _predict_later); None
        when neither of this ranker's blends uses it."""
        if not (self._uses_lgbm(self.blend) or self._uses_lgbm(self.top_blend)):
            return None
        return _predict_later(self.model, self._lgbm_input(names, F), self.forest)

    def _lgbm_z(self, names: list[str], F: np.ndarray, memo_: dict | None) -> np.ndarray:
        memo_ = {} if memo_ is None else memo_
        if "lgbm" not in memo_:
            memo_["lgbm"] = _z(_predict(self.model, self._lgbm_input(names, F), self.forest))
        return memo_["lgbm"]

    def _blend_score(self, names: list[str], F: np.ndarray, blend: dict[str, Any] | None = None,
                     memo_: dict | None = None) -> np.ndarray:
        """The blend's score of every row of F; `memo_` shares the LightGBM prediction between the
        blends of one ranker on the same F (the main and the top blend use the same model)."""
        col = {n: j for j, n in enumerate(names)}
        b = blend or self.blend or {"anchor": "e_mean", "correction": None, "shrink": 0.0, "graph": 0.0}
        score = np.zeros(F.shape[0])
        if "weights" in b:  # RankerConfig.band_mean: the mean of the blends within one SE of the best
            for name, w in b["weights"].items():
                if name == "lgbm":
                    if self._uses_lgbm(b):
                        score += w * self._lgbm_z(names, F, memo_)
                elif name in col:
                    score += w * _z(F[:, col[name]])
            return score
        s, g = b["shrink"], b["graph"]
        if b["anchor"] in col and s < 1:
            score += (1 - s) * _z(F[:, col[b["anchor"]]])
        if self._uses_lgbm(b):
            score += s * self._lgbm_z(names, F, memo_)
        elif s > 0 and b["correction"] in col:
            score += s * _z(F[:, col[b["correction"]]])
        if g > 0 and "g_score" in col:
            score += g * _z(F[:, col["g_score"]])
        p = b.get("pretrain", 0.0)  # absent in blends stored before the term existed
        if p > 0 and "m_pretrain_match" in col:
            score += p * _z(F[:, col["m_pretrain_match"]])
        return score

    def scores(self, tables: GraphTables, target: str, context: Sequence[str] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
        """Blended score of every model in tables.models for `target`, plus the feature frame."""
        tables = tables.with_method(self.config.similarity)
        score, top, names, F, _ = self._score_matrix(tables, target, context)
        score = self._top_first(score, top, np.arange(len(score)))
        return score, pd.DataFrame(F, index=tables.models, columns=names)

    def rank(
        self,
        zoo: Zoo | GraphTables,
        target: str,
        *,
        candidates: Sequence[str] | None = None,
        k: int | None = 10,
        distances: dict[str, float] | None = None,
        metadata: dict[str, float] | None = None,
        coverage: dict[str, float] | None = None,
        explain_neighbours: int = 3,
    ) -> list[RankedModel]:
        """Rank candidate models for `target` (a dataset in the zoo, or a new one given by its
        distances to known datasets, optional metadata and optional coverage divergences by
        pretraining sets). Evidence comes from the current rows."""
        tables = zoo if isinstance(zoo, GraphTables) else tables_from_zoo(zoo)
        tables = tables.with_method(self.config.similarity)
        if target not in tables.datasets or distances or coverage:
            tables = _with_target_recent(tables, target, distances or {}, metadata, coverage)
        score, top, names, F, context = self._score_matrix(tables, target)
        col = {n: j for j, n in enumerate(names)}
        root = (derived_from(tables) or (tables,))[0]  # a new dataset's tables have its parent's models
        idx = memo(root, "model_index", lambda: {m: i for i, m in enumerate(root.models)})
        if candidates is None:
            ci = np.arange(len(tables.models))
        else:
            ci = np.array([i for i in map(idx.get, candidates) if i is not None], dtype=int)
        score = self._top_first(score, top, ci)
        order = ci[np.argsort(-score[ci], kind="stable")] if len(ci) else ci
        if k is not None:
            order = order[:k]
        b = _base(tables)
        ti = b.dist_pos.get(target)
        ci = np.array([b.dist_pos.get(c, -1) for c in context], dtype=int)
        dist = (np.where(ci >= 0, b.dist[ti, np.maximum(ci, 0)], np.nan) if ti is not None
                else np.full(len(context), np.nan))
        nearest = np.argsort(np.where(np.isfinite(dist), dist, np.inf), kind="stable")[:explain_neighbours]
        near = [context[i] for i in nearest]
        near_dist = dist[nearest]
        sw_name = f"e_sw{self.tau}"
        # which measure pretraining_distance used for this target (log coverage or similarity)
        pretrain_measure = "log1p-coverage-kl" if pretraining_coverage(tables, target) is not None else "similarity"
        out = []
        for r, i in enumerate(order, start=1):
            m = tables.models[i]
            out.append(RankedModel(m, float(score[i]), r, {
                "similar_datasets": [{"dataset": d, "distance": float(near_dist[j]),
                                      "normalised_quality": _f(b.norm[i, b.pos[d]])}
                                     for j, d in enumerate(near)],
                "similarity_weighted_quality": _f(F[i, col[sw_name]]) if sw_name in col else None,
                "mean_quality_elsewhere": _f(F[i, col["e_mean"]]) if "e_mean" in col else None,
                "low_rank_quality": _f(F[i, col["e_cf1"]]) if "e_cf1" in col else None,
                "kriged_quality": _f(F[i, col["e_krig"]]) if "e_krig" in col else None,
                "results_elsewhere": int(F[i, col["e_count"]]) if "e_count" in col else None,
                "graph_score": _f(F[i, col["g_score"]]) if "g_score" in col else None,
                "pretraining_data_distance": _f(F[i, col["m_pretrain_distance"]]) if "m_pretrain_distance" in col else None,
                "pretraining_data_measure": pretrain_measure,
                "predictor_version": self.version,
            }))
        return out

    def compile_forests(self, *, cache_dir: Path | None = None, cached_only: bool = False) -> bool:
        """Compile every member's LightGBM model for rank (forest.compile_forest; `cache_dir` keeps
        the object code per model and machine). With `cached_only`, only load what is cached. True
        when every model has its compiled form; a model without one goes on with LightGBM."""
        from .forest import compile_forest

        ready = True
        for m in self.members or [self]:
            if m.model is not None and m.forest is None:
                m.forest = compile_forest(m.model.booster_, cache_dir=cache_dir, cached_only=cached_only)
                ready = ready and m.forest is not None
        return ready

    # ---- persistence (graph_versions artifact)
    def to_bytes(self) -> bytes:
        if self.members:
            return pickle.dumps({"config": self.config, "members": [m.to_bytes() for m in self.members]})
        emb = self.embedder
        state = dict(self.__dict__)
        state["model"] = self.model.booster_.model_to_string() if self.model is not None else None
        state["model_kind"] = type(self.model).__name__ if self.model is not None else None
        state["embedder"] = (type(emb).__name__, emb.to_bytes() if hasattr(emb, "to_bytes") else pickle.dumps(emb)) if emb else None
        state["graph_scores"] = None  # fold-local cache, recomputed at rank time
        state["forest"] = None  # machine code for this machine only
        return pickle.dumps(state)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Ranker":
        import lightgbm as lgb

        from .embed import GNNEmbedder

        state = pickle.loads(data)
        r = cls(state["config"])
        if state.get("members"):  # an ensemble: only config and members are stored (a single ranker's list is empty)
            r.members = [cls.from_bytes(b) for b in state["members"]]
            r._adopt_members()
            return r
        model_str, _kind, emb = state.pop("model"), state.pop("model_kind"), state.pop("embedder")
        r.__dict__.update(state)
        if model_str is not None:
            r.model = _BoosterModel(lgb.Booster(model_str=model_str))
        if emb is not None:
            name, blob = emb
            r.embedder = GNNEmbedder.from_bytes(blob) if name == "GNNEmbedder" else pickle.loads(blob)
        return r


class _BoosterModel:
    """A loaded booster with the scikit-learn predict signature."""

    def __init__(self, booster):
        self.booster_ = booster

    def predict(self, X):
        return self.booster_.predict(X)


def _f(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None
