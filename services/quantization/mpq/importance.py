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
    """Re-runs the denoiser on the recorded sampled-step inputs and measures the output MSE per step
    with one layer changed."""

    def __init__(self, denoiser: nn.Module, record: CalibrationRecord, steps: list[int] | None = None,
                 max_batch: int = 32):
        self.denoiser = denoiser
        self.record = record
        self.steps = list(range(len(record.replay))) if steps is None else list(steps)
        groups = np.asarray(record.step_groups)
        self.by_group = {g: [k for k in self.steps if groups[k] == g] for g in range(record.groups.n_groups)}
        self.max_batch = max_batch
        self._calls = {}
        self._tiled: dict[tuple[tuple[int, ...], int], tuple] = {}
        self._input_rows: dict[tuple[int, ...], dict[nn.Module, list[int]]] = {}

    def _call(self, ks: tuple[int, ...]):
        if ks not in self._calls:
            args, kwargs = _concat_calls([self.record.replay[k] for k in ks])
            ref = torch.cat([self.record.fp_outputs[k] for k in ks]).float()
            self._calls[ks] = (args, kwargs, ref)
        return self._calls[ks]

    def variant_errors(self, layer: nn.Module, ks: list[int], variants: list) -> np.ndarray:
        """MSE per (variant, step in ks) with `layer` alone changed by each variant: a weight tensor
        (replacing the layer's weight) or an ActRange (fake-quantizing its input).

        Several variants share one forward pass: the recorded batch is repeated once per variant and
        the layer computes each repetition with its own variant, so the rest of the network runs one
        larger batch instead of many small ones (on a CPU a small batch is bound by per-op overhead:
        the tiny UNet's forward took 38 ms at batch 4 and 89 ms at 16). Each repetition is its own samples in eval mode, so the errors are those of
        separate passes to float rounding (tested). At most `max_batch` rows go in one pass; a layer
        whose input rows do not follow the batch is measured one variant a pass."""
        errors = np.zeros((len(variants), len(ks)))
        if not ks:
            return errors
        rows = self._call(tuple(ks))[2].shape[0]
        per_pass = max(1, min(len(variants), self.max_batch // rows))
        start = 0
        while start < len(variants):
            group = variants[start:start + per_pass]
            try:
                errors[start:start + len(group)] = self._tiled_errors(layer, tuple(ks), group)
            except _RowsNotBatchMajor:
                per_pass = 1
                continue
            start += len(group)
        return errors

    @torch.no_grad()
    def _tiled_errors(self, layer: nn.Module, ks: tuple[int, ...], group: list) -> np.ndarray:
        n = len(group)
        args, kwargs, ref = self._tiled_call(ks, n)
        expected = iter(self._layer_input_rows(ks)[layer])

        def split(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            if x.shape[0] != n * next(expected, -1):
                raise _RowsNotBatchMajor
            return x.chunk(n)

        def pre_hook(module, inputs):
            chunks = split(inputs[0])
            return (torch.cat([v.fake_quant(c) if isinstance(v, ActRange) else c for c, v in zip(chunks, group)]),
                    *inputs[1:])

        def hook(module, inputs, output):
            chunks = inputs[0].chunk(n)
            return torch.cat([_layer_with_weight(module, c, v) if isinstance(v, torch.Tensor) else o
                              for c, v, o in zip(chunks, group, output.chunk(n))])

        handles = [layer.register_forward_pre_hook(pre_hook)]
        if any(isinstance(v, torch.Tensor) for v in group):  # activation candidates keep the layer's output
            handles.append(layer.register_forward_hook(hook))
        try:
            out = model_output(self.denoiser(*args, **kwargs)).float()
        finally:
            for h in handles:
                h.remove()
        err = ((out - ref) ** 2).reshape(n, len(ks), -1).mean(2)
        return err.cpu().numpy().astype(np.float64)

    def _tiled_call(self, ks: tuple[int, ...], n: int):
        if (ks, n) not in self._tiled:
            args, kwargs, ref = self._call(ks)
            targs, tkwargs = _concat_calls([(args, kwargs)] * n) if n > 1 else (args, kwargs)
            self._tiled[(ks, n)] = (targs, tkwargs, ref.repeat(n, *([1] * (ref.ndim - 1))))
        return self._tiled[(ks, n)]

    @torch.no_grad()
    def _layer_input_rows(self, ks: tuple[int, ...]) -> dict[nn.Module, list[int]]:
        """The first dimension of every Conv2d/Linear input, per call, in one untiled pass."""
        if ks not in self._input_rows:
            rows: dict[nn.Module, list[int]] = {}
            handles = [m.register_forward_pre_hook(lambda m, inputs: rows.setdefault(m, []).append(inputs[0].shape[0]))
                       for m in target_layers(self.denoiser).values()]
            try:
                args, kwargs, _ = self._call(ks)
                self.denoiser(*args, **kwargs)
            finally:
                for h in handles:
                    h.remove()
            self._input_rows[ks] = rows
        return self._input_rows[ks]


class _RowsNotBatchMajor(Exception):
    """A layer's input rows are not the batch's (or the layer runs a different number of times)."""


def _layer_with_weight(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.Conv2d):
        return layer._conv_forward(x, weight, layer.bias)
    return torch.nn.functional.linear(x, weight, layer.bias)


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
    max_batch: int = 32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output MSE with one layer quantized at a time. Returns (weight L x |B| x K', act G x L x |A|,
    measured mask L); rows of unmeasured layers are NaN. K' = the steps measured. A layer's
    candidates share forward passes of at most `max_batch` rows (`Replayer.variant_errors`)."""
    record = tables.record
    names = tables.names
    layers = names if layers is None else layers
    rep = Replayer(denoiser, record, steps, max_batch=max_batch)
    w_err = np.full((len(names), len(tables.weight_choices), len(rep.steps)), np.nan)
    a_err = np.full((record.groups.n_groups, len(names), len(tables.act_choices)), np.nan)
    measured = np.zeros(len(names), dtype=bool)
    step_w = _step_weights(record)
    todo = [n for n in layers if n not in skip]
    for count, name in enumerate(todo):
        i = names.index(name)
        layer = tables.layers[name]
        weights = [tables.weight(name, b).dequantize().to(layer.weight.dtype) for b in tables.weight_choices]
        w_err[i] = rep.variant_errors(layer, rep.steps, weights)
        for g, ks in rep.by_group.items():
            if ks:
                acts = [tables.act(name, g, a) for a in tables.act_choices]
                a_err[g, i] = rep.variant_errors(layer, ks, acts) @ step_w[ks]
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
