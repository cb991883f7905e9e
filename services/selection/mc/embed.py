"""Graph embeddings of the matching graph.

GraphSAGE / GAT (PyTorch Geometric) are trained by link regression: predict the
normalised quality of a model–dataset edge from the two node embeddings. Training is
episodic: each step hides the results of a random third of the visible datasets from
message passing and scores exactly those hidden edges, so the encoder learns what it is
used for: to embed a dataset that is reached only through its similarity edges.

Inductive scheme: a dataset with no results (a LODO target, or a new dataset at rank
time) is a node with only its k-nearest-dataset edges; one forward pass of the trained
encoder embeds it. Nothing is retrained. Messages only flow out of datasets with results, and
the encoder's preprocessing (feature standardisation, the similarity-edge scale) is fitted
once on its training datasets, so a new node changes no other node's embedding: a new dataset
is embedded from its k neighbours' cached layer states alone (`edge_scores`), the same numbers
as a forward pass over the whole graph with it, at a fraction of the cost.

node2vec (library `node2vec` 0.5, networkx + gensim; PyG's Node2Vec needs pyg-lib, not on
PyPI; pecanpy pins numpy<2) is the transductive comparison: a dataset absent from the
trained graph gets the similarity-weighted mean of its k nearest datasets' vectors.
"""

from __future__ import annotations

import io
from dataclasses import astuple, dataclass, field
from typing import Sequence

import numpy as np
import torch
from scipy.special import expit  # the logistic function without overflow
from torch import nn

from .graph import (
    FeatureStats, GraphTables, dataset_node_features, derived_from, knn_dataset_edges, memo, node_features,
)


class LinkEncoder(nn.Module):
    def __init__(self, in_dim: int, dim: int, kind: str):
        super().__init__()
        from torch_geometric.nn import GATConv, SAGEConv

        self.kind = kind
        self.inp = nn.Linear(in_dim, dim)
        if kind == "sage":
            self.convs = nn.ModuleList([SAGEConv(dim, dim), SAGEConv(dim, dim)])
        elif kind == "gat":
            self.convs = nn.ModuleList([GATConv(dim, dim, heads=2, concat=False, edge_dim=1) for _ in range(2)])
        else:
            raise ValueError(f"unknown GNN kind {kind!r}")
        # edge-regression head: the predicted normalised quality of a (model, dataset) edge
        # from the pair's interaction and each side alone, so a model's general quality is
        # carried too and the score cannot collapse to the dot product's near-constant.
        self.head = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, x, edge_index, edge_weight):
        return self.layer_states(x, edge_index, edge_weight)[-1]

    def layer_states(self, x, edge_index, edge_weight) -> list[torch.Tensor]:
        """Every node's state after the input layer and after each convolution."""
        states = [torch.relu(self.inp(x))]
        for conv in self.convs:
            states.append(self.step(conv, states[-1], edge_index, edge_weight))
        return states

    def step(self, conv, h, edge_index, edge_weight):
        out = conv(h, edge_index) if self.kind == "sage" else conv(h, edge_index, edge_attr=edge_weight[:, None])
        return h + torch.relu(out)  # residual: nodes with few edges keep their own features

    def score(self, hm, hd):
        return torch.sigmoid(self.head(torch.cat([hm * hd, hm, hd], dim=-1)).squeeze(-1))


class _Edges:
    """Precomputed pieces of `graph.message_graph` (same edges, built with numpy): result edges
    per dataset and the distance matrix, so an episode's graph costs a concatenation."""

    def __init__(self, tables: GraphTables, k: int, good: float = 0.5, scale: float | None = None):
        self.scale = scale  # of the similarity edges' weights exp(-d / scale); None: per graph, the median
        self.M = len(tables.models)
        self.datasets = list(tables.datasets)
        self.pos = {d: j for j, d in enumerate(self.datasets)}
        self.k = k
        D = tables.dist.reindex(index=self.datasets, columns=self.datasets).to_numpy(dtype=float)
        self.D = D
        norm = tables.norm.reindex(columns=self.datasets).to_numpy(dtype=float)
        self.norm = norm
        self.res = {}
        for j, d in enumerate(self.datasets):
            col = norm[:, j]
            i = np.where(np.isfinite(col) & (col >= good))[0]
            node = self.M + j
            src = np.concatenate([i, np.full(len(i), node)])
            dst = np.concatenate([np.full(len(i), node), i])
            self.res[d] = (src, dst, np.concatenate([col[i], col[i]]))

    def visible_positions(self, shown: Sequence[str]) -> np.ndarray:
        shown = set(shown)
        return np.array([self.pos[d] for d in self.datasets if d in shown], dtype=int)

    @staticmethod
    def nearest(row: np.ndarray, vis: np.ndarray, j: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Dataset j's k nearest among the visible positions (itself excluded): positions, distances."""
        cand = vis[vis != j]
        dd = row[cand]
        ok = np.isfinite(dd)
        cand, dd = cand[ok], dd[ok]
        sel = np.argsort(dd, kind="stable")[:k]
        return cand[sel], dd[sel]

    def fitted_scale(self, visible: Sequence[str]) -> float:
        """The median distance from a visible dataset to its k nearest visible ones."""
        vis = self.visible_positions(visible)
        dd = [self.nearest(self.D[j], vis, j, self.k)[1] for j in vis]
        dd = np.concatenate(dd) if dd else np.zeros(0)
        return float(np.median(dd)) if len(dd) else 1.0

    def graph(self, shown: Sequence[str]):
        shown = [d for d in self.datasets if d in set(shown)]
        parts = [self.res[d] for d in shown]
        vis = self.visible_positions(shown)
        ks, kd, kw = [], [], []
        for j in range(len(self.datasets)):
            cand, dd = self.nearest(self.D[j], vis, j, self.k)
            if not len(cand):
                continue
            ks.append(self.M + cand)
            kd.append(np.full(len(cand), self.M + j))
            kw.append(dd)
        if kw:
            kw_all = np.concatenate(kw)
            scale = self.scale if self.scale is not None else (float(np.median(kw_all)) if len(kw_all) else 1.0)
            parts.append((np.concatenate(ks), np.concatenate(kd), np.exp(-kw_all / max(scale, 1e-9))))
        if not parts:
            return torch.zeros((2, 0), dtype=torch.long), torch.zeros(0)
        src = np.concatenate([p[0] for p in parts])
        dst = np.concatenate([p[1] for p in parts])
        w = np.concatenate([p[2] for p in parts])
        return torch.tensor(np.stack([src, dst]), dtype=torch.long), torch.tensor(w, dtype=torch.float32)


def _array(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


@dataclass
class _OneNodeLayer:
    """One convolution's output for a single destination node h whose incoming edges come from
    `sources` (n x dim) and, for GAT, its own self-loop (weight[-1]): what PyG's layer gives that
    node in a forward pass, in numpy with the layer's weights read once. A new dataset's node is
    computed this way at rank time: PyG's message passing cost ~1 ms a call on a graph of four
    nodes, and torch's per-call overhead on such small tensors most of the rest (tested against
    PyG's layer and against the whole graph's forward pass)."""

    kind: str
    weight: np.ndarray  # GAT: lin (dim x heads*out); SAGE: lin_l (dim x out)
    bias: np.ndarray | None
    att_src: np.ndarray | None = None  # GAT: heads x out
    att_dst: np.ndarray | None = None
    att_edge: np.ndarray | None = None  # GAT: per head, the edge attribute's attention (lin_edge . att_edge)
    negative_slope: float = 0.2
    root: np.ndarray | None = None  # SAGE: lin_r (dim x out), or None without root weight

    @classmethod
    def of(cls, conv) -> "_OneNodeLayer | None":
        """The layer's weights, or None for a layer type or option this does not cover."""
        from torch_geometric.nn import GATConv, SAGEConv

        if isinstance(conv, GATConv):
            if (conv.lin is None or conv.lin.bias is not None or conv.concat or conv.lin_edge is None
                    or conv.lin_edge.bias is not None or getattr(conv, "res", None) is not None):
                return None
            H, C = conv.heads, conv.out_channels
            edge = (_array(conv.lin_edge.weight)[:, 0].reshape(H, C) * _array(conv.att_edge)[0]).sum(-1)
            return cls("gat", _array(conv.lin.weight).T.copy(), None if conv.bias is None else _array(conv.bias),
                       _array(conv.att_src)[0], _array(conv.att_dst)[0], edge, float(conv.negative_slope))
        if isinstance(conv, SAGEConv):
            if conv.project or conv.normalize or conv.aggr != "mean" or conv.lin_l.bias is None:
                return None
            return cls("sage", _array(conv.lin_l.weight).T.copy(), _array(conv.lin_l.bias),
                       root=_array(conv.lin_r.weight).T.copy() if conv.root_weight else None)
        return None

    def __call__(self, sources: np.ndarray, h: np.ndarray, weight: np.ndarray) -> np.ndarray:
        if self.kind == "gat":
            H, C = self.att_src.shape
            x = (np.concatenate([sources, h]) @ self.weight).reshape(-1, H, C)  # sources, then h (its self-loop)
            alpha = (x * self.att_src).sum(-1) + (x[-1] * self.att_dst).sum(-1) + weight[:, None] * self.att_edge
            alpha = np.where(alpha > 0, alpha, alpha * self.negative_slope)
            alpha = np.exp(alpha - alpha.max(0))
            alpha /= alpha.sum(0)
            out = (alpha[..., None] * x).sum(0).mean(0, keepdims=True)  # heads averaged (concat=False)
            return out if self.bias is None else out + self.bias
        mean = sources.mean(0, keepdims=True) if len(sources) else np.zeros_like(h)
        out = mean @ self.weight + self.bias
        return out + h @ self.root if self.root is not None else out


@dataclass
class _OneNodeNet:
    """LinkEncoder's input layer, convolutions (None where PyG must compute) and edge head, in
    numpy, for scoring one new dataset against every model."""

    inp_weight: np.ndarray
    inp_bias: np.ndarray
    layers: list[_OneNodeLayer | None]
    head_pair: np.ndarray  # the head's first layer, split by its input: hm * hd, hm, hd
    head_model: np.ndarray
    head_dataset: np.ndarray
    head_bias: np.ndarray
    out_weight: np.ndarray
    out_bias: float

    @classmethod
    def of(cls, net: "LinkEncoder") -> "_OneNodeNet":
        first, last = net.head[0], net.head[2]
        w1 = _array(first.weight)
        d = w1.shape[1] // 3
        return cls(_array(net.inp.weight).T.copy(), _array(net.inp.bias), [_OneNodeLayer.of(c) for c in net.convs],
                   w1[:, :d].T.copy(), w1[:, d:2 * d].T.copy(), w1[:, 2 * d:].T.copy(), _array(first.bias),
                   _array(last.weight)[0], float(_array(last.bias)[0]))

    def score(self, hm: np.ndarray, hm_part: np.ndarray, hd: np.ndarray) -> np.ndarray:
        """LinkEncoder.score of every model state hm (rows) with one dataset state hd; hm_part is
        hm @ head_model, fixed per graph: head(cat[hm*hd, hm, hd]) = hm @ (hd * W_pair) + hm @ W_model + hd @ W_dataset + b."""
        z = hm @ (hd[:, None] * self.head_pair) + hm_part + (hd @ self.head_dataset + self.head_bias)
        return expit(np.maximum(z, 0) @ self.out_weight + self.out_bias)


@dataclass
class GNNEmbedder:
    kind: str = "sage"
    dim: int = 16
    epochs: int = 80
    lr: float = 0.01
    k: int = 3
    hide_fraction: float = 0.34
    seed: int = 0
    state: dict = field(default_factory=dict, repr=False)
    in_dim: int = 0
    # preprocessing fitted on the training datasets (None in encoders stored before it existed:
    # those standardise over the tables at hand and scale the similarity edges per graph)
    stats: FeatureStats | None = None
    edge_scale: float | None = None

    def _x(self, tables: GraphTables) -> torch.Tensor:
        return node_features(tables, self.stats)

    def _edges(self, tables: GraphTables) -> "_Edges":
        return memo(tables, ("edges", self.k, self.edge_scale), lambda: _Edges(tables, self.k, scale=self.edge_scale))

    def fit(self, tables: GraphTables, visible: Sequence[str]) -> "GNNEmbedder":
        """Episodic link regression, full batch: each step hides a third of the visible datasets'
        results from message passing and regresses exactly those edges' normalised quality."""
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        visible = [d for d in tables.datasets if d in set(visible)]
        self.stats = FeatureStats.fit(tables, visible)
        self.edge_scale = memo(tables, ("edges", self.k, None), lambda: _Edges(tables, self.k)).fitted_scale(visible)
        x = self._x(tables)
        self.in_dim = x.shape[1]
        net = LinkEncoder(self.in_dim, self.dim, self.kind)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=1e-4)
        edges = self._edges(tables)
        targets = {}
        for d in visible:
            col = edges.norm[:, edges.pos[d]]
            ok = np.where(np.isfinite(col))[0]
            targets[d] = (ok, col[ok])
        n_hide = max(1, int(round(self.hide_fraction * len(visible))))
        for _ in range(self.epochs):
            hidden = list(rng.choice(visible, size=min(n_hide, len(visible) - 1 or 1), replace=False))
            shown = [d for d in visible if d not in hidden]
            ei, ew = edges.graph(shown)
            h = net(x, ei, ew)
            mi = np.concatenate([targets[d][0] for d in hidden])
            di = np.concatenate([np.full(len(targets[d][0]), edges.M + edges.pos[d]) for d in hidden])
            y = torch.tensor(np.concatenate([targets[d][1] for d in hidden]), dtype=torch.float32)
            pred = net.score(h[torch.from_numpy(mi)], h[torch.from_numpy(di)])
            loss = torch.mean((pred - y) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self._netobj = self._one_node = None
        return self

    def _net(self) -> LinkEncoder:
        """The inference network. GAT's self-loops come with the graph (`message_graph`), the same
        ones GATConv would add on every call (remove, then add with the mean incoming edge
        attribute): once per graph instead of once per conv and member."""
        net = getattr(self, "_netobj", None)
        if net is None:
            net = LinkEncoder(self.in_dim, self.dim, self.kind)
            net.load_state_dict(self.state)
            if self.kind == "gat":
                for conv in net.convs:
                    conv.add_self_loops = False
            self._netobj = net.eval()
        return self._netobj

    def message_graph(self, tables: GraphTables, shown: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference edges for `shown` results, memoised per (tables, k, shown): the members of an
        ensemble share one graph; for GAT with its self-loops already added (see _net)."""
        def build():
            from torch_geometric.utils import add_self_loops, remove_self_loops

            ei, ew = self._edges(tables).graph(shown)
            if self.kind == "gat":
                ei, ea = remove_self_loops(ei, ew[:, None])
                ei, ea = add_self_loops(ei, ea, fill_value="mean", num_nodes=len(tables.models) + len(tables.datasets))
                ew = ea[:, 0]
            return ei, ew

        return memo(tables, ("gnn_graph", self.k, self.edge_scale, self.kind == "gat", tuple(shown)), build)

    def layer_states(self, tables: GraphTables, shown: Sequence[str]) -> list[torch.Tensor]:
        """Every node's layer states with `shown` datasets' results as edges, memoised per
        (tables, encoder, shown): what a new dataset's embedding is computed from."""
        key = ("gnn_states", id(self), tuple(shown))
        cache = tables.__dict__.setdefault("_memo", {})
        hit = cache.get(key)
        if hit is None or hit[0] is not self:
            ei, ew = self.message_graph(tables, shown)
            with torch.no_grad():
                hit = cache[key] = (self, self._net().layer_states(self._x(tables), ei, ew))
        return hit[1]

    @torch.no_grad()
    def edge_scores(self, tables: GraphTables, visible: Sequence[str], queries: Sequence[str]) -> dict[str, np.ndarray]:
        """Predicted normalised quality of every model on each query dataset (query datasets' own
        results are never message edges). One forward pass; for a dataset new to its parent
        tables (GraphTables.with_target), only its own node is computed (see the module doc)."""
        net = self._net()
        shown = [d for d in visible if d not in set(queries)]
        derived = derived_from(tables)
        if self.stats is not None and derived is not None and list(queries) == [derived[1]]:
            parent, name = derived
            if set(shown) <= set(parent.datasets):
                return {name: self._new_dataset_scores(tables, parent, name, shown)}
        edges = self._edges(tables)
        h = self.layer_states(tables, shown)[-1]
        hm = h[: edges.M]
        return {q: net.score(hm, h[edges.M + edges.pos[q]].expand_as(hm)).numpy() for q in queries}

    def _one_node_net(self) -> _OneNodeNet:
        fast = getattr(self, "_one_node", None)
        if fast is None:
            fast = self._one_node = _OneNodeNet.of(self._net())
        return fast

    def _parent_arrays(self, parent: GraphTables, shown: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """The parent graph's layer states as arrays and the models' fixed part of the edge head,
        memoised with the states (per tables, encoder and shown datasets)."""
        key = ("gnn_arrays", id(self), tuple(shown))
        cache = parent.__dict__.setdefault("_memo", {})
        hit = cache.get(key)
        if hit is None or hit[0] is not self:
            states = [s.numpy() for s in self.layer_states(parent, shown)]
            hm = states[-1][: len(parent.models)]
            hit = cache[key] = (self, states, hm @ self._one_node_net().head_model)
        return hit[1], hit[2]

    def _new_dataset_scores(self, tables: GraphTables, parent: GraphTables, name: str, shown: Sequence[str]) -> np.ndarray:
        """Every model's score with `name`, the last dataset of `tables` (= parent + it): its last
        layer state from its own features and its k nearest shown datasets' cached states, in a
        graph of those k + 1 nodes, with the same edges (and GAT self-loop) a forward pass over the
        whole graph would give it."""
        fast = self._one_node_net()
        pe = self._edges(parent)
        M = len(tables.models)
        row = memo(tables, ("distance_row", name, len(pe.datasets)), lambda: tables.distance(name, pe.datasets))
        near, dd = _Edges.nearest(row, pe.visible_positions(shown), -1, self.k)
        w = np.exp(-dd / max(self.edge_scale, 1e-9))
        n = len(near)
        if self.kind == "gat":  # the self-loop GATConv would add: attribute = mean of the incoming ones
            w = np.append(w, w.mean() if n else 0.0)
        w = w.astype(np.float32)
        states, hm_part = self._parent_arrays(parent, shown)
        features = memo(tables, ("dataset_row", name, self.stats),
                        lambda: dataset_node_features(tables, [name], self.stats).numpy())
        h = np.maximum(features @ fast.inp_weight + fast.inp_bias, 0)
        rows = M + near
        for layer, one_node in enumerate(fast.layers):
            if one_node is not None:
                out = one_node(states[layer][rows], h, w)
            else:  # a layer type or option _OneNodeLayer does not cover: PyG on the small graph
                ei = torch.tensor([[*range(n), *([n] if self.kind == "gat" else [])], [n] * len(w)])
                x = torch.from_numpy(np.concatenate([states[layer][rows], h]))
                out = self._net().convs[layer](x, ei, **({"edge_attr": torch.from_numpy(w)[:, None]}
                                                         if self.kind == "gat" else {}))[n:].numpy()
            h = h + np.maximum(out, 0)  # LinkEncoder.step's residual
        return fast.score(states[-1][:M], hm_part, h[0])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save({"cfg": (self.kind, self.dim, self.epochs, self.lr, self.k, self.hide_fraction, self.seed, self.in_dim),
                    "state": self.state,
                    "stats": None if self.stats is None else [list(part) for part in astuple(self.stats)],
                    "edge_scale": self.edge_scale}, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "GNNEmbedder":
        obj = torch.load(io.BytesIO(data), weights_only=True)
        kind, dim, epochs, lr, k, hf, seed, in_dim = obj["cfg"]
        stats = obj.get("stats")
        return cls(kind, dim, epochs, lr, k, hf, seed, obj["state"], in_dim,
                   None if stats is None else FeatureStats(*(tuple(v) for v in stats)), obj.get("edge_scale"))


@dataclass
class Node2VecEmbedder:
    dim: int = 16
    walk_length: int = 12
    num_walks: int = 10
    k: int = 3
    good: float = 0.5
    seed: int = 0
    vectors: dict = field(default_factory=dict, repr=False)

    def fit(self, tables: GraphTables, visible: Sequence[str]) -> "Node2VecEmbedder":
        """Embed the graph of the visible results plus every dataset's kNN similarity edges."""
        import networkx as nx
        from node2vec import Node2Vec

        visible = [d for d in tables.datasets if d in set(visible)]
        G = nx.Graph()
        G.add_nodes_from(f"m:{m}" for m in tables.models)
        G.add_nodes_from(f"d:{d}" for d in tables.datasets)
        for d in visible:
            col = tables.norm[d]
            for m, v in col.items():
                if np.isfinite(v) and v >= self.good:
                    G.add_edge(f"m:{m}", f"d:{d}", weight=float(v))
        edges = knn_dataset_edges(tables, tables.datasets, visible, self.k)
        scale = float(np.median([e[2] for e in edges])) if edges else 1.0
        for a, b, dd in edges:
            G.add_edge(f"d:{a}", f"d:{b}", weight=float(np.exp(-dd / max(scale, 1e-9))))
        n2v = Node2Vec(G, dimensions=self.dim, walk_length=self.walk_length, num_walks=self.num_walks,
                       workers=1, quiet=True, seed=self.seed)
        wv = n2v.fit(window=5, min_count=1, batch_words=256, seed=self.seed, workers=1).wv
        self.vectors = {n: np.asarray(wv[n], dtype=np.float64) for n in G.nodes if n in wv}
        return self

    def dataset_vector(self, tables: GraphTables, name: str) -> np.ndarray:
        key = f"d:{name}"
        if key in self.vectors:
            return self.vectors[key]
        known = [d for d in tables.datasets if f"d:{d}" in self.vectors]
        nn_ = knn_dataset_edges(tables, [name], known, self.k)
        if not nn_:
            return np.zeros(self.dim)
        w = np.exp(-np.array([e[2] for e in nn_]) / (np.median([e[2] for e in nn_]) + 1e-9))
        return np.average([self.vectors[f"d:{e[1]}"] for e in nn_], axis=0, weights=w)

    def edge_scores(self, tables: GraphTables, visible: Sequence[str], queries: Sequence[str]) -> dict[str, np.ndarray]:
        """Cosine between each model's vector and the query dataset's vector."""
        mv = np.stack([self.vectors.get(f"m:{m}", np.zeros(self.dim)) for m in tables.models])
        mv = mv / (np.linalg.norm(mv, axis=1, keepdims=True) + 1e-9)
        out = {}
        for q in queries:
            v = self.dataset_vector(tables, q)
            out[q] = mv @ (v / (np.linalg.norm(v) + 1e-9))
        return out


def make_embedder(kind: str, seed: int = 0):
    if kind in ("sage", "gat"):
        return GNNEmbedder(kind=kind, seed=seed)
    if kind == "node2vec":
        return Node2VecEmbedder(seed=seed)
    raise ValueError(f"unknown embedding {kind!r}")
