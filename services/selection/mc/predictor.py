"""The M&C predictor: LightGBM over model, dataset, neighbour-evidence and graph features,
blended with a best-on-average prior, the similarity-weighted evidence and the graph score.

Every feature of a row (model m, dataset d) is computed from datasets other than d:
- training rows use the other training datasets only (their own dataset is left out);
  graph scores of a training row come from an encoder trained on the other inner folds;
- rank time uses the current rows, so a newly recorded result changes the evidence
  immediately while the trained LightGBM / GNN are reused (no retrain per result).

Everything that is not learnt is chosen by grouped (leave-fold-of-datasets-out)
cross-validation over the training datasets only: LightGBM size, regression vs LambdaRank,
whether LightGBM sees the graph family, the prior (min-max or rank-normalised mean quality
elsewhere), the evidence temperature and the blend weights. The inner-CV criterion is the
mean over training datasets of pearson + rel@1, the two benchmark metrics.

Data-quality rule (decided from the training rows alone, never from a target's results):
datasets that `records.flag_degenerate` flags (near-constant results, most runs failed,
mostly near chance) carry no ranking signal; with `drop_degenerate=True` (the default)
they are neither training rows nor evidence. `ranker.excluded` lists them.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .graph import GraphTables, memo, tables_from_zoo
from .records import Zoo, flag_degenerate
from .similarity import distance_to_weight

FAMILIES = ("model", "dataset", "evidence", "graph")
TAUS = (0.25, 0.5, 1.0, 2.0, 4.0, float("inf"))  # inf: plain mean (best-on-average)
RANK_TAUS = (0.5, 2.0)
PRIORS = ("e_mean", "e_rmean")  # best-on-average prior on min-max / rank-normalised quality


# ---------------------------------------------------------------- features


def _rel_tau(tau: float, dist: np.ndarray) -> float:
    """Temperatures are relative to the spread of the target's distances, so they transfer
    across distance measures of different scales."""
    d = dist[np.isfinite(dist)]
    scale = float(np.std(d)) if d.size > 1 and np.std(d) > 0 else 1.0
    return tau * scale


def _weighted(X: np.ndarray, dist: np.ndarray, tau: float) -> np.ndarray:
    """Similarity-weighted mean of each row of X over its finite entries (columns = context)."""
    if X.shape[1] == 0:
        return np.full(X.shape[0], np.nan)
    dist = np.where(np.isfinite(dist), dist, np.nanmax(dist) if np.isfinite(dist).any() else 1.0)
    w = distance_to_weight(dist, _rel_tau(tau, dist))
    have = np.isfinite(X)
    num = (np.where(have, X, 0) * w).sum(axis=1)
    den = (have * w).sum(axis=1)
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


def row_features(
    tables: GraphTables, target: str, context: Sequence[str], graph_scores: dict[str, np.ndarray] | None = None,
    families: Sequence[str] = FAMILIES, ranks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Feature frame for every model on `target`, from the results of `context` only."""
    context = [c for c in context if c != target]
    M = len(tables.models)
    cols: dict[str, Any] = {}
    dist = tables.distance(target, context)
    if "model" in families:
        for c in tables.model_feats.columns:
            cols[f"m_{c}"] = tables.model_feats[c].to_numpy(dtype=float)
        cols["m_family"] = pd.Categorical(tables.model_family.reindex(tables.models).fillna("").to_numpy(), categories=tables.families)
        if target in tables.dist.index:
            pk = memo(tables, "pretrain_pos", lambda: _pretrain_pos(tables))
            drow = tables.dist[target].to_numpy(dtype=float)
            cols["m_pretrain_distance"] = np.where(pk >= 0, drow[np.maximum(pk, 0)], np.nan)
        else:
            cols["m_pretrain_distance"] = np.full(M, np.nan)
    if "dataset" in families:
        df = tables.dataset_feats.reindex([target]).to_numpy(dtype=float)[0]
        cols["d_log_size"] = np.full(M, df[0])
        cols["d_log_classes"] = np.full(M, df[1])
        cols["d_nearest_distance"] = np.full(M, np.nanmin(dist) if np.isfinite(dist).any() else np.nan)
    if "evidence" in families:
        X = tables.norm[context].to_numpy(dtype=float) if context else np.full((M, 0), np.nan)
        if ranks is None and context:
            ranks = memo(tables, "ranks", lambda: rank_normalise(tables.norm))  # per column: context-independent
        R = ranks[context].to_numpy(dtype=float) if context else np.full((M, 0), np.nan)
        have = np.isfinite(X)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # models with no result elsewhere: NaN is right
            cols["e_mean"] = np.nanmean(X, axis=1) if X.shape[1] else np.full(M, np.nan)
            cols["e_rmean"] = np.nanmean(R, axis=1) if R.shape[1] else np.full(M, np.nan)
            mn = np.min(np.where(have, X, np.inf), axis=1) if X.shape[1] else np.full(M, np.inf)
            cols["e_min"] = np.where(np.isfinite(mn), mn, np.nan)
            cols["e_std"] = np.nanstd(X, axis=1) if X.shape[1] else np.full(M, np.nan)
            cols["e_top_share"] = np.nanmean(np.where(have, X >= 0.98, np.nan), axis=1) if X.shape[1] else np.full(M, np.nan)
        cols["e_count"] = have.sum(axis=1).astype(float)
        for tau in TAUS:
            cols[f"e_sw{tau}"] = _weighted(X, dist, tau)
        for tau in RANK_TAUS:
            cols[f"e_rsw{tau}"] = _weighted(R, dist, tau)
        order = np.argsort(np.where(np.isfinite(dist), dist, np.inf))
        for r in range(2):
            cols[f"e_nn{r + 1}"] = X[:, order[r]] if len(order) > r else np.full(M, np.nan)
    if "graph" in families and graph_scores is not None:
        cols["g_score"] = np.asarray(graph_scores[target], dtype=float)
    return pd.DataFrame(cols, index=tables.models)


def _pretrain_pos(tables: GraphTables) -> np.ndarray:
    """Row of each model's pretraining dataset in tables.dist (-1: none)."""
    pos = {n: i for i, n in enumerate(tables.dist.index)}
    pk = tables.pretrain_key.reindex(tables.models).to_numpy()
    return np.array([pos.get(k, -1) if isinstance(k, str) else -1 for k in pk], dtype=int)


def _predict(model, F: pd.DataFrame) -> np.ndarray:
    """LightGBM prediction from a numpy matrix (pandas conversion costs more than the trees):
    categorical columns are coded against the categories stored in the booster."""
    booster = model.booster_
    cats = list(getattr(booster, "pandas_categorical", None) or [])
    X = np.empty(F.shape, dtype=np.float64)
    for j, c in enumerate(F.columns):
        col = F[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = pd.Categorical(col.astype(object), categories=cats.pop(0)).codes if cats else col.cat.codes.to_numpy()
            X[:, j] = np.where(np.asarray(codes) >= 0, codes, np.nan)
        else:
            X[:, j] = col.to_numpy(dtype=np.float64)
    return booster.predict(X, num_threads=1)


# ---------------------------------------------------------------- ranker


@dataclass
class RankerConfig:
    families: tuple[str, ...] = FAMILIES
    embedding: str = "sage"  # sage | gat | node2vec | none
    inner_folds: int = 4  # grouped CV over training datasets (hyper-parameters, blend)
    graph_folds: int = 3  # encoders that give training rows graph scores without their dataset
    blend_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # weight of LightGBM in the blend
    prior_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # prior vs similarity-weighted, in the rest
    graph_grid: tuple[float, ...] = (0.0, 0.25, 0.5)  # extra weight of the graph score
    priors: tuple[str, ...] = PRIORS
    taus: tuple[float, ...] = TAUS
    objective: str = "regression"  # regression | lambdarank | auto (chosen by inner CV; 3x the fits)
    select_graph_family: bool = False  # inner CV also tries LightGBM without the graph features (2x the fits)
    drop_degenerate: bool = True  # data-quality rule, see the module docstring
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


def _lgbm(params: dict, objective: str, seed: int):
    import lightgbm as lgb

    common = dict(subsample=0.8, subsample_freq=1, colsample_bytree=0.8, verbose=-1, n_jobs=1, random_state=seed)
    if objective == "lambdarank":
        return lgb.LGBMRanker(objective="lambdarank", **common, **params)
    return lgb.LGBMRegressor(**common, **params)


def _relevance(y: np.ndarray) -> np.ndarray:
    """LambdaRank needs integer grades: 0..10 from the normalised quality."""
    return np.clip(np.round(np.nan_to_num(y) * 10), 0, 10).astype(int)


def _z(x: np.ndarray) -> np.ndarray:
    """Standardised over the finite entries; NaN (no evidence) becomes the mean, 0."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
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


def _rel1(score: np.ndarray, truth: np.ndarray) -> float:
    m = np.isfinite(truth) & np.isfinite(score)
    if not m.any():
        return 0.0
    s, t = score[m], truth[m]
    return float((t[np.argmax(s)] - t.min()) / (t.max() - t.min() + 1e-12))


def _criterion(S: np.ndarray, t: np.ndarray) -> np.ndarray:
    """pearson + rel@1 (min-max scaled) of each row of S (candidate scores) against truth t."""
    Sc = S - S.mean(axis=1, keepdims=True)
    tc = t - t.mean()
    den = np.sqrt((Sc ** 2).sum(axis=1) * (tc ** 2).sum())
    pear = np.where(den > 0, (Sc @ tc) / np.maximum(den, 1e-300), 0.0)
    rel = (t[np.argmax(S, axis=1)] - t.min()) / (t.max() - t.min() + 1e-12)
    return pear + rel


def _classes(tables: GraphTables) -> dict[str, float]:
    lc = tables.dataset_feats["log_classes"] if "log_classes" in tables.dataset_feats else pd.Series(dtype=float)
    return {d: float(10 ** v) for d, v in lc.items() if np.isfinite(v)}


class Ranker:
    """fit(zoo) -> trained ranker; rank(target) -> models ranked with explanations."""

    def __init__(self, config: RankerConfig | None = None):
        self.config = config or RankerConfig()
        self.model = None
        self.embedder = None
        self.graph_scores: dict[str, np.ndarray] | None = None
        self.feature_names: list[str] = []
        self.tau: float = 1.0
        self.alpha: float = 0.5
        self.blend: dict[str, Any] = {}
        self.lgbm_params: dict = {}
        self.lgbm_features: list[str] = []
        self.objective: str = "regression"
        self.trained_on: list[str] = []
        self.excluded: dict[str, str] = {}
        self.version: str = ""
        self.cv: dict[str, Any] = {}

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
        hidden = set(hide)
        train = [d for d in tables.datasets if d not in hidden and tables.norm[d].notna().sum() >= 2]
        self.excluded = {}
        if cfg.drop_degenerate:
            self.excluded = flag_degenerate(tables.quality[train], _classes(tables))
            if len(train) - len(self.excluded) >= 2:
                train = [d for d in train if d not in self.excluded]
            else:
                self.excluded = {}
        self.trained_on = train
        self.graph_scores = self._graph_scores(tables, train, targets)
        ranks = rank_normalise(tables.norm[train])
        frames, ys, groups = [], [], []
        for d in train:
            ctx = [c for c in train if c != d]
            F = row_features(tables, d, ctx, self.graph_scores, cfg.families, ranks=ranks)
            y = tables.norm[d].to_numpy(dtype=float)
            ok = np.isfinite(y)
            frames.append(F[ok])
            ys.append(y[ok])
            groups += [d] * int(ok.sum())
        X = pd.concat(frames)
        y = np.concatenate(ys)
        groups = np.array(groups)
        self.feature_names = list(X.columns)

        # LightGBM variants: size x objective x (with / without graph features)
        objectives = ("regression", "lambdarank") if cfg.objective == "auto" else (cfg.objective,)
        featsets = [tuple(self.feature_names)]
        if cfg.select_graph_family and "g_score" in self.feature_names:
            featsets.append(tuple(c for c in self.feature_names if c != "g_score"))
        variants = list(itertools.product(range(len(cfg.lgbm_grid)), objectives, range(len(featsets))))
        need_lgbm = any(a > 0 for a in cfg.blend_grid)

        # out-of-fold predictions over groups of training datasets
        folds = _fold_of(train, cfg.inner_folds, cfg.seed + 1)
        fold_arr = np.array([folds[g] for g in groups])
        oof = {v: np.full(len(y), np.nan) for v in variants}
        if need_lgbm:
            for v in variants:
                pi, obj, fs = v
                cols = list(featsets[fs])
                for f in range(cfg.inner_folds):
                    tr, te = fold_arr != f, fold_arr == f
                    if not te.any() or not tr.any():
                        continue
                    oof[v][te] = self._fit_one(X.loc[:, cols][tr], y[tr], groups[tr], cfg.lgbm_grid[pi], obj).predict(X.loc[:, cols][te])

        # blend search: score = a*z(lgbm) + (1-a)*(b*z(prior) + (1-b)*z(sw_tau)) + c*z(graph)
        taus = [t for t in cfg.taus if f"e_sw{t}" in X] or [None]
        priors = [p for p in cfg.priors if p in X] or [None]
        has_g = "g_score" in X
        cgrid = cfg.graph_grid if has_g else (0.0,)
        combos = []
        for v in (variants if need_lgbm else [None]):
            for a in cfg.blend_grid:
                if a < 1 and taus == [None] and priors == [None]:
                    continue
                rest = (0.0,) if a == 1 else cfg.prior_grid
                for b in rest:
                    for p in (priors if a < 1 and b > 0 else [priors[0]]):
                        for tau in (taus if a < 1 and b < 1 else [taus[0]]):
                            for c in cgrid:
                                combos.append((v, a, p, b, tau, c))
        total = np.zeros(len(combos))
        for d in train:
            m = groups == d
            t = tables.quality[d].to_numpy(dtype=float)[np.isfinite(tables.norm[d].to_numpy(dtype=float))]
            comp: dict[Any, np.ndarray] = {}
            for v in (variants if need_lgbm else []):
                comp[("L", v)] = _z(oof[v][m])
            for p in priors:
                if p is not None:
                    comp[("P", p)] = _z(X[p].to_numpy()[m])
            for tau in taus:
                if tau is not None:
                    comp[("S", tau)] = _z(X[f"e_sw{tau}"].to_numpy()[m])
            g = _z(X["g_score"].to_numpy()[m]) if has_g else 0.0
            zero = np.zeros(int(m.sum()))
            S = np.stack([
                (a * comp[("L", v)] if a > 0 else zero)
                + ((1 - a) * b * comp[("P", p)] if a < 1 and b > 0 else zero)
                + ((1 - a) * (1 - b) * comp[("S", tau)] if a < 1 and b < 1 else zero)
                + (c * g if c > 0 else zero)
                for v, a, p, b, tau, c in combos
            ])
            total += _criterion(S, t)
        best = int(np.argmax(total))
        v, a, p, b, tau, c = combos[best]
        pi, obj, fs = v if v is not None else (0, objectives[0], 0)
        self.lgbm_params, self.objective = cfg.lgbm_grid[pi], obj
        self.lgbm_features = list(featsets[fs])
        self.tau, self.alpha = (tau if tau is not None else 1.0), a
        self.blend = {"lgbm": a, "prior": p, "prior_share": b, "tau": tau, "graph": c}
        self.cv = {
            "inner_score": float(total[best] / max(len(train), 1)), "tau": self.tau, "alpha": a, "lgbm": pi,
            "objective": obj, "lgbm_graph_features": "g_score" in self.lgbm_features, "prior": p,
            "prior_share": b, "graph_weight": c, "excluded": dict(self.excluded), "combos": len(combos),
        }
        self.model = self._fit_one(X[self.lgbm_features], y, groups, self.lgbm_params, obj) if a > 0 else None
        self.version = hashlib.sha256(
            pickle.dumps((sorted(train), tables.norm[train].round(6).fillna(-1).to_numpy().tobytes(), repr(cfg)))
        ).hexdigest()[:16]
        return self

    def _fit_one(self, X, y, groups, params, objective=None):
        objective = objective or ("regression" if self.config.objective == "auto" else self.config.objective)
        if objective == "lambdarank":
            order = np.argsort(groups, kind="stable")
            _, counts = np.unique(groups[order], return_counts=True)
            return _lgbm(params, "lambdarank", self.config.seed).fit(X.iloc[order], _relevance(y[order]), group=counts)
        return _lgbm(params, "regression", self.config.seed).fit(X, y)

    # ---- ranking
    def scores(self, tables: GraphTables, target: str, context: Sequence[str] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
        """Blended score of every model in tables.models for `target`, plus the feature frame."""
        excluded = set(self.excluded)
        context = [d for d in (context if context is not None else tables.datasets)
                   if d != target and d not in excluded and tables.norm[d].notna().any()]
        gs = None
        if "graph" in self.config.families and self.embedder is not None:
            gs = self.graph_scores if (self.graph_scores and target in self.graph_scores
                                       and len(self.graph_scores[target]) == len(tables.models)) else None
            if gs is None:
                gs = self.embedder.edge_scores(tables, context, [target])
        F = row_features(tables, target, context, gs, self.config.families)
        b = self.blend or {"lgbm": self.alpha, "prior": None, "prior_share": 0.0, "tau": self.tau, "graph": 0.0}
        a = b["lgbm"]
        score = np.zeros(len(tables.models))
        if a > 0 and self.model is not None:
            score += a * _z(_predict(self.model, F[self.lgbm_features or self.feature_names]))
        if a < 1 and b["prior_share"] > 0 and b["prior"] in F:
            score += (1 - a) * b["prior_share"] * _z(F[b["prior"]].to_numpy())
        if a < 1 and b["prior_share"] < 1 and f"e_sw{b['tau']}" in F:
            score += (1 - a) * (1 - b["prior_share"]) * _z(F[f"e_sw{b['tau']}"].to_numpy())
        if b["graph"] > 0 and "g_score" in F:
            score += b["graph"] * _z(F["g_score"].to_numpy())
        return np.nan_to_num(score, nan=-1e9), F

    def rank(
        self,
        zoo: Zoo | GraphTables,
        target: str,
        *,
        candidates: Sequence[str] | None = None,
        k: int | None = 10,
        distances: dict[str, float] | None = None,
        metadata: dict[str, float] | None = None,
        explain_neighbours: int = 3,
    ) -> list[RankedModel]:
        """Rank candidate models for `target` (a dataset in the zoo, or a new one given by its
        distances to known datasets and optional metadata). Evidence comes from the current rows."""
        tables = zoo if isinstance(zoo, GraphTables) else tables_from_zoo(zoo)
        if target not in tables.datasets or distances:
            tables = tables.with_target(target, distances or {}, metadata)
        score, F = self.scores(tables, target)
        idx = {m: i for i, m in enumerate(tables.models)}
        cand = [m for m in (candidates or tables.models) if m in idx]
        ci = np.array([idx[m] for m in cand], dtype=int)
        order = ci[np.argsort(-score[ci], kind="stable")] if len(ci) else ci
        if k is not None:
            order = order[:k]
        excluded = set(self.excluded)
        context = [d for d in tables.datasets if d != target and d not in excluded and tables.norm[d].notna().any()]
        dist = tables.distance(target, context)
        near = [context[i] for i in np.argsort(np.where(np.isfinite(dist), dist, np.inf))[:explain_neighbours]]
        near_dist = tables.distance(target, near)
        sw = F[f"e_sw{self.tau}"].to_numpy() if f"e_sw{self.tau}" in F else None
        out = []
        for r, i in enumerate(order, start=1):
            m = tables.models[i]
            out.append(RankedModel(m, float(score[i]), r, {
                "similar_datasets": [{"dataset": d, "distance": float(near_dist[j]),
                                      "normalised_quality": _f(tables.norm.iat[i, tables.norm.columns.get_loc(d)])}
                                     for j, d in enumerate(near)],
                "similarity_weighted_quality": _f(sw[i]) if sw is not None else None,
                "mean_quality_elsewhere": _f(F["e_mean"].iat[i]) if "e_mean" in F else None,
                "results_elsewhere": int(F["e_count"].iat[i]) if "e_count" in F else None,
                "graph_score": _f(F["g_score"].iat[i]) if "g_score" in F else None,
                "predictor_version": self.version,
            }))
        return out

    # ---- persistence (graph_versions artifact)
    def to_bytes(self) -> bytes:
        emb = self.embedder
        state = dict(self.__dict__)
        state["model"] = self.model.booster_.model_to_string() if self.model is not None else None
        state["model_kind"] = type(self.model).__name__ if self.model is not None else None
        state["embedder"] = (type(emb).__name__, emb.to_bytes() if hasattr(emb, "to_bytes") else pickle.dumps(emb)) if emb else None
        state["graph_scores"] = None  # fold-local cache, recomputed at rank time
        return pickle.dumps(state)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Ranker":
        import lightgbm as lgb

        from .embed import GNNEmbedder

        state = pickle.loads(data)
        r = cls(state["config"])
        model_str, kind, emb = state.pop("model"), state.pop("model_kind"), state.pop("embedder")
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
