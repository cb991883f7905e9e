"""AdamW and SGD-momentum on split (bf16 + int16 remainder) parameters.

Parameters are bf16 ``nn.Parameter`` objects that forward and backward use
directly; the optimizer keeps an int16 remainder per parameter so that the
pair is the fp32 master value bit for bit (see ``split.py``).  Each update
rebuilds the fp32 master on a temporary, runs the same fp32 arithmetic as
``torch.optim.AdamW(foreach=False)`` / ``torch.optim.SGD(foreach=False)``, and
splits the result back.  With fp32 states the rebuilt weights are therefore
bit-identical to the torch optimizers on an fp32 master copy fed the same
gradients.

``state_dtype=torch.bfloat16`` keeps the moments in bf16 and writes them with
stochastic rounding: 4 bytes per parameter less for AdamW, but *not* exact.

The work is done on contiguous chunks of each flattened tensor so that the
dozen elementwise passes of an update hit cache instead of main memory; it
also bounds the fp32 temporaries to a few chunk-sized buffers.  Elementwise
ops give the same bits whatever the chunking.

On a GPU two things change (both on by default there, see ``kernel`` and
``bucket_elements``): small parameters are updated together in buckets, which
keeps the bits and saves kernel launches, and AdamW can run as one compiled
kernel per update (``kernels.py``), which saves passes over memory but may
differ from the eager reference in last bits.

Both classes are ``torch.optim.Optimizer`` subclasses, so the torch LR
schedulers drive ``param_groups[i]["lr"]`` as usual.  ``step()`` updates every
parameter that has a gradient; in fused mode (``fused.FusedBackward``) the
per-parameter updates run inside backward and ``step()`` only closes the step.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .kernels import adamw_split_update, compiled_kernels_available
from .split import RoundingNoise, rebuild_fp32, split_into_, stochastic_round_to_bf16_

DEFAULT_CHUNK_ELEMENTS = 1 << 17  # 512 KiB of fp32 per temporary: fits L2
KERNELS = ("auto", "eager", "compiled")
MAX_GPU_BUCKET_ELEMENTS = 1 << 21  # 4 MiB of bf16 gradients held at most


def per_param_clip_coef(grad: Tensor, max_norm: float | None) -> float:
    """Scale factor that brings one gradient's L2 norm down to ``max_norm``.

    Same formula as ``torch.nn.utils.clip_grad_norm_`` applied to a single
    tensor, so per-parameter clipping agrees between fused and non-fused modes.
    """
    if max_norm is None:
        return 1.0
    norm = torch.linalg.vector_norm(grad, dtype=torch.float32).item()
    return min(1.0, max_norm / (norm + 1e-6))


def clip_grad_norm_per_param_(params: Iterable[Tensor], max_norm: float) -> None:
    """Per-parameter clipping for ordinary (non-split) optimizers: the fp32/amp baselines."""
    for p in params:
        if p.grad is not None:
            coef = per_param_clip_coef(p.grad, max_norm)
            if coef < 1.0:
                p.grad.mul_(coef)


class SplitOptimizer(torch.optim.Optimizer):
    """Common machinery: remainders, chunked updates, fused-mode bookkeeping."""

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        state_dtype: torch.dtype = torch.float32,
        remainders: Mapping[Tensor, Tensor] | None = None,
        seed: int = 0,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        kernel: str = "auto",
        bucket_elements: int | None = None,
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if state_dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"state_dtype must be float32 or bfloat16, got {state_dtype}")
        if chunk_elements < 1:
            raise ValueError("chunk_elements must be >= 1")
        super().__init__(params, defaults)
        self.state_dtype = state_dtype
        self.chunk_elements = chunk_elements
        # One counter for the whole optimizer: what LR schedulers and fused
        # mode reason about.  Bias correction uses the per-parameter count,
        # as torch does (they agree unless a parameter misses a gradient).
        self.step_count = 0
        self._seed = seed
        self._rounding_generator = torch.Generator().manual_seed(seed)
        self._rounding_noise = RoundingNoise(seed, self._rounding_generator)
        self._fused_driver: Any = None
        self._group_of: dict[Tensor, dict[str, Any]] = {}
        remainders = remainders or {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.dtype != torch.bfloat16:
                    raise TypeError(
                        "split optimizers take bf16 parameters; convert the module with "
                        "memlean.checkpoint.split_module_ first"
                    )
                if not p.is_contiguous():
                    raise ValueError("split optimizers need contiguous parameters")
                self._group_of[p] = group
                rem = remainders.get(p)
                if rem is None:
                    rem = torch.zeros_like(p, dtype=torch.int16)
                elif rem.shape != p.shape or rem.dtype != torch.int16:
                    raise ValueError("a remainder must be int16 with its parameter's shape")
                self.state[p]["remainder"] = rem
        self.kernel = self._resolve_kernel(kernel)
        # Small parameters are updated in buckets of this many elements (their
        # gradients wait until the bucket is full: at most bucket_elements of
        # them).  Default: on for CUDA, where per-tensor kernel launches would
        # dominate a step, off for CPU.
        if bucket_elements is None:
            on_gpu = any(p.device.type != "cpu" for g in self.param_groups for p in g["params"])
            total = sum(p.numel() for g in self.param_groups for p in g["params"])
            # A bucket's held gradients and gather buffers cost a few bytes per
            # element: keep it to ~1/64 of the parameters.
            bucket_elements = min(MAX_GPU_BUCKET_ELEMENTS, max(1 << 16, total // 64)) if on_gpu else 0
        if bucket_elements < 0:
            raise ValueError("bucket_elements must be >= 0")
        self.bucket_elements = bucket_elements
        self._buckets: dict[tuple, list[tuple[Tensor, Tensor]]] = {}
        self._bucketed_elements = 0
        self._scalar_cache: dict[tuple, Tensor] = {}
        self._compiled_ran = False
        self.kernel_fallback_reason: str | None = None

    def _resolve_kernel(self, kernel: str) -> str:
        """``auto``: the compiled one-kernel update on CUDA (when supported), eager elsewhere."""
        if kernel != "auto":
            return kernel
        devices = {p.device for g in self.param_groups for p in g["params"]}
        if devices and all(compiled_kernels_available(d) for d in devices) and self.has_compiled_update:
            return "compiled"
        return "eager"

    has_compiled_update = False  # subclasses with a one-kernel update (kernels.py) say so

    # ----- master weights ---------------------------------------------------------
    def master_fp32(self, p: Tensor) -> Tensor:
        """The exact fp32 master value of ``p`` (a new tensor)."""
        self.flush()
        return rebuild_fp32(p, self.state[p]["remainder"])

    def set_master_fp32_(self, p: Tensor, value: Tensor) -> None:
        """Split fp32 ``value`` exactly into ``p`` (bf16) and its remainder."""
        self.flush()
        if value.shape != p.shape:
            raise ValueError(f"shape mismatch: {tuple(value.shape)} vs {tuple(p.shape)}")
        scratch = value.detach().to(device=p.device, dtype=torch.float32, copy=True)
        split_into_(scratch, p.data, self.state[p]["remainder"])

    # ----- stepping -----------------------------------------------------------------
    def _chunks(self, n: int, device: torch.device) -> Iterable[slice]:
        # Chunks keep a CPU update in cache; a GPU is better served by whole tensors (fewer launches).
        size = self.chunk_elements if device.type == "cpu" else max(n, 1)
        for start in range(0, n, size):
            yield slice(start, min(start + size, n))

    def _new_state(self, p: Tensor) -> Tensor:
        return torch.zeros(p.numel(), dtype=self.state_dtype, device=p.device)

    def _load_state_chunk(self, buf: Tensor, sl: slice) -> Tensor:
        chunk = buf[sl]
        return chunk if chunk.dtype == torch.float32 else chunk.float()

    def _store_state_chunk(self, buf: Tensor, sl: slice, value: Tensor) -> None:
        if buf.dtype == torch.float32:
            return  # updated in place
        noise = self._rounding_noise.draw(value.numel(), value.device)
        stochastic_round_to_bf16_(value, buf[sl], noise=noise)

    @torch.no_grad()
    def step_param(self, p: Tensor, grad: Tensor | None = None) -> None:
        """Apply one update to ``p`` from ``grad`` (default: ``p.grad``).

        With bucketing on, a small parameter's update may be deferred to the
        next ``flush()`` (``step()``, the end of a fused backward, or any read
        of the weights through this optimizer calls it).
        """
        grad = p.grad if grad is None else grad
        if grad is None:
            return
        group = self._group_of[p]
        state = self.state[p]
        if self.bucket_elements and p.numel() <= self.bucket_elements // 4 and group.get("max_grad_norm") is None:
            key = (id(group), self._bucket_key(state))
            self._buckets.setdefault(key, []).append((p, grad))
            self._bucketed_elements += p.numel()
            if self._bucketed_elements >= self.bucket_elements:
                self.flush()
            return
        coef = per_param_clip_coef(grad, group.get("max_grad_norm"))
        hi = p.view(-1)
        rem = state["remainder"].view(-1)
        flat_grad = grad.reshape(-1)
        self._prepare_state(p, state, group)
        if self.kernel == "compiled":
            self._compiled_step(hi, rem, flat_grad, state, group, coef)
        else:
            self._eager_step(hi, rem, flat_grad, state, group, coef)
        self._finish_param(state)

    def _eager_step(self, hi: Tensor, rem: Tensor, flat_grad: Tensor, state, group, coef: float) -> None:
        for sl in self._chunks(hi.numel(), hi.device):
            master = rebuild_fp32(hi[sl], rem[sl])
            g = flat_grad[sl].to(torch.float32, copy=True)  # never write into the caller's grad
            if coef != 1.0:
                g.mul_(coef)
            master = self._update_chunk(master, g, state, group, sl)
            split_into_(master, hi[sl], rem[sl])

    @torch.no_grad()
    def flush(self) -> None:
        """Run the deferred updates of bucketed small parameters.

        Each bucket (parameters of one group at the same step) is gathered into
        flat tensors, updated by the same code as a single parameter, and
        scattered back with multi-tensor copies: a few dozen kernel launches
        instead of a dozen per parameter.  Elementwise arithmetic does not
        depend on where an element sits, so the result is bit-identical to
        updating the parameters one by one.
        """
        buckets, self._buckets, self._bucketed_elements = self._buckets, {}, 0
        for entries in buckets.values():
            params = [p for p, _ in entries]
            group = self._group_of[params[0]]
            states = [self.state[p] for p in params]
            for p, state in zip(params, states):
                self._prepare_state(p, state, group)
            flat_state = {k: v for k, v in states[0].items() if not isinstance(v, Tensor)}
            keys = [key for key in self._state_tensor_keys if key in states[0]]
            for key in keys:
                flat_state[key] = torch.cat([state[key] for state in states])
            hi = torch.cat([p.detach().view(-1) for p in params])
            rem = torch.cat([state["remainder"].view(-1) for state in states])
            grad = torch.cat([g.reshape(-1) for _, g in entries])
            entries.clear()  # the gradients are no longer needed
            if self.kernel == "compiled":
                self._compiled_step(hi, rem, grad, flat_state, group, 1.0)
            else:
                self._eager_step(hi, rem, grad, flat_state, group, 1.0)
            sizes = [p.numel() for p in params]
            torch._foreach_copy_([p.detach().view(-1) for p in params], list(hi.split(sizes)))
            torch._foreach_copy_([state["remainder"].view(-1) for state in states], list(rem.split(sizes)))
            for key in keys:
                torch._foreach_copy_([state[key] for state in states], list(flat_state[key].split(sizes)))
            for state in states:
                self._finish_param(state)

    # Subclasses: the state tensors an update reads and writes, and what must
    # agree for parameters to share a bucket besides their group.
    _state_tensor_keys: tuple[str, ...] = ()

    def _bucket_key(self, state: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _prepare_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _update_chunk(
        self, master: Tensor, g: Tensor, state: dict[str, Any], group: dict[str, Any], sl: slice
    ) -> Tensor:
        raise NotImplementedError

    def _compiled_step(self, hi: Tensor, rem: Tensor, grad: Tensor, state, group, coef: float) -> None:
        raise NotImplementedError

    def _finish_param(self, state: dict[str, Any]) -> None:
        pass

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._fused_driver is not None:
            # The updates already ran inside backward; close the step.
            self._fused_driver.finish_step()
        else:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.step_param(p)
        self.flush()
        self.step_count += 1
        self._scalar_cache.clear()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none=set_to_none)

    # ----- checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self.flush()
        sd = super().state_dict()
        sd["memlean"] = {
            "step_count": self.step_count,
            "state_dtype": str(self.state_dtype),
            "rounding_generator": self._rounding_generator.get_state(),
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("memlean", None)
        if extra is not None and extra["state_dtype"] != str(self.state_dtype):
            raise ValueError(
                f"checkpoint has {extra['state_dtype']} optimizer states, this optimizer "
                f"uses {self.state_dtype}"
            )
        super().load_state_dict(state_dict)
        # torch rebuilds the param_group dicts; point parameters at the new ones.
        self._group_of = {p: g for g in self.param_groups for p in g["params"]}
        # torch casts floating state to the parameter dtype (bf16); restore the
        # saved dtypes (fp32 moments, int16 remainders) exactly.
        params = [p for g in self.param_groups for p in g["params"]]
        for index, saved in state_dict["state"].items():
            p = params[index]
            for key, value in saved.items():
                if isinstance(value, Tensor):
                    self.state[p][key] = value.to(device=p.device, copy=True)
        if extra is not None:
            self.step_count = int(extra["step_count"])
            self._rounding_generator.set_state(extra["rounding_generator"])


class SplitAdamW(SplitOptimizer):
    """AdamW (decoupled weight decay) on split parameters.

    Matches ``torch.optim.AdamW(foreach=False)`` bit for bit with fp32 states.
    ``max_grad_norm`` clips each parameter's gradient on its own.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        max_grad_norm: float | None = None,
        state_dtype: torch.dtype = torch.float32,
        remainders: Mapping[Tensor, Tensor] | None = None,
        seed: int = 0,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        kernel: str = "auto",
        bucket_elements: int | None = None,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError("eps and weight_decay must be >= 0")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError("max_grad_norm must be > 0")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_grad_norm=max_grad_norm
        )
        super().__init__(
            params,
            defaults,
            state_dtype=state_dtype,
            remainders=remainders,
            seed=seed,
            chunk_elements=chunk_elements,
            kernel=kernel,
            bucket_elements=bucket_elements,
        )

    _state_tensor_keys = ("exp_avg", "exp_avg_sq")

    has_compiled_update = True

    def _bucket_key(self, state):
        return state.get("step", 0)

    def _prepare_state(self, p, state, group):
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = self._new_state(p)
            state["exp_avg_sq"] = self._new_state(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        step = state["step"]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        # Same scalar expressions, in the same order, as torch's single-tensor AdamW.
        state["_scalars"] = (
            1 - lr * group["weight_decay"],
            lr / bias_correction1,
            bias_correction2**0.5,
        )

    def _update_chunk(self, master, g, state, group, sl):
        beta1, beta2 = group["betas"]
        decay, step_size, bias_correction2_sqrt = state["_scalars"]
        if group["weight_decay"] != 0:
            master.mul_(decay)
        exp_avg = self._load_state_chunk(state["exp_avg"], sl)
        exp_avg_sq = self._load_state_chunk(state["exp_avg_sq"], sl)
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = torch.sqrt(exp_avg_sq, out=g)  # g is spent: reuse its buffer
        denom.div_(bias_correction2_sqrt).add_(group["eps"])
        master.addcdiv_(exp_avg, denom, value=-step_size)
        self._store_state_chunk(state["exp_avg"], sl, exp_avg)
        self._store_state_chunk(state["exp_avg_sq"], sl, exp_avg_sq)
        return master

    def _compiled_step(self, hi, rem, grad, state, group, coef):
        beta1, beta2 = group["betas"]
        decay, step_size, bias_correction2_sqrt = state["_scalars"]
        if group["weight_decay"] == 0:
            decay = 1.0  # the eager path skips the multiply; x * 1.0 is x
        values = (coef, decay, 1 - beta1, beta2, 1 - beta2, bias_correction2_sqrt, group["eps"], step_size)
        key = (values, hi.device)
        scalars = self._scalar_cache.get(key)
        if scalars is None:  # one small host-to-device copy per step and group, not per parameter
            scalars = torch.tensor(values, dtype=torch.float32, device=hi.device)
            self._scalar_cache[key] = scalars
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        noise = None
        if exp_avg.dtype == torch.bfloat16:
            noise = self._rounding_noise.draw(hi.numel(), hi.device)
            exp_avg, exp_avg_sq = exp_avg.view(torch.int16), exp_avg_sq.view(torch.int16)
        try:
            adamw_split_update(
                hi.detach().view(torch.int16), rem, grad, exp_avg, exp_avg_sq, scalars, noise, compiled=True
            )
        except Exception as exc:  # no compiler or Triton at run time: fall back, and say so
            if self._compiled_ran:  # it failed after working once: a real error, not a missing backend
                raise
            warnings.warn(f"compiled AdamW kernel unavailable ({exc!r}); using the eager update", stacklevel=2)
            self.kernel = "eager"
            self.kernel_fallback_reason = repr(exc)
            self._eager_step(hi, rem, grad, state, group, coef)
        else:
            self._compiled_ran = True

    def _finish_param(self, state):
        state.pop("_scalars", None)


class SplitSGD(SplitOptimizer):
    """SGD with (optionally Nesterov) momentum on split parameters.

    Matches ``torch.optim.SGD(momentum=..., foreach=False)`` bit for bit with
    fp32 states.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        max_grad_norm: float | None = None,
        state_dtype: torch.dtype = torch.float32,
        remainders: Mapping[Tensor, Tensor] | None = None,
        seed: int = 0,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        kernel: str = "auto",
        bucket_elements: int | None = None,
    ) -> None:
        if kernel == "compiled":
            raise ValueError("the compiled one-kernel update exists for AdamW only; SGD runs eager")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if momentum < 0 or weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and zero dampening")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError("max_grad_norm must be > 0")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            max_grad_norm=max_grad_norm,
        )
        super().__init__(
            params,
            defaults,
            state_dtype=state_dtype,
            remainders=remainders,
            seed=seed,
            chunk_elements=chunk_elements,
            kernel=kernel,
            bucket_elements=bucket_elements,
        )

    _state_tensor_keys = ("momentum_buffer",)

    def _bucket_key(self, state):
        return "momentum_buffer" in state

    def _prepare_state(self, p, state, group):
        state["_first"] = group["momentum"] != 0 and "momentum_buffer" not in state
        if state["_first"]:
            state["momentum_buffer"] = self._new_state(p)

    def _update_chunk(self, master, g, state, group, sl):
        momentum = group["momentum"]
        if group["weight_decay"] != 0:
            g = g.add(master, alpha=group["weight_decay"])
        if momentum != 0:
            if state["_first"]:
                buf = g.clone()  # torch: the first buffer is the gradient itself
            else:
                buf = self._load_state_chunk(state["momentum_buffer"], sl)
                buf.mul_(momentum).add_(g, alpha=1 - group["dampening"])
            if state["momentum_buffer"].dtype == torch.float32:
                state["momentum_buffer"][sl].copy_(buf)
                buf = state["momentum_buffer"][sl]
            if group["nesterov"]:
                g = g.add(buf, alpha=momentum)
            else:
                g = buf
            if state["momentum_buffer"].dtype != torch.float32:
                stored = buf.clone() if g is buf else buf
                self._store_state_chunk(state["momentum_buffer"], sl, stored)
        master.add_(g, alpha=-float(group["lr"]))
        return master

    def _finish_param(self, state):
        state.pop("_first", None)


def total_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in optimizer state tensors (remainders included)."""
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, Tensor):
                total += value.numel() * value.element_size()
    return total


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "SplitOptimizer",
    "SplitAdamW",
    "SplitSGD",
    "clip_grad_norm_per_param_",
    "per_param_clip_coef",
    "total_state_bytes",
    "count_parameters",
]
