"""Optimizer step fused into backward.

Each trainable parameter gets a ``register_post_accumulate_grad_hook``: as
soon as autograd has finished its gradient, the hook runs that parameter's
update and drops the gradient, so at most a few gradients are alive at any
time instead of a full set.

Consequences, handled explicitly rather than silently:

* Global-norm clipping needs every gradient before the first update, which a
  single backward pass cannot provide.  Asking for it raises
  ``FusedClippingError``; per-parameter clipping (the optimizer's
  ``max_grad_norm``) is the supported alternative.
* Gradient accumulation: on micro-batches before the last, the hook adds the
  gradient into an fp32 accumulation buffer (4 bytes per parameter while
  accumulating) and frees the bf16 gradient; on the last micro-batch it adds
  the final gradient and steps.  The driver counts micro-batches, and
  ``optimizer.step()`` raises if called before the last one, so a step can
  never silently happen on every micro-batch.
* LR schedulers: the hooks read ``group["lr"]``, which does not change during
  a backward pass; ``optimizer.step()`` closes the step (the optimizer's one
  shared step counter) and the scheduler is stepped after it as usual.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .optim import SplitOptimizer


class FusedClippingError(ValueError):
    """Global-norm gradient clipping was requested together with a fused backward."""


class FusedBackward:
    """Run ``optimizer``'s per-parameter updates inside backward.

    Usage::

        fused = FusedBackward(optimizer, accumulation_steps=2)
        for micro_batch in micro_batches:
            fused.backward(loss_fn(micro_batch) / 2)
        optimizer.step()      # closes the step; no parameter work left
        scheduler.step()
    """

    def __init__(
        self,
        optimizer: SplitOptimizer,
        *,
        accumulation_steps: int = 1,
        global_clip_norm: float | None = None,
    ) -> None:
        if global_clip_norm is not None:
            raise FusedClippingError(
                "global-norm gradient clipping is impossible with the optimizer step fused into "
                "backward: each parameter is updated before the other gradients exist. Use "
                "per-parameter clipping (max_grad_norm on the optimizer) or a non-fused mode."
            )
        if accumulation_steps < 1:
            raise ValueError("accumulation_steps must be >= 1")
        if optimizer._fused_driver is not None:
            raise RuntimeError("this optimizer already has a fused backward attached")
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self._micro_batch = 0  # micro-batches finished in the current step
        self._in_backward = False
        self._is_last = False
        self._accumulated: dict[Tensor, Tensor] = {}
        self._handles = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.requires_grad:
                    self._handles.append(p.register_post_accumulate_grad_hook(self._on_grad_ready))
        optimizer._fused_driver = self

    @property
    def micro_batch(self) -> int:
        """Micro-batches already back-propagated in the current optimizer step."""
        return self._micro_batch

    def backward(self, loss: Tensor, **kwargs: Any) -> bool:
        """Back-propagate one micro-batch; returns True when it was the last one.

        On the last micro-batch every parameter with a gradient has been
        updated when this returns; call ``optimizer.step()`` next.
        """
        if self._micro_batch >= self.accumulation_steps:
            raise RuntimeError(
                "all micro-batches of this step are done: call optimizer.step() before the next"
            )
        self._is_last = self._micro_batch == self.accumulation_steps - 1
        self._in_backward = True
        try:
            loss.backward(**kwargs)
            if self._is_last:
                self.optimizer.flush()  # updates of bucketed small parameters still pending
        finally:
            self._in_backward = False
        self._micro_batch += 1
        return self._is_last

    @torch.no_grad()
    def _on_grad_ready(self, p: Tensor) -> None:
        if not self._in_backward:
            raise RuntimeError(
                "a fused optimizer is attached: back-propagate through FusedBackward.backward(loss) "
                "so that micro-batches are counted"
            )
        grad = p.grad
        p.grad = None
        pending = self._accumulated.pop(p, None)
        if pending is not None:
            pending.add_(grad)
            grad = pending
        if self._is_last:
            self.optimizer.step_param(p, grad)
        else:
            self._accumulated[p] = grad.to(torch.float32, copy=pending is None)

    def finish_step(self) -> None:
        """Called by ``optimizer.step()``: checks that the step is complete."""
        if self._micro_batch != self.accumulation_steps:
            raise RuntimeError(
                f"optimizer.step() after {self._micro_batch} of {self.accumulation_steps} "
                "micro-batches: in fused mode the step happens during the last micro-batch's "
                "backward"
            )
        self._micro_batch = 0

    def remove(self) -> None:
        """Detach the hooks; the optimizer goes back to ordinary ``step()``."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._accumulated.clear()
        self.optimizer._fused_driver = None
