"""Pluggable importance signals. Each turns a calibration record into the MILP's cost tables.

  orthogonality  the paper: theta_{i,t} = exp(-/+ beta * sum_j ORM_t(i, j)); cost = theta x relative
                 quantization error of the layer at that bit-width.
  sensitivity    measured: network output MSE at the K sampled steps when only layer i is quantized
                 (weights at b bits, or input activations at a bits), HAWQ-style and additive. Steps
                 are weighted by how much an output error there moves the sample (DDIM step
                 coefficient squared, calibrate.sample_space_weights): early, noisy steps dominate.
  hybrid         sensitivity measured only on the largest layers (holding `coverage` of the weights)
                 at the half of the sampled steps with the largest sample-space weight; the remaining layers get orthogonality costs rescaled
                 to the measured ones (median ratio).
  uniform        theta = 1: the cost is the relative quantization error alone.
  random         theta ~ lognormal(0, 1), seeded: a baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .calibrate import CalibrationRecord, model_output, target_layers
from .orthogonality import orm_matrix, orthogonality_importance
from .quantizers import ActRange, QuantizedWeight, act_relative_error, calibrate_act_range, quantize_weight

SIGNALS = ("orthogonality", "sensitivity", "hybrid", "uniform", "random")


@dataclass
class SignalResult:
    name: str
    weight_cost: np.ndarray  # L x |B|
    act_cost: np.ndarray  # G x L x |A|
    importance: np.ndarray  # L, aggregated over the sampled steps
    importance_matrix: np.ndarray  # L x K, per sampled step (for a heatmap)
    extras: dict = field(default_factory=dict)


class QuantTables:
    """Quantized weights and calibrated activation ranges for every layer and candidate, computed once."""

    def __init__(self, denoiser: nn.Module, record: CalibrationRecord, weight_choices: list[int], act_choices: list[int]):
        self.record = record
        self.layers = target_layers(denoiser)
        self.names = record.layer_names
        self.weight_choices, self.act_choices = list(weight_choices), list(act_choices)
        # snapshot: sensitivity measurement temporarily overwrites layer weights in place
        self.fp_weights = {n: self.layers[n].weight.detach().clone() for n in self.names}
        self._w: dict[tuple[str, int], QuantizedWeight] = {}
        self._a: dict[tuple[str, int, int], ActRange] = {}

    def weight(self, name: str, bits: int) -> QuantizedWeight:
        key = (name, bits)
        if key not in self._w:
            self._w[key] = quantize_weight(self.fp_weights[name], bits)
        return self._w[key]

    def act(self, name: str, group: int, bits: int) -> ActRange:
        key = (name, group, bits)
        if key not in self._a:
            self._a[key] = calibrate_act_range(self._act_samples(name, group), bits)
        return self._a[key]

    def _act_samples(self, name: str, group: int) -> torch.Tensor:
        per_group = self.record.act_samples[name]
        x = per_group[group]
        if x.numel() <= 1:  # no sampled step fell in this group: use all groups' samples
            x = torch.cat(per_group)
        return x

    def weight_rel_error(self) -> np.ndarray:
        out = np.zeros((len(self.names), len(self.weight_choices)))
        for i, n in enumerate(self.names):
            w = self.fp_weights[n].float()
            denom = float((w**2).sum().clamp_min(1e-30))
            for j, b in enumerate(self.weight_choices):
                out[i, j] = float(((self.weight(n, b).dequantize() - w) ** 2).sum()) / denom
        return out

    def act_rel_error(self) -> np.ndarray:
        g_count = self.record.groups.n_groups
        out = np.zeros((g_count, len(self.names), len(self.act_choices)))
        for g in range(g_count):
            for i, n in enumerate(self.names):
                x = self._act_samples(n, g)
                for j, a in enumerate(self.act_choices):
                    out[g, i, j] = act_relative_error(x, self.act(n, g, a))
        return out


def orthogonality_matrix(record: CalibrationRecord, *, beta: float | None, sign: str) -> tuple[np.ndarray, np.ndarray]:
    """theta (L x K) from the captured Grams, and which layers had a defined ORM at each step (L x K)."""
    thetas, defined_all = [], []
    for k in range(record.grams.shape[0]):
        orm, defined = orm_matrix(record.grams[k])
        thetas.append(orthogonality_importance(orm, defined, beta=beta, sign=sign).cpu().numpy())
        defined_all.append(defined.cpu().numpy())
    return np.stack(thetas, 1), np.stack(defined_all, 1)


def _group_means(matrix: np.ndarray, record: CalibrationRecord) -> np.ndarray:
    """Per-group mean over sampled steps (G x L); groups with no sampled step take the overall mean."""
    groups = np.asarray(record.step_groups)
    out = []
    for g in range(record.groups.n_groups):
        cols = matrix[:, groups == g]
        out.append(cols.mean(1) if cols.shape[1] else matrix.mean(1))
    return np.stack(out)


def _importance_costs(name: str, theta: np.ndarray, tables: QuantTables, extras: dict | None = None) -> SignalResult:
    """cost = theta x relative quantization error (weights: steps averaged; activations: per group)."""
    record = tables.record
    w_rel, a_rel = tables.weight_rel_error(), tables.act_rel_error()
    per_group = _group_means(theta, record)
    return SignalResult(
        name=name,
        weight_cost=theta.mean(1)[:, None] * w_rel,
        act_cost=per_group[:, :, None] * a_rel,
        importance=theta.mean(1),
        importance_matrix=theta,
        extras=extras or {},
    )


def _concat_calls(calls: list[tuple[tuple, dict]]) -> tuple[tuple, dict]:
    """Stack the recorded denoiser calls of several steps into one batched call."""
    batch = calls[0][0][0].shape[0]

    def merge(values):
        v0 = values[0]
        if isinstance(v0, torch.Tensor):
            if v0.ndim >= 1 and v0.shape[0] == batch:
                return torch.cat(values)
            if v0.ndim == 0:
                return torch.stack([v.expand(()) for v in values]).repeat_interleave(batch)
            return v0
        if isinstance(v0, dict):
            return {k: merge([v[k] for v in values]) for k in v0}
        if isinstance(v0, (list, tuple)):
            return type(v0)(merge([v[i] for v in values]) for i in range(len(v0)))
        return v0

    args = merge([c[0] for c in calls])
    kwargs = merge([c[1] for c in calls])
    return args, kwargs


class Replayer:
    """Re-runs the denoiser on the recorded sampled-step inputs and measures the output MSE per step."""

    def __init__(self, denoiser: nn.Module, record: CalibrationRecord, steps: list[int] | None = None):
        self.denoiser = denoiser
        self.record = record
        self.steps = list(range(len(record.replay))) if steps is None else list(steps)
        groups = np.asarray(record.step_groups)
        self.by_group = {g: [k for k in self.steps if groups[k] == g] for g in range(record.groups.n_groups)}
        self._calls = {}

    def _call(self, ks: tuple[int, ...]):
        if ks not in self._calls:
            args, kwargs = _concat_calls([self.record.replay[k] for k in ks])
            ref = torch.cat([self.record.fp_outputs[k] for k in ks]).float()
            self._calls[ks] = (args, kwargs, ref)
        return self._calls[ks]

    @torch.no_grad()
    def errors(self, ks: list[int]) -> np.ndarray:
        """MSE of the denoiser output against FP, one value per step in ks."""
        if not ks:
            return np.zeros(0)
        args, kwargs, ref = self._call(tuple(ks))
        out = model_output(self.denoiser(*args, **kwargs)).float()
        err = ((out - ref) ** 2).reshape(len(ks), -1).mean(1)
        return err.cpu().numpy().astype(np.float64)


def _step_weights(record: CalibrationRecord) -> np.ndarray:
    w = np.asarray(record.step_weights, dtype=np.float64)
    return w if w.size == len(record.step_indices) else np.full(len(record.step_indices), 1.0 / len(record.step_indices))


def measured_sensitivity(
    denoiser: nn.Module,
    tables: QuantTables,
    *,
    layers: list[str] | None = None,
    steps: list[int] | None = None,
    skip: set[str] = frozenset(),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output MSE with one layer quantized at a time. Returns (weight L x |B| x K', act G x L x |A|,
    measured mask L); rows of unmeasured layers are NaN. K' = the steps measured."""
    record = tables.record
    names = tables.names
    layers = names if layers is None else layers
    rep = Replayer(denoiser, record, steps)
    w_err = np.full((len(names), len(tables.weight_choices), len(rep.steps)), np.nan)
    a_err = np.full((record.groups.n_groups, len(names), len(tables.act_choices)), np.nan)
    measured = np.zeros(len(names), dtype=bool)
    step_w = _step_weights(record)
    todo = [n for n in layers if n not in skip]
    for count, name in enumerate(todo):
        i = names.index(name)
        layer = tables.layers[name]
        original = layer.weight.detach().clone()
        try:
            for j, b in enumerate(tables.weight_choices):
                with torch.no_grad():
                    layer.weight.copy_(tables.weight(name, b).dequantize().to(original.dtype))
                w_err[i, j] = rep.errors(rep.steps)
        finally:
            with torch.no_grad():
                layer.weight.copy_(original)
        for g, ks in rep.by_group.items():
            if not ks:
                continue
            for j, a in enumerate(tables.act_choices):
                act = tables.act(name, g, a)
                h = layer.register_forward_pre_hook(lambda m, inp, act=act: (act.fake_quant(inp[0]),) + tuple(inp[1:]))
                try:
                    a_err[g, i, j] = float(np.dot(rep.errors(ks), step_w[ks]))
                finally:
                    h.remove()
        measured[i] = True
        if progress is not None:
            progress(count + 1, len(todo))
    # groups without any measured step take the mean of the others
    for g, ks in rep.by_group.items():
        if not ks:
            a_err[g] = np.nanmean(np.stack([a_err[h] for h, k2 in rep.by_group.items() if k2]), 0)
    return w_err, a_err, measured


def compute_signal(
    name: str,
    denoiser: nn.Module,
    tables: QuantTables,
    *,
    beta: float | None = None,
    sign: str = "neg",
    seed: int = 0,
    pinned: set[str] = frozenset(),
    hybrid_coverage: float = 0.8,
    progress: Callable[[int, int], None] | None = None,
) -> SignalResult:
    """Cost tables of one importance signal. `pinned` layers are fixed anyway, so they are not measured."""
    record = tables.record
    names = tables.names
    k_steps = len(record.step_indices)
    if name == "uniform":
        return _importance_costs(name, np.ones((len(names), k_steps)), tables)
    if name == "random":
        rng = np.random.default_rng(seed)
        theta = np.repeat(rng.lognormal(0.0, 1.0, size=(len(names), 1)), k_steps, 1)
        return _importance_costs(name, theta, tables, {"seed": seed})
    if name == "orthogonality":
        theta, defined = orthogonality_matrix(record, beta=beta, sign=sign)
        undefined = [n for n, d in zip(names, defined.all(1)) if not d]
        return _importance_costs(name, theta, tables, {"sign": sign, "undefined_orm_layers": undefined,
                                                       "defined": defined})
    if name == "sensitivity":
        w_err, a_err, _ = measured_sensitivity(denoiser, tables, skip=set(pinned), progress=progress)
        w_err = np.nan_to_num(w_err, nan=0.0)
        a_err = np.nan_to_num(a_err, nan=0.0)
        low = int(np.argmin(tables.weight_choices))
        w_cost = w_err @ _step_weights(record)
        return SignalResult(name, w_cost, a_err, w_cost[:, low], w_err[:, low, :],
                            {"reference_bits": tables.weight_choices[low], "step_weights": record.step_weights})
    if name == "hybrid":
        sizes = np.array([record.n_params[n] for n in names], dtype=np.float64)
        order = np.argsort(-sizes)
        cum = np.cumsum(sizes[order]) / sizes.sum()
        big = [names[i] for i in order[: int(np.searchsorted(cum, hybrid_coverage)) + 1]]
        # half of the sampled steps: those whose errors move the sample most
        steps = sorted(np.argsort(-_step_weights(record))[: max(1, (k_steps + 1) // 2)].tolist())
        w_err, a_err, measured = measured_sensitivity(denoiser, tables, layers=big, steps=steps,
                                                      skip=set(pinned), progress=progress)
        sw = _step_weights(record)[steps]
        w_meas = w_err @ (sw / sw.sum())
        a_err = a_err / sw.sum()  # same normalisation as the weight costs
        proxy = _importance_costs("orthogonality", orthogonality_matrix(record, beta=beta, sign=sign)[0], tables)

        def fit(measured_cost, proxy_cost):
            # one scale factor mapping proxy costs to measured output error (median of ratios)
            m, p = measured_cost[np.isfinite(measured_cost)], proxy_cost[np.isfinite(measured_cost)]
            ok = (p > 0) & (m > 0)
            return float(np.median(m[ok] / p[ok])) if ok.any() else 1.0

        mask = measured[:, None]
        w_cost = np.where(mask, w_meas, proxy.weight_cost * fit(w_meas[measured], proxy.weight_cost[measured]))
        a_cost = np.where(mask[None], a_err, proxy.act_cost * fit(a_err[:, measured], proxy.act_cost[:, measured]))
        w_cost = np.nan_to_num(w_cost, nan=0.0)
        a_cost = np.nan_to_num(a_cost, nan=0.0)
        return SignalResult(name, w_cost, a_cost, w_cost[:, int(np.argmin(tables.weight_choices))],
                            proxy.importance_matrix, {"measured_layers": big, "measured_steps": steps})
    raise ValueError(f"unknown importance signal {name!r}; expected one of {SIGNALS}")
