"""Where a bf16 training mode computes attention in fp32.

The modes that compute in bf16 (memlean's bf16 weights, amp's autocast) hand
``scaled_dot_product_attention`` bf16 queries, keys and values.  On a GPU
that is what flash attention is built for.  On a CPU it is the slow path:
PyTorch's CPU flash-attention kernel in bf16, backward above all, ran 2.6-4x
slower than the same kernel in fp32 on an Intel Xeon with AMX (a zoo UNet,
batch 32, 256 tokens, head size 8-16; README, Training), enough to make the
whole bf16 step slower than an fp32 one.  Computing the attention core in fp32
(the ``upcast_attention`` of Stable Diffusion 2, for stability there) costs
two casts per call and is also the more accurate choice.

Only the attention core changes: the projections around it stay in bf16 and
the weights stay split.  The switch is a ``TorchFunctionMode`` rather than an
attention processor, so it covers any denoiser (UNet, DiT, the processors a
model brings) that calls PyTorch's SDPA, without copying diffusers' processors.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch.overrides import TorchFunctionMode

ATTENTION_PRECISIONS = ("auto", "fp32", "bf16")
_LOW_PRECISION = (torch.bfloat16, torch.float16)


def resolve_attention_precision(choice: str, device: torch.device | str) -> str:
    """``auto`` -> fp32 on a CPU (its bf16 kernel is the slow one), bf16 elsewhere."""
    if choice not in ATTENTION_PRECISIONS:
        raise ValueError(f"unknown attention_precision {choice!r}; expected one of {ATTENTION_PRECISIONS}")
    if choice != "auto":
        return choice
    return "fp32" if torch.device(device).type == "cpu" else "bf16"


class Fp32Attention(TorchFunctionMode):
    """Inside this context, SDPA on bf16/fp16 inputs runs in fp32 and returns the input dtype.

    Autograd records the casts, so the backward is fp32 attention too.  Autocast
    is switched off for the inner call, or amp would cast the inputs back down.
    Gradient checkpointing recomputes the forward inside backward, outside this
    context: ``checkpoint_function`` gives the recomputation the same precision.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            query = args[0] if args else kwargs["query"]
            if query.dtype in _LOW_PRECISION:
                return _sdpa_in_fp32(func, query.dtype, args, kwargs)
        return func(*args, **kwargs)


def _sdpa_in_fp32(func, dtype: torch.dtype, args: tuple, kwargs: dict) -> torch.Tensor:
    def up(value):
        if isinstance(value, torch.Tensor) and value.dtype in _LOW_PRECISION:
            return value.float()
        return value

    args = tuple(up(a) for a in args)
    kwargs = {k: up(v) for k, v in kwargs.items()}
    device_type = args[0].device.type if args else kwargs["query"].device.type
    with torch.autocast(device_type, enabled=False):
        return func(*args, **kwargs).to(dtype)


def attention_context(precision: str) -> AbstractContextManager:
    """The context a bf16 forward runs in for a resolved precision (``fp32`` or ``bf16``)."""
    return Fp32Attention() if precision == "fp32" else nullcontext()


def checkpoint_function(precision: str):
    """A ``gradient_checkpointing_func`` for diffusers' ``enable_gradient_checkpointing`` whose
    recomputation runs in ``attention_context(precision)``, as the forward did (torch's
    ``context_fn`` hook: one context for the forward, one for the recomputation)."""

    def checkpointed(module, *args):
        return torch.utils.checkpoint.checkpoint(
            module.__call__, *args, use_reentrant=False,
            context_fn=lambda: (nullcontext(), attention_context(precision)),
        )

    return checkpointed


__all__ = [
    "ATTENTION_PRECISIONS", "Fp32Attention", "attention_context", "checkpoint_function",
    "resolve_attention_precision",
]
