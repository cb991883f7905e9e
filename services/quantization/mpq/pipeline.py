"""MPQ-Diff end to end: validate -> calibrate (K of T steps) -> importance -> MILP -> quantize ->
evaluate against FP samples on the same seeds -> export. One entry point: run_quantization."""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .allocate import Allocation, BudgetError, budget_to_bytes, check_budget, solve_allocation  # noqa: F401 (re-export)
from .calibrate import TimestepGroups, calibrate, target_layers
from .export import export_quantized, load_quantized
from .importance import QuantTables, compute_signal, orthogonality_matrix
from .simulate import QuantSpec, apply_quantization

# Atelier's default signal: the one that measured best in services/quantization/bench.py.
DEFAULT_SIGNAL = "sensitivity"


class QuantizationCancelled(RuntimeError):
    """should_stop() returned True; no artifact was written."""


class _StrictConfig(BaseModel):
    # a misspelt field is an error, not a silent default (an API request body is one of these);
    # floats are finite (the job's parameters are stored as JSON)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CalibrationConfig(_StrictConfig):
    n: int = Field(8, ge=2, description="calibration inputs (the ORM needs at least 2 samples)")
    mode: Literal["sampling", "data"] = "sampling"
    sampled_steps: int = Field(8, ge=1, description="K steps sampled uniformly from the T inference steps")
    seeds: list[int] | None = Field(None, description="noise seeds (sampling mode); default seed..seed+n-1")
    prompts: list[str] | None = Field(None, description="conditional models: cycled to n; default empty prompt")
    dataset_path: str | None = Field(None, description="imagefolder for mode='data' (x_0 forward-noised)")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if self.mode == "data" and not self.dataset_path:
            raise ValueError("calibration mode 'data' needs dataset_path")
        if self.seeds is not None and len(self.seeds) != self.n:
            raise ValueError(f"calibration.seeds has {len(self.seeds)} entries, expected n={self.n}")
        return self


class BudgetConfig(_StrictConfig):
    avg_weight_bits: float | None = Field(4.0, gt=0)
    weight_bytes: float | None = Field(None, gt=0, description="alternative to avg_weight_bits: packed-code bytes")
    avg_act_bits: float = Field(8.0, gt=0)

    @model_validator(mode="after")
    def _one_weight_budget(self):
        if self.weight_bytes is not None and "avg_weight_bits" not in self.model_fields_set:
            self.avg_weight_bits = None
        if (self.avg_weight_bits is None) == (self.weight_bytes is None):
            raise ValueError("give exactly one of budget.avg_weight_bits or budget.weight_bytes")
        return self


class QuantizationConfig(_StrictConfig):
    scheduler: str = "ddim"
    num_inference_steps: int = Field(50, ge=1)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    signal: Literal["orthogonality", "sensitivity", "hybrid", "uniform", "random"] = DEFAULT_SIGNAL
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    weight_bits: list[int] = Field(default_factory=lambda: [2, 3, 4, 6, 8])
    act_bits: list[int] = Field(default_factory=lambda: [4, 6, 8, 16])
    beta: float | None = Field(None, description="ORM temperature; None = 1/(defined layers - 1)")
    sign: Literal["neg", "pos"] = Field("neg", description="'neg' = paper: exp(-beta * sum ORM)")
    timestep_groups: int = Field(1, ge=1)
    keep_first_last_8bit: bool = True
    overrides: dict[str, int] = Field(default_factory=dict, description="layer name -> fixed weight bits")
    eval_seeds: list[int] = Field(default_factory=lambda: list(range(1000, 1016)))
    eval_prompts: list[str] | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _check_bits(self):
        if not self.weight_bits or any(not 2 <= b <= 8 for b in self.weight_bits):
            raise ValueError("weight_bits candidates must be within 2..8")
        if not self.act_bits or any(not 2 <= a <= 16 for a in self.act_bits):
            raise ValueError("act_bits candidates must be within 2..16")
        self.weight_bits, self.act_bits = sorted(set(self.weight_bits)), sorted(set(self.act_bits))
        if self.keep_first_last_8bit and 8 not in self.weight_bits:
            raise ValueError("keep_first_last_8bit needs 8 among weight_bits")
        bad = {n: b for n, b in self.overrides.items() if b not in self.weight_bits}
        if bad:
            raise ValueError(f"override bits not among weight_bits {self.weight_bits}: {bad}")
        if not self.eval_seeds:
            raise ValueError("eval_seeds must not be empty")
        return self


@dataclass
class LayerLayout:
    n_params: dict[str, int]  # every quantizable layer, registration order
    first: str
    last: str


def layer_layout(bundle, cond: torch.Tensor | None = None) -> LayerLayout:
    """Layer sizes plus the first layer (consumes x_t) and last layer (produces the output), found by
    one tiny forward pass in execution order (on the bundle's device: the meta device traces a
    weightless skeleton_bundle, with its `cond`)."""
    denoiser = bundle.denoiser
    layers = target_layers(denoiser)
    order: list[str] = []
    first: list[str] = []
    x = torch.zeros(1, bundle.in_channels, bundle.sample_size, bundle.sample_size, device=bundle.device)

    def hook(name):
        def fn(module, inputs, output):
            if name not in order:
                order.append(name)
            if not first and tuple(inputs[0].shape) == tuple(x.shape):
                first.append(name)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        with torch.no_grad():
            bundle.predict_noise(x, 500, cond)
    finally:
        for h in handles:
            h.remove()
    return LayerLayout({n: int(m.weight.numel()) for n, m in layers.items()},
                       first[0] if first else order[0], order[-1])


def pinned_layers(layout: LayerLayout, config: QuantizationConfig) -> dict[str, int]:
    unknown = sorted(set(config.overrides) - set(layout.n_params))
    if unknown:
        raise ValueError(f"unknown layer names in overrides: {unknown}")
    pinned = {layout.first: 8, layout.last: 8} if config.keep_first_last_8bit else {}
    pinned.update(config.overrides)
    return pinned


def validate_config(bundle_or_layout, config: QuantizationConfig) -> dict:
    """Cheap up-front check (no calibration): unknown override names -> ValueError, unreachable
    budget -> BudgetError. Accepts a bundle, a LayerLayout, or a {layer: n_params} dict (ordered:
    first and last entries are taken as the first and last layers)."""
    if isinstance(bundle_or_layout, dict):
        names = list(bundle_or_layout)
        layout = LayerLayout(dict(bundle_or_layout), names[0], names[-1])
    elif isinstance(bundle_or_layout, LayerLayout):
        layout = bundle_or_layout
    else:
        layout = layer_layout(bundle_or_layout)
    pinned = pinned_layers(layout, config)
    budget_bytes = budget_to_bytes(layout.n_params, avg_weight_bits=config.budget.avg_weight_bits,
                                   weight_bytes=config.budget.weight_bytes)
    check_budget(layout.n_params, config.weight_bits, config.act_bits, budget_bytes=budget_bytes,
                 avg_act_bits=config.budget.avg_act_bits, pinned=pinned)
    return {"layers": len(layout.n_params), "parameters": sum(layout.n_params.values()),
            "budget_bytes": budget_bytes, "pinned": pinned, "first": layout.first, "last": layout.last}


@dataclass
class QuantizationOutcome:
    signal: str
    layers: list[dict]  # name, parameters, importance, weight_bits, act_bits (per group), orm_defined
    importance_matrix: list[list[float]]  # layers x sampled steps, for the chosen signal
    orthogonality_matrix: list[list[float]]  # layers x sampled steps, paper's theta (always computed)
    sampled_steps: list[int]
    sampled_timesteps: list[int]
    weight_bytes_before: int  # float32 weights of the quantized layers
    weight_bytes_after: float  # packed codes (what the budget constrains)
    weight_budget_bytes: float
    bytes_on_disk: int  # quantized.safetensors: codes + scales + the float32 rest of the denoiser
    artifact_bytes: int  # every file of the artifact (configs, text encoder ...)
    avg_weight_bits: float
    avg_act_bits: list[float]  # per timestep group
    quality: dict  # FP vs quantized samples on the same seeds: mse/psnr/ssim (+ fid/kid if available)
    export_path: str
    export_max_abs_diff: float  # reloaded vs simulated model output on a probe input
    timings: dict
    undefined_orm_layers: list[str]
    objective: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _noop(fraction: float, stage: str, info: dict) -> None:
    return None


def calibration_inputs(bundle, config: QuantizationConfig, cond: torch.Tensor | None = None) -> dict:
    """Noise / x_0 / conditioning for calibration, per the config."""
    from services.common.diffusion import initial_noise, load_imagefolder

    cal = config.calibration
    out: dict = {"noise": None, "data": None, "cond": None}
    prompts = None
    if cal.mode == "sampling":
        seeds = cal.seeds if cal.seeds is not None else list(range(cal.seed, cal.seed + cal.n))
        out["noise"] = initial_noise(bundle, seeds)
    else:
        dataset = load_imagefolder(cal.dataset_path, resolution=bundle.image_size, channels=bundle.image_channels)
        if len(dataset) < 2:
            raise ValueError("calibration dataset needs at least 2 images")
        with torch.no_grad():  # x_0 in the denoiser's space (latents for a latent model)
            out["data"] = bundle.encode_images(dataset.images(limit=cal.n).to(bundle.device))
        prompts = dataset.texts[: cal.n]
    if bundle.conditional:
        if cond is not None:
            out["cond"] = cond
        else:
            if cal.prompts:
                prompts = [cal.prompts[i % len(cal.prompts)] for i in range(cal.n)]
            n = out["noise"].shape[0] if out["noise"] is not None else out["data"].shape[0]
            prompts = (prompts or [""] * n)[:n]
            with torch.no_grad():
                out["cond"] = bundle.encode_prompts(prompts)
    return out


def build_spec(tables: QuantTables, allocation: Allocation, groups: TimestepGroups) -> QuantSpec:
    weights = {n: tables.weight(n, allocation.weight_bits[n]) for n in tables.names}
    acts = {n: [tables.act(n, g, allocation.act_bits[g][n]) for g in range(groups.n_groups)] for n in tables.names}
    return QuantSpec(weights=weights, acts=acts, groups=groups)


def quantized_copy(bundle, spec: QuantSpec):
    """A bundle sharing everything but the denoiser, which is a quantized deep copy."""
    q = dataclasses.replace(bundle, denoiser=copy.deepcopy(bundle.denoiser))
    q.quant_handle = apply_quantization(q.denoiser, spec)
    return q


def image_metrics(reference: torch.Tensor, test: torch.Tensor, *, fid: bool = True) -> dict:
    """paired_quality (mse/psnr/ssim) and, if asked, image_quality (fid/kid) of test vs reference."""
    from services.common import diffusion as toolkit

    # the metrics' feature extractor lives on the CPU; samples may come from a GPU
    reference, test = reference.detach().float().cpu(), test.detach().float().cpu()
    metrics: dict = {}
    if hasattr(toolkit, "paired_quality"):
        metrics.update({k: float(v) for k, v in toolkit.paired_quality(reference, test).items()})
    else:  # toolkit metric not available yet: report the MSE directly
        metrics["mse"] = float(((reference - test) ** 2).mean())
    # FID/KID are undefined for fewer than 2 images per side
    if fid and hasattr(toolkit, "image_quality") and min(len(reference), len(test)) >= 2:
        metrics.update(toolkit.image_quality(reference, test))
    return metrics


def sample_eval(bundle, config: QuantizationConfig) -> torch.Tensor:
    from services.common.diffusion import sample

    prompts = None
    if bundle.conditional:
        base = config.eval_prompts or config.calibration.prompts or [""]
        prompts = [base[i % len(base)] for i in range(len(config.eval_seeds))]
    return sample(bundle, seeds=list(config.eval_seeds), prompts=prompts,
                  num_inference_steps=config.num_inference_steps, scheduler=config.scheduler)


def run_quantization(
    bundle,
    config: QuantizationConfig,
    *,
    artifact_dir: Path,
    progress: Callable[[float, str, dict], None] = _noop,
    should_stop: Callable[[], bool] = lambda: False,
    calibration_cond: torch.Tensor | None = None,
    fp_samples: torch.Tensor | None = None,
) -> QuantizationOutcome:
    """Quantize `bundle` per `config`, evaluate it and export it to `artifact_dir`.

    progress(fraction in [0, 1], stage, info): stages load, calibrate, metric, allocate, quantize,
    evaluate, export. should_stop() is polled between stages and steps; True raises
    QuantizationCancelled. calibration_cond: text embeddings instead of prompts (conditional models).
    fp_samples: precomputed FP samples for config.eval_seeds (saves one sampling run).
    """
    timings: dict[str, float] = {}

    def checkpoint():
        if should_stop():
            raise QuantizationCancelled("quantization cancelled")

    t0 = time.perf_counter()
    progress(0.0, "load", {})
    layout = layer_layout(bundle)
    checked = validate_config(layout, config)
    pinned = checked["pinned"]
    inputs = calibration_inputs(bundle, config, calibration_cond)
    timings["load"] = time.perf_counter() - t0
    checkpoint()

    t0 = time.perf_counter()
    k_steps = min(config.calibration.sampled_steps, config.num_inference_steps)

    def on_step(k, total):
        checkpoint()
        progress(0.05 + 0.3 * k / total, "calibrate", {"step": k, "of": total})

    record = calibrate(bundle, num_inference_steps=config.num_inference_steps, sampled_steps=k_steps,
                       scheduler=config.scheduler, noise=inputs["noise"], cond=inputs["cond"], data=inputs["data"],
                       timestep_groups=config.timestep_groups, mode=config.calibration.mode,
                       seed=config.calibration.seed, on_step=on_step)
    timings["calibrate"] = time.perf_counter() - t0
    checkpoint()

    t0 = time.perf_counter()
    progress(0.36, "metric", {"signal": config.signal})
    tables = QuantTables(bundle.denoiser, record, config.weight_bits, config.act_bits)
    theta, defined = orthogonality_matrix(record, beta=config.beta, sign=config.sign)

    def on_layer(i, total):
        checkpoint()
        progress(0.36 + 0.3 * i / total, "metric", {"layer": i, "of": total})

    result = compute_signal(config.signal, bundle.denoiser, tables, beta=config.beta, sign=config.sign,
                            seed=config.seed, pinned=set(pinned), progress=on_layer)
    timings["metric"] = time.perf_counter() - t0
    checkpoint()

    t0 = time.perf_counter()
    progress(0.68, "allocate", {})
    allocation = solve_allocation(record.layer_names, record.n_params, config.weight_bits, result.weight_cost,
                                  config.act_bits, result.act_cost, budget_bytes=checked["budget_bytes"],
                                  avg_act_bits=config.budget.avg_act_bits, pinned=pinned)
    timings["allocate"] = time.perf_counter() - t0
    checkpoint()

    t0 = time.perf_counter()
    progress(0.72, "quantize", {})
    spec = build_spec(tables, allocation, record.groups)
    qbundle = quantized_copy(bundle, spec)
    timings["quantize"] = time.perf_counter() - t0
    checkpoint()

    t0 = time.perf_counter()
    progress(0.75, "evaluate", {"seeds": len(config.eval_seeds)})
    if fp_samples is None:
        fp_samples = sample_eval(bundle, config)
    checkpoint()
    q_samples = sample_eval(qbundle, config)
    quality = image_metrics(fp_samples, q_samples)
    timings["evaluate"] = time.perf_counter() - t0
    checkpoint()

    t0 = time.perf_counter()
    progress(0.92, "export", {})
    exported = export_quantized(qbundle, spec, Path(artifact_dir))
    reloaded = load_quantized(artifact_dir, device=bundle.device)
    probe = torch.randn(2, bundle.in_channels, bundle.sample_size, bundle.sample_size,
                        generator=torch.Generator().manual_seed(0)).to(bundle.device)
    with torch.no_grad():
        t_probe = record.timesteps[0]
        diff = float((reloaded.predict_noise(probe, t_probe) - qbundle.predict_noise(probe, t_probe)).abs().max())
    timings["export"] = time.perf_counter() - t0
    progress(1.0, "export", {"path": exported["path"]})

    total_params = sum(record.n_params.values())
    undefined = [n for n, d in zip(record.layer_names, defined.all(1)) if not d]
    rows = [
        {
            "name": n,
            "parameters": record.n_params[n],
            "importance": float(result.importance[i]),
            "weight_bits": allocation.weight_bits[n],
            "act_bits": [allocation.act_bits[g][n] for g in range(record.groups.n_groups)],
            "orm_defined": bool(defined[i].all()),
            "pinned": n in pinned,
        }
        for i, n in enumerate(record.layer_names)
    ]
    return QuantizationOutcome(
        signal=config.signal,
        layers=rows,
        importance_matrix=np.asarray(result.importance_matrix, dtype=float).tolist(),
        orthogonality_matrix=np.asarray(theta, dtype=float).tolist(),
        sampled_steps=record.step_indices,
        sampled_timesteps=record.timesteps,
        weight_bytes_before=4 * total_params,
        weight_bytes_after=allocation.weight_bytes,
        weight_budget_bytes=checked["budget_bytes"],
        bytes_on_disk=exported["bytes_on_disk"],
        artifact_bytes=exported["artifact_bytes"],
        avg_weight_bits=8 * allocation.weight_bytes / total_params,
        avg_act_bits=[float(np.mean(list(a.values()))) for a in allocation.act_bits],
        quality=quality,
        export_path=exported["path"],
        export_max_abs_diff=diff,
        timings=timings,
        undefined_orm_layers=undefined,
        objective=allocation.objective,
    )
