"""Fine-tune a diffusers denoiser with the noise-prediction loss, in one of four modes.

* ``fp32``: fp32 weights, gradients and states (torch AdamW/SGD with torch's default
  implementation: single-tensor on CPU, multi-tensor ``foreach`` on CUDA).
* ``amp``: fp32 master weights + bf16 autocast, as diffusers' training scripts do.
* ``memlean``: bf16 weights + int16 remainders, optimizer step fused into backward.
* ``memlean_bf16_states``: ``memlean`` with bf16 optimizer states (stochastic
  rounding; not exact).

Comparisons are paired.  Everything random is derived from the seeds and the
step number, never from global RNG state carried between steps:

* the held-out evaluation images, their noises and timesteps depend only on
  ``eval_seed`` and the dataset, so every run with that eval seed is scored
  on exactly the same inputs (per-item losses are returned so callers can do
  paired statistics);
* within a ``seed``, every mode sees the same data order, noises and timesteps.

A latent model (one with a VAE) trains and is evaluated on the frozen VAE's latents of the
images (posterior mode: deterministic); its samples are decoded for FID/KID.

This is also what makes resuming exact: a resumed run recomputes the same
batches, and the checkpoint restores weights, remainders, optimizer and
scheduler state.  Validation always runs the fp32 master weights in fp32, so
numbers are comparable across modes.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import (
    ATTENTION_PRECISIONS,
    attention_context,
    checkpoint_function,
    resolve_attention_precision,
)
from .checkpoint import export_fp32_state_dict, split_module_
from .fused import FusedBackward
from .memory import MemoryMeter
from .optim import SplitAdamW, SplitOptimizer, SplitSGD, clip_grad_norm_per_param_

MODES = ("fp32", "amp", "memlean", "memlean_bf16_states")
OPTIMIZERS = ("adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "linear")
CLIP_MODES = ("per_param", "global")
CHECKPOINT_DIRNAME = "checkpoint"
CHECKPOINT_FILE = "trainer_state.pt"
CHECKPOINT_FORMAT = 1

ProgressFn = Callable[[float, str, dict], None]


BF16_MODES = tuple(m for m in MODES if m != "fp32")  # every other mode computes in bf16


def bf16_emulation_warning(mode: str, device: str) -> str | None:
    """A warning for a bf16 mode on a CPU without bf16 instructions, where PyTorch emulates bf16:
    the run is correct but slow (measured: about 10x fp32's step time on an AVX2-only AMD EPYC)."""
    from services.common.hardware import cpu_has_native_bf16, cpu_model

    if mode in BF16_MODES and torch.device(device).type == "cpu" and cpu_has_native_bf16() is False:
        return (f"mode {mode!r} computes in bf16, which this CPU ({cpu_model()}) has no instructions for: "
                "PyTorch emulates it, so each step takes several times longer than in fp32")
    return None


def _noop_progress(fraction: float, message: str, info: dict) -> None:
    pass


@dataclass
class TrainingConfig:
    mode: str = "memlean"
    steps: int = 100
    batch_size: int = 4
    lr: float = 1e-4
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    momentum: float = 0.9  # SGD only
    seed: int = 0
    gradient_checkpointing: bool = False
    grad_accumulation: int = 1
    max_grad_norm: float | None = None
    clip_mode: str = "per_param"  # "global" is refused in fused memlean modes
    fused: bool = True  # memlean modes: False runs the same optimizer after backward (for comparison)
    optimizer_kernel: str = "auto"  # memlean AdamW: "eager" ops, or "compiled" one kernel (auto: CUDA)
    attention_precision: str = "auto"  # bf16 modes: attention core in "fp32" or "bf16" (auto: fp32 on CPU)
    eval_seed: int = 0
    eval_size: int = 8  # held-out images
    eval_repeats: int = 4  # (noise, timestep) draws per held-out image
    eval_every: int = 0  # 0: only before and after training
    num_samples: int = 8  # images drawn at the end for FID/KID; 0 skips sampling
    sample_steps: int = 20
    feature_extractor: str | None = None  # Inception weights path; None: offline extractor
    checkpoint_every: int = 0  # 0: checkpoint only when stopped
    device: str = "cpu"

    @property
    def bf16_states(self) -> bool:
        return self.mode == "memlean_bf16_states"

    @property
    def is_memlean(self) -> bool:
        return self.mode in ("memlean", "memlean_bf16_states")

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; expected one of {LR_SCHEDULES}")
        if self.optimizer_kernel not in ("auto", "eager", "compiled"):
            raise ValueError(f"unknown optimizer_kernel {self.optimizer_kernel!r}")
        if self.attention_precision not in ATTENTION_PRECISIONS:
            raise ValueError(f"unknown attention_precision {self.attention_precision!r}; "
                             f"expected one of {ATTENTION_PRECISIONS}")
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"unknown clip_mode {self.clip_mode!r}; expected one of {CLIP_MODES}")
        for name in ("steps", "batch_size", "grad_accumulation", "sample_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "num_samples", "checkpoint_every"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_size < 1 or self.eval_repeats < 1:
            raise ValueError("eval_size and eval_repeats must be >= 1")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.warmup_steps > self.steps:
            raise ValueError("warmup_steps must not exceed steps")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError("max_grad_norm must be > 0 (or None to disable clipping)")
        if self.weight_decay < 0 or self.eps < 0 or self.momentum < 0:
            raise ValueError("weight_decay, eps and momentum must be >= 0")
        if self.num_samples == 1:
            raise ValueError("num_samples must be 0 (no sampling) or >= 2 (FID/KID need two images)")
        if self.is_memlean and self.fused and self.max_grad_norm is not None and self.clip_mode == "global":
            raise ValueError(
                "global-norm clipping cannot be combined with the fused optimizer step (each "
                "parameter is updated before the other gradients exist): use clip_mode='per_param' "
                "or fused=False"
            )
        if self.is_memlean and not self.fused and self.grad_accumulation > 1:
            raise ValueError(
                "non-fused memlean would accumulate gradients in bf16; use fused=True (fp32 "
                "accumulation buffers) for gradient accumulation"
            )
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        data = dict(data)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)


@dataclass
class TrainingOutcome:
    mode: str
    steps_done: int
    stopped: bool
    checkpoint_path: Path | None
    artifact_path: Path | None
    initial_val_loss: float
    final_val_loss: float | None  # None when stopped early
    final_val_losses: list[float]  # per held-out item, same order in every run (paired stats)
    quality: dict | None  # image_quality(dataset, samples): fid, kid_mean, kid_std, feature_extractor
    peak_memory_bytes: int
    median_step_seconds: float | None
    median_step_cpu_seconds: float | None  # process CPU time: steadier than wall time on a shared host
    num_parameters: int
    device: str
    loss_curve: list[dict] = field(default_factory=list)  # {"step", "loss", "lr"}
    memory_curve: list[dict] = field(default_factory=list)  # {"step", "peak_bytes"}
    val_curve: list[dict] = field(default_factory=list)  # {"step", "val_loss"}
    samples_path: Path | None = None
    optimizer_kernel: str = "torch"  # memlean: "eager" or "compiled" (the one that actually ran)
    optimizer_bucket_elements: int = 0  # memlean: small parameters updated together in buckets this big
    attention_precision: str = "fp32"  # what the attention core computed in ("fp32" whenever the mode is)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("checkpoint_path", "artifact_path", "samples_path"):
            out[key] = None if out[key] is None else str(out[key])
        return out


# ----------------------------------------------------------------------------- determinism
def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any tuple of values (stable across processes and runs)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generator(*parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def split_eval_indices(n: int, eval_size: int, eval_seed: int) -> tuple[list[int], list[int]]:
    """(held-out indices, training indices): fixed by the eval seed and the dataset size."""
    if n < eval_size + 1:
        raise ValueError(
            f"dataset has {n} images: need at least eval_size + 1 = {eval_size + 1} "
            "(held-out images are never trained on)"
        )
    order = torch.randperm(n, generator=_generator("eval-split", eval_seed, n)).tolist()
    return sorted(order[:eval_size]), sorted(order[eval_size:])


class _Batches:
    """Epoch-wise shuffled order of the training indices, fixed by the seed."""

    def __init__(self, train_indices: list[int], seed: int) -> None:
        self.indices = train_indices
        self.seed = seed
        self._epoch_orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._epoch_orders:
            perm = torch.randperm(len(self.indices), generator=_generator("epoch", self.seed, epoch))
            self._epoch_orders = {epoch: [self.indices[i] for i in perm.tolist()]}
        return self._epoch_orders[epoch]

    def batch(self, position: int, size: int) -> list[int]:
        n = len(self.indices)
        return [self._order((position + j) // n)[(position + j) % n] for j in range(size)]


# ----------------------------------------------------------------------------- pieces
def _loss_target(scheduler, x0, noise, timesteps):
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction == "epsilon":
        return noise
    if prediction == "v_prediction":
        return scheduler.get_velocity(x0, noise, timesteps)
    if prediction == "sample":
        return x0
    raise ValueError(f"unsupported prediction_type {prediction!r}")


def _stack(dataset, indices: list[int]) -> tuple[torch.Tensor, list[str]]:
    items = [dataset[i] for i in indices]
    return torch.stack([it["pixel_values"] for it in items]), [it["text"] for it in items]


@torch.no_grad()
def _encoded(bundle, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels -> x_0 in the denoiser's space: the frozen VAE's latents (posterior mode) for a latent
    model, the pixels themselves otherwise."""
    return pixels if bundle.vae is None else bundle.encode_images(pixels).float()


class _EvalSet:
    """Held-out images (in the denoiser's space: `encode`) with fixed noises and (stratified) timesteps."""

    def __init__(self, dataset, indices: list[int], repeats: int, eval_seed: int, scheduler,
                 encode: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> None:
        images, texts = _stack(dataset, indices)
        self.images = encode(images).repeat_interleave(repeats, dim=0)
        self.texts = [t for t in texts for _ in range(repeats)]
        k = self.images.shape[0]
        gen = _generator("eval-noise", eval_seed)
        self.noise = torch.randn(self.images.shape, generator=gen)
        num_t = scheduler.config.num_train_timesteps
        # Stratified timesteps cover the whole schedule evenly: less variance than uniform draws.
        offsets = torch.rand(k, generator=gen, dtype=torch.float64)
        strata = ((torch.arange(k, dtype=torch.float64) + offsets) * num_t / k).long().clamp_(0, num_t - 1)
        self.timesteps = strata[torch.randperm(k, generator=gen)]


@torch.no_grad()
def _eval_losses(bundle, evalset: _EvalSet, batch_size: int, device: torch.device) -> list[float]:
    bundle.denoiser.eval()
    losses: list[float] = []
    for start in range(0, evalset.images.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        x0 = evalset.images[sl].to(device)
        noise = evalset.noise[sl].to(device)
        t = evalset.timesteps[sl].to(device)
        x_t = bundle.scheduler.add_noise(x0, noise, t)
        cond = bundle.encode_prompts(evalset.texts[sl]) if bundle.conditional else None
        pred = bundle.predict_noise(x_t, t, cond).float()
        target = _loss_target(bundle.scheduler, x0, noise, t)
        per_item = F.mse_loss(pred, target, reduction="none").flatten(1).mean(1)
        losses.extend(per_item.double().cpu().tolist())
    bundle.denoiser.train()
    return losses


def _lr_scheduler(config: TrainingConfig, optimizer: torch.optim.Optimizer):
    from diffusers.optimization import get_scheduler

    name = config.lr_schedule
    if name == "constant" and config.warmup_steps:
        name = "constant_with_warmup"
    return get_scheduler(
        name, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.steps
    )


def _attention_precision(config: TrainingConfig, device: torch.device) -> str:
    if config.mode == "fp32":
        return "fp32"
    return resolve_attention_precision(config.attention_precision, device)


class _Engine:
    """Optimizer, fused driver and backward/step for one mode."""

    def __init__(self, bundle, config: TrainingConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        denoiser: nn.Module = bundle.denoiser
        self.split_optimizer: SplitOptimizer | None = None
        self.fused: FusedBackward | None = None
        params = [p for p in denoiser.parameters() if p.requires_grad]
        if config.is_memlean:
            remainders = split_module_(denoiser)
            state_dtype = torch.bfloat16 if config.bf16_states else torch.float32
            common = dict(
                max_grad_norm=config.max_grad_norm if config.clip_mode == "per_param" else None,
                state_dtype=state_dtype,
                remainders=remainders,
                seed=derive_seed("stochastic-rounding", config.seed),
            )
            if config.optimizer == "adamw":
                opt = SplitAdamW(
                    params, lr=config.lr, betas=config.betas, eps=config.eps,
                    weight_decay=config.weight_decay, kernel=config.optimizer_kernel, **common,
                )
            else:
                opt = SplitSGD(
                    params, lr=config.lr, momentum=config.momentum,
                    weight_decay=config.weight_decay, **common,
                )
            self.split_optimizer = opt
            if config.fused:
                self.fused = FusedBackward(opt, accumulation_steps=config.grad_accumulation)
        # The baselines use torch's default implementation, as diffusers' training scripts do.
        elif config.optimizer == "adamw":
            opt = torch.optim.AdamW(
                params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay,
            )
        else:
            opt = torch.optim.SGD(
                params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
            )
        self.optimizer = opt
        self.params = params

    def autocast(self):
        if self.config.mode == "amp":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        if self.fused is not None:
            self.fused.backward(loss)
        else:
            loss.backward()

    def step(self) -> None:
        config = self.config
        if self.fused is None and config.max_grad_norm is not None:
            if config.clip_mode == "global":
                torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
            elif self.split_optimizer is None:  # split optimizers clip per parameter themselves
                clip_grad_norm_per_param_(self.params, config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def fp32_state_dict(self, denoiser: nn.Module) -> dict[str, torch.Tensor]:
        if self.split_optimizer is not None:
            return export_fp32_state_dict(denoiser, self.split_optimizer)
        return {k: v.detach().clone() for k, v in denoiser.state_dict().items()}

    def restore_fp32_(self, denoiser: nn.Module) -> None:
        """Give the denoiser back as an ordinary fp32 module holding the master weights."""
        if self.split_optimizer is None:
            return
        state = export_fp32_state_dict(denoiser, self.split_optimizer)
        if self.fused is not None:
            self.fused.remove()
        denoiser.float()
        denoiser.load_state_dict(state)


class _Fp32Eval:
    """Run validation on fp32 master weights whatever the training mode."""

    def __init__(self, bundle, engine: _Engine) -> None:
        self.bundle, self.engine = bundle, engine

    def losses(self, evalset: _EvalSet, batch_size: int, device: torch.device) -> list[float]:
        if self.engine.split_optimizer is None:
            return _eval_losses(self.bundle, evalset, batch_size, device)
        trained = self.bundle.denoiser
        shadow = copy.deepcopy(trained)
        # the copy carries no hooks worth keeping; its fp32 weights are rebuilt exactly
        shadow.float().load_state_dict(self.engine.fp32_state_dict(trained))
        self.bundle.denoiser = shadow
        try:
            return _eval_losses(self.bundle, evalset, batch_size, device)
        finally:
            self.bundle.denoiser = trained
            del shadow


# ----------------------------------------------------------------------------- checkpoints
def _save_checkpoint(directory: Path, *, config, engine: _Engine, scheduler, denoiser, record) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "model": denoiser.state_dict(),
        "optimizer": engine.optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "record": record,
    }
    tmp = directory / (CHECKPOINT_FILE + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(directory / CHECKPOINT_FILE)  # atomic: a crash never leaves half a checkpoint
    return directory


_RESUME_MUST_MATCH = (
    "mode", "steps", "batch_size", "lr", "lr_schedule", "warmup_steps", "optimizer", "betas", "eps",
    "weight_decay", "momentum", "seed", "grad_accumulation", "max_grad_norm", "clip_mode", "fused",
    "eval_seed", "eval_size", "eval_repeats",
)


def _load_checkpoint(path: Path, config: TrainingConfig) -> dict:
    path = Path(path)
    file = path / CHECKPOINT_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no training checkpoint at {file}")
    payload = torch.load(file, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"unsupported checkpoint format {payload.get('format')!r}")
    saved = payload["config"]
    current = config.to_dict()
    must_match = list(_RESUME_MUST_MATCH)
    if config.lr_schedule == "constant":
        # The total step count shapes only cosine/linear schedules: a constant one may be extended.
        must_match.remove("steps")
        if config.steps < payload["record"]["step"]:
            raise ValueError(
                f"cannot resume: the checkpoint is at step {payload['record']['step']}, "
                f"beyond steps={config.steps}"
            )
    mismatched = [k for k in must_match if saved.get(k) != current.get(k)]
    if mismatched:
        raise ValueError(f"cannot resume: config differs from the checkpoint in {mismatched}")
    return payload


# ----------------------------------------------------------------------------- entry point
def run_training(
    bundle,
    dataset,
    config: TrainingConfig,
    *,
    artifact_dir: Path,
    progress: ProgressFn = _noop_progress,
    should_stop: Callable[[], bool] = lambda: False,
    resume_from: Path | None = None,
) -> TrainingOutcome:
    """Fine-tune ``bundle.denoiser`` on ``dataset`` (items {"pixel_values", "text"}).

    ``bundle`` is modified in place and holds the trained fp32 model on return
    (also when stopped).  Writes ``artifact_dir/model`` (diffusers
    ``save_pretrained`` layout via ``bundle.save``), ``samples.pt`` and
    ``outcome.json``; when ``should_stop()`` turns true it writes
    ``artifact_dir/checkpoint`` and returns ``stopped=True``.
    """
    config.validate()
    artifact_dir = Path(artifact_dir)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    eval_idx, train_idx = split_eval_indices(len(dataset), config.eval_size, config.eval_seed)

    bundle.to(device)
    denoiser: nn.Module = bundle.denoiser
    if any(p.dtype != torch.float32 for p in denoiser.parameters()):
        raise ValueError("run_training expects an fp32 denoiser (load the base model in fp32)")
    for frozen in (bundle.text_encoder, bundle.vae):
        if frozen is not None:
            frozen.requires_grad_(False).eval()
    attention_precision = _attention_precision(config, device)
    if config.gradient_checkpointing:
        denoiser.enable_gradient_checkpointing(checkpoint_function(attention_precision))
    denoiser.train()
    num_parameters = sum(p.numel() for p in denoiser.parameters() if p.requires_grad)

    evalset = _EvalSet(dataset, eval_idx, config.eval_repeats, config.eval_seed, bundle.scheduler,
                       encode=lambda pixels: _encoded(bundle, pixels.to(device)).cpu())
    meter = MemoryMeter(device)
    engine = _Engine(bundle, config, device)
    scheduler = _lr_scheduler(config, engine.optimizer)
    evaluator = _Fp32Eval(bundle, engine)
    batches = _Batches(train_idx, config.seed)
    micro = config.batch_size

    record: dict[str, Any] = {
        "step": 0, "loss_curve": [], "memory_curve": [], "val_curve": [], "step_seconds": [],
        "step_cpu_seconds": [],
        "initial_val_loss": None, "peak_memory_bytes": 0,
    }
    if resume_from is not None:
        payload = _load_checkpoint(Path(resume_from), config)
        denoiser.load_state_dict(payload["model"])
        engine.optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        record = payload["record"]
    else:
        initial = evaluator.losses(evalset, micro, device)
        record["initial_val_loss"] = statistics.fmean(initial)
        record["val_curve"].append({"step": 0, "val_loss": record["initial_val_loss"]})

    checkpoint_dir = artifact_dir / CHECKPOINT_DIRNAME
    stopped = False
    checkpoint_path: Path | None = None
    num_train_timesteps = bundle.scheduler.config.num_train_timesteps
    cuda_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            while record["step"] < config.steps:
                if should_stop():
                    stopped = True
                    break
                step = record["step"]
                torch.manual_seed(derive_seed("step", config.seed, step))  # dropout etc.
                meter.reset()
                started, started_cpu = time.perf_counter(), time.process_time()
                step_loss = 0.0
                for m in range(config.grad_accumulation):
                    position = (step * config.grad_accumulation + m) * micro
                    pixels, texts = _stack(dataset, batches.batch(position, micro))
                    x0 = _encoded(bundle, pixels.to(device))
                    gen = _generator("noise", config.seed, step, m)
                    noise = torch.randn(x0.shape, generator=gen)
                    t = torch.randint(0, num_train_timesteps, (micro,), generator=gen)
                    noise, t = noise.to(device), t.to(device)
                    x_t = bundle.scheduler.add_noise(x0, noise, t)
                    with torch.no_grad():
                        cond = bundle.encode_prompts(texts) if bundle.conditional else None
                    with engine.autocast(), attention_context(attention_precision):
                        pred = bundle.predict_noise(x_t, t, cond)
                    loss = F.mse_loss(pred.float(), _loss_target(bundle.scheduler, x0, noise, t))
                    engine.backward(loss / config.grad_accumulation)
                    step_loss += loss.item() / config.grad_accumulation
                    del pred, loss, x_t, cond
                lr = float(engine.optimizer.param_groups[0]["lr"])
                engine.step()
                scheduler.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds = time.perf_counter() - started
                record["step_cpu_seconds"].append(time.process_time() - started_cpu)
                peak = meter.peak()
                record["step"] = step + 1
                record["step_seconds"].append(seconds)
                record["loss_curve"].append({"step": step + 1, "loss": step_loss, "lr": lr})
                record["memory_curve"].append({"step": step + 1, "peak_bytes": peak})
                record["peak_memory_bytes"] = max(record["peak_memory_bytes"], peak)
                if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
                    val = statistics.fmean(evaluator.losses(evalset, micro, device))
                    record["val_curve"].append({"step": step + 1, "val_loss": val})
                if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                    _save_checkpoint(checkpoint_dir, config=config, engine=engine,
                                     scheduler=scheduler, denoiser=denoiser, record=record)
                progress(
                    (step + 1) / config.steps,
                    f"step {step + 1}/{config.steps} loss {step_loss:.4f}",
                    {
                        "step": step + 1,
                        "loss": step_loss,
                        "throughput": micro * config.grad_accumulation / seconds,
                        "peak_memory_bytes": record["peak_memory_bytes"],
                    },
                )
        if stopped:
            checkpoint_path = _save_checkpoint(checkpoint_dir, config=config, engine=engine,
                                               scheduler=scheduler, denoiser=denoiser, record=record)
    finally:
        engine.restore_fp32_(denoiser)
        if config.gradient_checkpointing:
            denoiser.disable_gradient_checkpointing()

    outcome = TrainingOutcome(
        mode=config.mode,
        steps_done=record["step"],
        stopped=stopped,
        checkpoint_path=checkpoint_path,
        artifact_path=None,
        initial_val_loss=record["initial_val_loss"],
        final_val_loss=None,
        final_val_losses=[],
        quality=None,
        peak_memory_bytes=int(record["peak_memory_bytes"]),
        median_step_seconds=statistics.median(record["step_seconds"]) if record["step_seconds"] else None,
        median_step_cpu_seconds=(
            statistics.median(record["step_cpu_seconds"]) if record["step_cpu_seconds"] else None
        ),
        num_parameters=num_parameters,
        device=str(device),
        loss_curve=record["loss_curve"],
        memory_curve=record["memory_curve"],
        val_curve=record["val_curve"],
        optimizer_kernel=engine.split_optimizer.kernel if engine.split_optimizer is not None else "torch",
        optimizer_bucket_elements=engine.split_optimizer.bucket_elements if engine.split_optimizer else 0,
        attention_precision=attention_precision,
    )
    if stopped:
        progress(record["step"] / config.steps, f"stopped at step {record['step']}; checkpoint written",
                 {"step": record["step"], "checkpoint": str(checkpoint_path)})
        return outcome

    # The denoiser is plain fp32 again: evaluate, sample, save.
    final = _eval_losses(bundle, evalset, micro, device)
    outcome.final_val_losses = final
    outcome.final_val_loss = statistics.fmean(final)
    outcome.val_curve.append({"step": record["step"], "val_loss": outcome.final_val_loss})
    if config.num_samples:
        progress(1.0, "sampling", {"step": record["step"]})
        outcome.quality, outcome.samples_path = _sample_and_score(bundle, dataset, config, artifact_dir)
    model_dir = artifact_dir / "model"
    bundle.save(model_dir)
    outcome.artifact_path = model_dir
    (artifact_dir / "outcome.json").write_text(json.dumps(outcome.to_dict(), indent=2) + "\n")
    progress(1.0, "done", {"step": record["step"], "final_val_loss": outcome.final_val_loss})
    return outcome


def _sample_and_score(bundle, dataset, config: TrainingConfig, artifact_dir: Path):
    from services.common.diffusion import image_quality, load_feature_extractor, sample

    seeds = [derive_seed("sample", config.eval_seed, i) % (2**31) for i in range(config.num_samples)]
    prompts = None
    if bundle.conditional:
        texts = dataset.texts if hasattr(dataset, "texts") else [dataset[i]["text"] for i in range(len(dataset))]
        prompts = [texts[i % len(texts)] for i in range(config.num_samples)]
    images = sample(bundle, seeds=seeds, prompts=prompts, num_inference_steps=config.sample_steps)
    path = artifact_dir / "samples.pt"
    torch.save({"images": images.cpu(), "seeds": seeds, "prompts": prompts}, path)
    real = dataset.images() if hasattr(dataset, "images") else _stack(dataset, list(range(len(dataset))))[0]
    extractor = load_feature_extractor(config.feature_extractor)
    quality = image_quality(real, images.float().cpu(), extractor=extractor)
    return quality, path
