"""Calibration: uniform step sampling, timestep groups, and feature capture through forward hooks.

Capture keeps only what later stages need, so memory does not grow with layer width:
  * per layer and sampled step, the uncentred n x n Gram of the flattened outputs (for the ORM);
  * per layer and timestep group, a bounded random subsample of the layer's input (activation ranges);
  * per sampled step, the denoiser's own inputs and FP output, so the sampled steps can be replayed
    (measured sensitivity) without re-running the whole sampling loop.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .orthogonality import gram

ACT_SAMPLES_PER_CALL = 2048


def target_layers(denoiser: nn.Module) -> dict[str, nn.Module]:
    """Every Conv2d and Linear of the denoiser (attention projections included), in registration order."""
    return {name: m for name, m in denoiser.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def sample_step_indices(num_steps: int, k: int) -> list[int]:
    """K step indices spread uniformly over the T inference steps (first and last included)."""
    if k < 1 or num_steps < 1:
        raise ValueError("need at least one step and one sampled step")
    if k >= num_steps:
        return list(range(num_steps))
    return sorted({int(round(x)) for x in np.linspace(0, num_steps - 1, k)})


class TimestepGroups:
    """Splits the T inference steps into G contiguous groups and maps any timestep value to its group."""

    def __init__(self, inference_timesteps: list[int], n_groups: int):
        if n_groups < 1:
            raise ValueError("timestep_groups must be >= 1")
        n_groups = min(n_groups, len(inference_timesteps))
        chunks = np.array_split(np.arange(len(inference_timesteps)), n_groups)
        self.n_groups = n_groups
        self.step_group = [g for g, c in enumerate(chunks) for _ in c]
        ts = [int(t) for t in inference_timesteps]
        # thresholds between consecutive groups, on the timestep axis (timesteps decrease along sampling)
        self.thresholds = [(ts[c[-1]] + ts[c[-1] + 1]) / 2 for c in chunks[:-1]]
        self.descending = len(ts) < 2 or ts[0] >= ts[-1]

    def group_of_timestep(self, t: float) -> int:
        g = 0
        for thr in self.thresholds:
            if (t < thr) if self.descending else (t > thr):
                g += 1
        return g

    def to_dict(self) -> dict:
        return {"n_groups": self.n_groups, "thresholds": self.thresholds, "descending": self.descending}

    @classmethod
    def from_dict(cls, d: dict) -> "TimestepGroups":
        obj = cls.__new__(cls)
        obj.n_groups, obj.thresholds, obj.descending = d["n_groups"], list(d["thresholds"]), d["descending"]
        obj.step_group = []
        return obj


def sample_space_weights(alphas_cumprod: torch.Tensor, timesteps: list[int], step_indices: list[int]) -> list[float]:
    """How much an epsilon error at each sampled step moves the next sample x_prev, squared, normalised.

    For a DDIM step x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev) eps with
    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), an error d_eps moves x_prev by
    c_t d_eps with c_t = sqrt(1 - a_prev) - sqrt(a_prev) sqrt(1 - a_t) / sqrt(a_t).
    Used for every scheduler as an approximation: it turns per-step output MSE into sample-space MSE.
    """
    ac = alphas_cumprod.double()
    weights = []
    for i in step_indices:
        a_t = float(ac[timesteps[i]])
        a_prev = float(ac[timesteps[i + 1]]) if i + 1 < len(timesteps) else 1.0
        c = (1 - a_prev) ** 0.5 - (a_prev ** 0.5) * ((1 - a_t) ** 0.5) / (a_t ** 0.5)
        weights.append(c * c)
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else [1.0 / len(weights)] * len(weights)


def denoiser_timestep(args: tuple, kwargs: dict) -> float | None:
    """The timestep a diffusers denoiser was called with (UNets: 2nd positional; PixArt: timestep=)."""
    t = kwargs.get("timestep", kwargs.get("timesteps"))
    if t is None and len(args) > 1:
        t = args[1]
    if t is None:
        return None
    t = torch.as_tensor(t)
    return float(t.reshape(-1)[0])


@dataclass
class CalibrationRecord:
    layer_names: list[str]
    n_params: dict[str, int]
    step_indices: list[int]  # sampled indices into the T inference steps
    timesteps: list[int]  # their timestep values
    step_groups: list[int]  # group of each sampled step
    groups: TimestepGroups
    grams: torch.Tensor  # K x L x n x n, float64
    act_samples: dict[str, list[torch.Tensor]]  # per layer, per group: 1-D subsample of inputs
    replay: list[tuple[tuple, dict]]  # denoiser (args, kwargs) at each sampled step
    fp_outputs: list[torch.Tensor]  # denoiser output at each sampled step
    execution_order: list[str]
    first_layer: str
    last_layer: str
    capture_seconds: float = 0.0
    step_weights: list[float] = field(default_factory=list)  # sample-space weight of each sampled step
    extras: dict = field(default_factory=dict)


def _detach(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj)
    return obj


def model_output(out: Any) -> torch.Tensor:
    return out.sample if hasattr(out, "sample") else (out[0] if isinstance(out, tuple) else out)


class FeatureCapture:
    """Forward hooks that record Grams, activation subsamples and denoiser I/O while `active`."""

    def __init__(self, denoiser: nn.Module, groups: TimestepGroups, n_sampled: int, *, seed: int = 0,
                 keep_grams: bool = True, keep_acts: bool = True, keep_replay: bool = True):
        self.denoiser = denoiser
        self.layers = target_layers(denoiser)
        self.names = list(self.layers)
        self.groups = groups
        self.keep_grams, self.keep_acts, self.keep_replay = keep_grams, keep_acts, keep_replay
        self.grams: list[list[torch.Tensor | None]] = [[None] * len(self.names) for _ in range(n_sampled)]
        self.act_samples: dict[str, list[list[torch.Tensor]]] = {n: [[] for _ in range(groups.n_groups)] for n in self.names}
        self.replay: list = [None] * n_sampled
        self.fp_outputs: list = [None] * n_sampled
        self.order: list[str] = []
        self.first_consumer: str | None = None
        self.slot: int | None = None  # index of the sampled step being captured, None = inactive
        self.group = 0
        self.seconds = 0.0
        self._input_shape = None
        self._gen = torch.Generator().manual_seed(seed)
        self._handles = []

    def __enter__(self):
        for i, (name, layer) in enumerate(self.layers.items()):
            self._handles.append(layer.register_forward_hook(self._layer_hook(i, name)))
        self._handles.append(self.denoiser.register_forward_pre_hook(self._pre, with_kwargs=True))
        self._handles.append(self.denoiser.register_forward_hook(self._post, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _pre(self, module, args, kwargs):
        if self.slot is None:
            return None
        start = time.perf_counter()
        self._input_shape = tuple(args[0].shape) if args else None
        if self.keep_replay:
            self.replay[self.slot] = (_detach(args), _detach(kwargs))
        self.seconds += time.perf_counter() - start
        return None

    def _post(self, module, args, kwargs, out):
        if self.slot is not None and self.keep_replay:
            self.fp_outputs[self.slot] = model_output(out).detach().clone()
        return None

    def _layer_hook(self, index: int, name: str) -> Callable:
        def hook(module, inputs, output):
            if self.slot is None:
                return None
            start = time.perf_counter()
            if name not in self.order:
                self.order.append(name)
                if self.first_consumer is None and tuple(inputs[0].shape) == self._input_shape:
                    self.first_consumer = name
            if self.keep_grams:
                g = gram(output)
                prev = self.grams[self.slot][index]
                # a layer called more than once per step contributes the sum of its Grams
                self.grams[self.slot][index] = g if prev is None else prev + g
            if self.keep_acts:
                x = inputs[0].detach().reshape(-1)
                if x.numel() > ACT_SAMPLES_PER_CALL:
                    idx = torch.randint(0, x.numel(), (ACT_SAMPLES_PER_CALL,), generator=self._gen)
                    # keep the extremes too: they set the unclipped range
                    x = torch.cat([x[idx], x.min().reshape(1), x.max().reshape(1)])
                self.act_samples[name][self.group].append(x.float().cpu())
            self.seconds += time.perf_counter() - start
            return None

        return hook

    def record(self, bundle, step_indices, timesteps) -> CalibrationRecord:
        n_params = {n: int(self.layers[n].weight.numel()) for n in self.names}
        grams = torch.empty(0)
        if self.keep_grams:
            n = next(g for row in self.grams for g in row if g is not None).shape[0]
            grams = torch.stack([
                torch.stack([g if g is not None else torch.zeros(n, n, dtype=torch.float64) for g in row])
                for row in self.grams
            ])
        acts = {n: [torch.cat(chunks) if chunks else torch.zeros(1) for chunks in per_group]
                for n, per_group in self.act_samples.items()}
        order = self.order + [n for n in self.names if n not in self.order]
        return CalibrationRecord(
            layer_names=self.names,
            n_params=n_params,
            step_indices=list(step_indices),
            timesteps=[int(t) for t in timesteps],
            step_groups=[self.groups.step_group[i] for i in step_indices],
            groups=self.groups,
            grams=grams,
            act_samples=acts,
            replay=self.replay,
            fp_outputs=self.fp_outputs,
            execution_order=order,
            first_layer=self.first_consumer or order[0],
            last_layer=order[-1],
            capture_seconds=self.seconds,
        )


def calibrate(
    bundle,
    *,
    num_inference_steps: int,
    sampled_steps: int,
    scheduler: str = "ddim",
    noise: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    data: torch.Tensor | None = None,
    timestep_groups: int = 1,
    mode: str = "sampling",
    seed: int = 0,
    on_step: Callable[[int, int], None] | None = None,
    keep_grams: bool = True,
    keep_acts: bool = True,
    keep_replay: bool = True,
) -> CalibrationRecord:
    """Capture features at K uniformly sampled steps of T.

    mode="sampling": runs the scheduler's full sampling loop from `noise` (n x C x H x W), capturing
    only at the K sampled steps. mode="data": forward-noises `data` (x_0 in [-1, 1]) to each sampled
    timestep with fresh noise and evaluates only those K steps.
    """
    from services.common.diffusion import make_sampling_scheduler, sample

    sampler = make_sampling_scheduler(bundle, scheduler)
    sampler.set_timesteps(num_inference_steps)
    all_timesteps = [int(t) for t in sampler.timesteps]
    steps = sample_step_indices(num_inference_steps, sampled_steps)
    groups = TimestepGroups(all_timesteps, timestep_groups)
    slot_of = {s: k for k, s in enumerate(steps)}
    capture = FeatureCapture(bundle.denoiser, groups, len(steps), seed=seed, keep_grams=keep_grams,
                             keep_acts=keep_acts, keep_replay=keep_replay)
    with capture, torch.no_grad():
        if mode == "sampling":
            if noise is None:
                raise ValueError("sampling calibration needs noise")

            def step_callback(i, t, x):
                capture.slot = slot_of.get(i)
                capture.group = groups.step_group[i]
                if capture.slot is not None and on_step is not None:
                    on_step(capture.slot + 1, len(steps))

            sample(bundle, noise=noise, cond=cond, num_inference_steps=num_inference_steps,
                   scheduler=scheduler, step_callback=step_callback)
        elif mode == "data":
            if data is None:
                raise ValueError("data calibration needs x_0 images")
            gen = torch.Generator().manual_seed(seed)
            for k, i in enumerate(steps):
                t = sampler.timesteps[i]
                eps = torch.randn(data.shape, generator=gen).to(data)
                x_t = bundle.scheduler.add_noise(data, eps, t.reshape(1).expand(data.shape[0]))
                capture.slot, capture.group = k, groups.step_group[i]
                if on_step is not None:
                    on_step(k + 1, len(steps))
                bundle.predict_noise(sampler.scale_model_input(x_t, t), t, cond)
        else:
            raise ValueError(f"calibration mode must be 'sampling' or 'data', got {mode!r}")
        capture.slot = None
    record = capture.record(bundle, steps, [all_timesteps[i] for i in steps])
    record.step_weights = sample_space_weights(bundle.scheduler.alphas_cumprod, all_timesteps, steps)
    return record
