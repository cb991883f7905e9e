"""The matching graph: models and datasets as nodes, built from plain rows.

- model–dataset edges: fine-tuning quality, oriented by higher_is_better and min-max
  normalised per dataset (1 = best model on that dataset, 0 = worst);
- dataset–dataset edges: each dataset to its k nearest datasets by distance;
- node features: model metadata (family, size, resolution, pretraining) and dataset
  metadata (size, classes).

`GraphTables` holds the dense tables every other module reads; `to_hetero_data` gives
the PyTorch Geometric `HeteroData` view and `message_graph` the homogeneous one the
GNN encoders use. A dataset outside `visible` keeps its node and similarity edges but
none of its results: that is how a target is hidden and how a new dataset is added.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from .records import Zoo
from .similarity import comparable_coverage

MODEL_NUMERIC = ("num_parameters", "resolution", "output_shape", "pretrain_accuracy", "pretrain_labels", "memory")


def normalise_quality(q: pd.DataFrame) -> pd.DataFrame:
    """Per-dataset min-max of oriented quality: comparable across datasets and metrics."""
    lo, hi = q.min(axis=0), q.max(axis=0)
    return (q - lo) / (hi - lo).where(hi - lo > 0, 1.0)


@dataclass
class GraphTables:
    models: list[str]
    datasets: list[str]
    quality: pd.DataFrame  # raw oriented quality, models x datasets
    norm: pd.DataFrame  # normalised quality
    dist: pd.DataFrame  # distances between datasets (and external names such as pretraining sets)
    model_feats: pd.DataFrame  # numeric model metadata, models x MODEL_NUMERIC
    families: list[str]
    model_family: pd.Series  # model -> family ('' unknown)
    dataset_feats: pd.DataFrame  # datasets x (log_size, log_classes)
    pretrain_key: pd.Series  # model -> name in dist of its pretraining data, or None
    # with several similarity methods: each one's distances on dist's index (dist is their mean);
    # empty with one method. A ranker may choose one (RankerConfig.similarity), see with_method
    dist_by_method: dict[str, pd.DataFrame] = field(default_factory=dict)
    # directed coverage divergences, covered dataset (rows) x reference such as a pretraining set
    # (columns), see records.CoverageRow; empty when the rows give none
    coverage: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(dtype=float))

    def distance(self, a: str, b: Iterable[str]) -> np.ndarray:
        """Distances from `a` to each of `b`, NaN where either is unknown."""
        pos = self.dist_positions()
        at = [pos.get(x, -1) for x in b]
        if a not in pos:
            return np.full(len(at), np.nan)
        at = np.array(at, dtype=int)
        row = memo(self, "dist_array", lambda: self.dist.to_numpy(dtype=float))[pos[a]]
        return np.where(at >= 0, row[np.maximum(at, 0)], np.nan) if len(at) else np.empty(0)

    def dist_positions(self) -> dict[str, int]:
        """Row of each name in dist (memoised; shared, so not to be edited)."""
        return memo(self, "dist_positions", lambda: {n: i for i, n in enumerate(self.dist.index.tolist())})

    def with_method(self, method: str) -> "GraphTables":
        """These tables with one similarity method's distances as dist (memoised; unchanged when the
        method is not among dist_by_method)."""
        if method not in self.dist_by_method:
            return self
        return memo(self, ("with_method", method), lambda: replace(self, dist=self.dist_by_method[method], dist_by_method={}))

    def with_target(self, name: str, distances: dict[str, float], meta: dict[str, float] | None = None,
                    coverage: dict[str, float] | None = None) -> "GraphTables":
        """A copy with an extra dataset node known only by its distances (inductive ranking); the
        distances, given in one measure, stand for every similarity method's; `coverage` (reference
        -> divergence) becomes its coverage row. The copy knows its parent (see `derived_from`), so
        per-tables work that the new node cannot change is reused."""
        # numpy and Index.append rather than reindex / .loc enlargement or lists of the labels:
        # this runs on every rank of an inline dataset
        base = self.dist.index
        pos = self.dist_positions()
        at = pos.get(name, len(pos))
        names = base if name in pos else base.append(pd.Index([name], dtype=base.dtype))
        known = [(at if o == name else pos[o], float(v)) for o, v in distances.items() if o in pos or o == name]
        rows = np.array([i for i, _ in known], dtype=int)
        values = np.array([v for _, v in known], dtype=float)

        def add(frame: pd.DataFrame) -> pd.DataFrame:
            if frame.index.equals(base) and frame.columns.equals(base):
                a = np.full((len(names), len(names)), np.nan)
                a[: len(frame), : len(frame)] = frame.to_numpy(dtype=float)
            else:
                a = frame.reindex(index=names, columns=names).to_numpy(dtype=float, copy=True)
            a[at, rows] = values
            a[rows, at] = values
            a[at, at] = 0.0
            return pd.DataFrame(a, index=names.rename(frame.index.name), columns=names.rename(frame.columns.name))

        def with_column(frame: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
            """frame with the new dataset's empty column (columns = the datasets, then it)."""
            if frame.columns.equals(columns[:-1]):
                a = np.hstack([frame.to_numpy(dtype=float), np.full((len(frame), 1), np.nan)])
                return pd.DataFrame(a, index=frame.index, columns=columns.rename(frame.columns.name))
            return frame.reindex(columns=columns)

        dist = add(self.dist)
        meta = meta or {}
        row = [_log(meta.get("size")), _log(meta.get("number_of_classes"))]
        if name in self.dataset_feats.index:
            feats = self.dataset_feats.copy()
            feats.loc[name] = row
        else:
            index = self.dataset_feats.index
            feats = pd.DataFrame(np.vstack([self.dataset_feats.to_numpy(dtype=float), [row]]),
                                 index=index.append(pd.Index([name], dtype=index.dtype)).rename(index.name),
                                 columns=self.dataset_feats.columns)
        if name in self.datasets:
            datasets, quality, norm = self.datasets, self.quality, self.norm
        else:
            datasets = self.datasets + [name]
            columns = memo(self, "datasets_index", lambda: pd.Index(self.datasets))
            columns = columns.append(pd.Index([name], dtype=columns.dtype))
            quality, norm = with_column(self.quality, columns), with_column(self.norm, columns)
        cov = self.coverage
        if coverage:
            row = pd.DataFrame([coverage], index=[name], dtype=float)
            cov = pd.concat([cov.drop(index=name, errors="ignore"), row]) if len(cov) else row
        out = GraphTables(
            self.models, datasets, quality, norm, dist,
            self.model_feats, self.families, self.model_family, feats, self.pretrain_key,
            {m: add(d) for m, d in self.dist_by_method.items()}, cov,
        )
        if name not in self.datasets and name not in self.dist.index:
            out.__dict__["derived_from"] = (self, name)
        return out


def derived_from(tables: GraphTables) -> tuple[GraphTables, str] | None:
    """(parent, new dataset) for tables made by with_target for a dataset new to the parent, else None."""
    return tables.__dict__.get("derived_from")


def memo(tables: GraphTables, key, fn):
    """Per-tables cache of target-independent derived data (node features, rank-normalised
    quality, edge pieces). Tables are treated as immutable: build new ones when rows change
    (tables_from_zoo, with_target), never edit their frames in place."""
    cache = tables.__dict__.setdefault("_memo", {})
    if key not in cache:
        cache[key] = fn()
    return cache[key]


def _log(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return np.nan
    return float(np.log10(x)) if x > 0 else np.nan


def tables_from_zoo(zoo: Zoo) -> GraphTables:
    q = zoo.quality_matrix()
    models, datasets = list(q.index), list(q.columns)
    dist = zoo.distance_matrix(include_external=True)
    methods = zoo.similarity_methods()
    by_method = {m: zoo.distance_matrix(include_external=True, method=m).reindex(index=dist.index, columns=dist.columns)
                 for m in methods} if len(methods) > 1 else {}
    coverage = coverage_table(zoo)
    rows = {}
    pre = {}
    for m in models:
        row = zoo.models.get(m)
        f = row.features if row else {}
        rows[m] = {
            "num_parameters": _log(row.num_parameters if row else None),
            "resolution": row.resolution if row and row.resolution else np.nan,
            "output_shape": f.get("output_shape", np.nan),
            "pretrain_accuracy": f.get("accuracy", np.nan),
            "pretrain_labels": _log(f.get("#labels")),
            "memory": _log(f.get("memory_consumption")),
        }
        key = None
        if row is not None:
            for cand in (row.pretraining_data, row.metadata.get("labels")):
                if cand and (cand in dist.index or cand in coverage.columns):
                    key = cand
                    break
        pre[m] = key
    fam = pd.Series({m: ((zoo.models[m].family or "") if m in zoo.models else "") for m in models}, dtype=object)
    dfe = {}
    for d in datasets:
        meta = zoo.datasets[d].metadata if d in zoo.datasets else {}
        size = zoo.datasets[d].size if d in zoo.datasets else None
        dfe[d] = [_log(size if size is not None else meta.get("size")), _log(meta.get("number_of_classes"))]
    return GraphTables(
        models=models,
        datasets=datasets,
        quality=q,
        norm=normalise_quality(q),
        dist=dist,
        model_feats=pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(MODEL_NUMERIC)).astype(float),
        families=sorted(set(fam)),
        model_family=fam,
        dataset_feats=pd.DataFrame.from_dict(dfe, orient="index", columns=["log_size", "log_classes"]).astype(float),
        pretrain_key=pd.Series(pre, dtype=object),
        dist_by_method=by_method,
        coverage=coverage,
    )


def coverage_table(zoo: Zoo) -> pd.DataFrame:
    """Coverage divergences of every dataset by every model's pretraining set: the zoo's coverage
    rows, and where a pair has none but both have profiles of one layout, computed from the
    profiles (similarity.profile_coverage; a pure function of the two, so nothing is stored)."""
    given = zoo.coverage_matrix()
    computed: dict[str, dict[str, float]] = {}
    for name, row in zoo.datasets.items():
        if row.profile is None:
            continue
        for ref, value in pretraining_coverage_of(zoo, row.profile).items():
            if ref != name and not (name in given.index and ref in given.columns and np.isfinite(given.at[name, ref])):
                computed.setdefault(name, {})[ref] = value
    if not computed:
        return given
    extra = pd.DataFrame.from_dict(computed, orient="index", dtype=float)
    return extra.combine_first(given) if len(given) else extra


def pretraining_coverage_of(zoo: Zoo, profile) -> dict[str, float]:
    """A profile's coverage divergence by each model's profiled pretraining set (a dataset of the
    zoo, reference -> divergence); sets profiled with other encoders (another layout) are left out."""
    out = {}
    for ref in sorted({m.pretraining_data for m in zoo.models.values() if m.pretraining_data}):
        row = zoo.datasets.get(ref)
        if row is not None and row.profile is not None:
            value = comparable_coverage(profile, row.profile)
            if value is not None:
                out[ref] = value
    return out


def knn_dataset_edges(tables: GraphTables, datasets: Sequence[str], candidates: Sequence[str], k: int) -> list[tuple[str, str, float]]:
    """Each dataset in `datasets` to its k nearest among `candidates` (itself excluded)."""
    out = []
    for d in datasets:
        others = [c for c in candidates if c != d]
        if not others:
            continue
        dist = tables.distance(d, others)
        ok = np.where(np.isfinite(dist))[0]
        for i in ok[np.argsort(dist[ok])][:k]:
            out.append((d, others[i], float(dist[i])))
    return out


@dataclass
class MessageGraph:
    """Homogeneous view: nodes 0..M-1 are models, M.. are datasets."""

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_weight: torch.Tensor
    node_of: dict[tuple[str, str], int]
    num_models: int


def node_features(tables: GraphTables, stats: "FeatureStats | None" = None) -> torch.Tensor:
    """Node features; standardised with `stats` (an encoder's, fitted on its training data) or,
    without, over the tables' own models and datasets."""
    key = "node_features" if stats is None else ("node_features", stats.key)
    return memo(tables, key, lambda: _node_features(tables, stats))


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Means and standard deviations of the numeric node features, fitted once: with them a node's
    features do not depend on which other datasets the tables hold (a new one changes nothing)."""

    model_mean: tuple[float, ...]
    model_std: tuple[float, ...]
    dataset_mean: tuple[float, ...]
    dataset_std: tuple[float, ...]

    @classmethod
    def fit(cls, tables: GraphTables, datasets: Sequence[str]) -> "FeatureStats":
        mf = tables.model_feats.to_numpy(dtype=float)
        df = tables.dataset_feats.reindex(list(datasets)).to_numpy(dtype=float)
        with warnings.catch_warnings():  # all-NaN columns stay NaN: metadata-less records
            warnings.simplefilter("ignore", RuntimeWarning)
            return cls(*(tuple(float(v) for v in f(a, axis=0)) for a in (mf, df) for f in (np.nanmean, np.nanstd)))

    @cached_property  # hashed on every memo lookup of a rank: built once (the fields are frozen)
    def key(self) -> tuple:
        """Hashable and equal for equal statistics (NaN, an all-empty column, as None)."""
        return tuple(tuple(None if np.isnan(v) else v for v in part)
                     for part in (self.model_mean, self.model_std, self.dataset_mean, self.dataset_std))

    def __eq__(self, other) -> bool:
        return isinstance(other, FeatureStats) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def _standardise_columns(a: np.ndarray, mean=None, std=None) -> np.ndarray:
    """Columns to mean 0 / std 1 over their finite entries (or by the given mean/std); an all-NaN
    column stays NaN, quietly (metadata-less external datasets such as pretraining sets make
    whole columns empty)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(a, axis=0) if mean is None else np.asarray(mean, dtype=float)
        std = np.nanstd(a, axis=0) if std is None else np.asarray(std, dtype=float)
        return (a - mean) / (std + 1e-9)


def _node_features(tables: GraphTables, stats: FeatureStats | None = None) -> torch.Tensor:
    mf = tables.model_feats.to_numpy(dtype=float)
    mf = _standardise_columns(mf) if stats is None else _standardise_columns(mf, stats.model_mean, stats.model_std)
    fam = np.zeros((len(tables.models), len(tables.families)))
    codes = pd.Categorical(tables.model_family.reindex(tables.models).fillna("").to_numpy(), categories=tables.families).codes
    fam[np.arange(len(tables.models)), np.maximum(codes, 0)] = 1
    M = len(tables.models)
    x = np.zeros((M, _feature_width(tables)))
    x[:, : mf.shape[1]] = mf
    x[:, mf.shape[1] : mf.shape[1] + fam.shape[1]] = fam
    x[:, -2] = 1
    models = torch.tensor(np.nan_to_num(x), dtype=torch.float32)
    return torch.cat([models, dataset_node_features(tables, tables.datasets, stats)])


def _feature_width(tables: GraphTables) -> int:
    return tables.model_feats.shape[1] + len(tables.families) + tables.dataset_feats.shape[1] + 2


def dataset_node_features(tables: GraphTables, names: Sequence[str], stats: FeatureStats | None = None) -> torch.Tensor:
    """The feature rows of some dataset nodes. Without `stats` they are standardised over all the
    tables' datasets, so only with stats does a row not depend on the other datasets."""
    if stats is None:
        every = _standardise_columns(tables.dataset_feats.reindex(tables.datasets).to_numpy(dtype=float))
        pos = {d: j for j, d in enumerate(tables.datasets)}
        df = every[[pos[n] for n in names]]
    else:
        pos, raw = memo(tables, "dataset_feats_rows", lambda: (
            {d: j for j, d in enumerate(tables.dataset_feats.index.tolist())},
            np.vstack([tables.dataset_feats.to_numpy(dtype=float), np.full((1, tables.dataset_feats.shape[1]), np.nan)])))
        df = raw[[pos.get(n, -1) for n in names]]  # a name without a row reads the NaN row, as reindex would
        df = _standardise_columns(df, stats.dataset_mean, stats.dataset_std)
    x = np.zeros((len(names), _feature_width(tables)))
    start = tables.model_feats.shape[1] + len(tables.families)
    x[:, start:-2] = df
    x[:, -1] = 1
    return torch.tensor(np.nan_to_num(x), dtype=torch.float32)


def message_graph(
    tables: GraphTables, visible: Iterable[str], *, k: int = 3, good: float = 0.5, x: torch.Tensor | None = None
) -> MessageGraph:
    """Result edges of visible datasets whose normalised quality is >= good, plus kNN similarity edges.

    Every dataset node (visible or not) gets its kNN edges to visible datasets, so a hidden or
    new dataset is reached only through similarity: the inductive path.
    """
    visible = [d for d in tables.datasets if d in set(visible)]
    M = len(tables.models)
    node_of = {("model", m): i for i, m in enumerate(tables.models)}
    node_of.update({("dataset", d): M + j for j, d in enumerate(tables.datasets)})
    src, dst, w = [], [], []
    n = tables.norm
    for d in visible:
        col = n[d].to_numpy(dtype=float)
        for i in np.where(np.isfinite(col) & (col >= good))[0]:
            a, b = i, node_of[("dataset", d)]
            src += [a, b]
            dst += [b, a]
            w += [col[i], col[i]]
    dists = [dd for _, _, dd in knn_dataset_edges(tables, tables.datasets, visible, k)]
    scale = float(np.median(dists)) if dists else 1.0
    for a, b, dd in knn_dataset_edges(tables, tables.datasets, visible, k):
        sim = float(np.exp(-dd / max(scale, 1e-9)))
        # message flows from the visible neighbour into the dataset (and back, if it is visible too)
        src.append(node_of[("dataset", b)])
        dst.append(node_of[("dataset", a)])
        w.append(sim)
    ei = torch.tensor([src, dst], dtype=torch.long) if src else torch.zeros((2, 0), dtype=torch.long)
    return MessageGraph(x if x is not None else node_features(tables), ei, torch.tensor(w, dtype=torch.float32), node_of, M)


def to_hetero_data(tables: GraphTables, visible: Iterable[str], *, k: int = 3):
    """The matching graph as a PyG HeteroData (for inspection, export and hetero models)."""
    from torch_geometric.data import HeteroData

    visible = [d for d in tables.datasets if d in set(visible)]
    g = message_graph(tables, visible, k=k, good=-np.inf)
    data = HeteroData()
    M = g.num_models
    data["model"].x = g.x[:M]
    data["dataset"].x = g.x[M:]
    data["model"].names = list(tables.models)
    data["dataset"].names = list(tables.datasets)
    ms, ds, ws = [], [], []
    di = {d: j for j, d in enumerate(tables.datasets)}
    for d in visible:
        col = tables.norm[d].to_numpy(dtype=float)
        for i in np.where(np.isfinite(col))[0]:
            ms.append(i)
            ds.append(di[d])
            ws.append(col[i])
    data["model", "finetuned_on", "dataset"].edge_index = torch.tensor([ms, ds], dtype=torch.long)
    data["model", "finetuned_on", "dataset"].edge_weight = torch.tensor(ws, dtype=torch.float32)
    a, b, w = zip(*knn_dataset_edges(tables, tables.datasets, visible, k)) if visible else ((), (), ())
    data["dataset", "similar_to", "dataset"].edge_index = torch.tensor([[di[x] for x in a], [di[x] for x in b]], dtype=torch.long)
    data["dataset", "similar_to", "dataset"].edge_weight = torch.tensor(w, dtype=torch.float32)
    return data
