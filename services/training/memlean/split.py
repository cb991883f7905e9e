"""Exact bf16 + int16 split of fp32 values.

An fp32 word is 32 bits: ``hi`` (top 16 bits, a bf16) and ``lo`` (bottom 16
bits).  Truncating would make the bf16 half a round-toward-zero cast, which
biases forward/backward.  We round to nearest instead (ties away from zero,
the ordinary cast rounds ties to even) and keep a *signed* remainder:

    hi = (bits + 0x8000) >> 16          # round-to-nearest on the magnitude
    lo = bits - (hi << 16)              # in [-0x8000, 0x7fff], fits int16

Because adding 0x8000 and subtracting it again only touches the low half,
``lo`` is simply the low 16 bits of ``bits`` read as a signed int16, so the
split costs one add, one shift and two narrowing copies.  Rebuilding is
``hi.float()`` (exact, puts ``hi`` in the top half) plus the sign-extended
remainder added as an integer.  The scheme is the one TransformerEngine's
``store_param_remainders`` uses.

All functions work on whole tensors with vectorised integer ops; they never
loop in Python over elements.
"""

from __future__ import annotations

import torch
from torch import Tensor

_ROUND_BIAS = 0x8000


def _check_fp32(x: Tensor) -> None:
    if x.dtype != torch.float32:
        raise TypeError(f"expected a float32 tensor, got {x.dtype}")


def split_into_(master: Tensor, hi: Tensor, lo: Tensor) -> None:
    """Write the split of fp32 ``master`` into bf16 ``hi`` and int16 ``lo`` in place.

    ``master`` may be overwritten (it is used as scratch space), which saves a
    full-size temporary in the optimizer step.
    """
    _check_fp32(master)
    if hi.dtype != torch.bfloat16 or lo.dtype != torch.int16:
        raise TypeError("hi must be bfloat16 and lo int16")
    bits = master.view(torch.int32)
    with torch.no_grad():
        lo.copy_(bits)  # int32 -> int16 copy keeps the low 16 bits
        bits.add_(_ROUND_BIAS).bitwise_right_shift_(16)
        hi.view(torch.int16).copy_(bits)


def split_fp32(master: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(hi, lo)``: the nearest bf16 to ``master`` and its int16 remainder."""
    _check_fp32(master)
    hi = torch.empty_like(master, dtype=torch.bfloat16)
    lo = torch.empty_like(master, dtype=torch.int16)
    split_into_(master.detach().clone(), hi, lo)
    return hi, lo


def rebuild_fp32(hi: Tensor, lo: Tensor, out: Tensor | None = None) -> Tensor:
    """Rebuild the exact fp32 value from its bf16 half and int16 remainder."""
    if hi.dtype != torch.bfloat16 or lo.dtype != torch.int16:
        raise TypeError("hi must be bfloat16 and lo int16")
    with torch.no_grad():
        if out is None:
            out = hi.detach().float()
        else:
            out.copy_(hi.detach())
        out.view(torch.int32).add_(lo)  # int16 promotes (sign-extended) to int32
    return out


def stochastic_round_to_bf16_(
    value: Tensor,
    target: Tensor,
    generator: torch.Generator | None = None,
    *,
    noise: Tensor | None = None,
) -> None:
    """Write fp32 ``value`` into bf16 ``target`` with stochastic rounding.

    Adding uniform noise in [0, 2^16) to the 16 bits that bf16 drops and then
    truncating rounds up with probability equal to the dropped fraction, so
    the stored value is unbiased in expectation.  Used for optimizer states
    kept in bf16; it is *not* exact.  ``value`` is used as scratch space.
    ``noise`` (int32 in [0, 2^16), ``value``'s size) may be supplied, e.g. by
    ``RoundingNoise``; otherwise it is drawn from ``generator``.  Infinities
    stay infinite; NaN payloads are not preserved.
    """
    _check_fp32(value)
    if target.dtype != torch.bfloat16:
        raise TypeError("target must be bfloat16")
    if noise is None:
        noise = torch.randint(
            0, 1 << 16, value.shape, dtype=torch.int32, device=value.device, generator=generator
        )
    bits = value.view(torch.int32)
    with torch.no_grad():
        bits.add_(noise.view(bits.shape))
        bits.bitwise_right_shift_(16)
        target.view(torch.int16).copy_(bits)


class RoundingNoise:
    """Cheap uniform 16-bit noise for stochastic rounding.

    Drawing a fresh random integer per element costs more than the rest of a
    bf16-state AdamW update.  Instead, a fixed pool of uniform values (made
    once from ``seed``) is read at a random offset and XOR-ed with a random
    16-bit mask per write.  Each element's noise is still uniform, so rounding
    stays unbiased; only the independence between elements is weaker.  Offsets
    and masks come from ``generator``, whose state a checkpoint saves, so runs
    resume exactly.
    """

    def __init__(self, seed: int, generator: torch.Generator, pool_size: int = 1 << 20) -> None:
        self.seed = seed
        self.generator = generator
        self.pool_size = pool_size
        self._pool: Tensor | None = None

    def draw(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        if self._pool is None or self._pool.numel() < 2 * n or self._pool.device != torch.device(device):
            size = max(self.pool_size, 2 * n)
            pool_gen = torch.Generator().manual_seed(self.seed ^ 0x5EED)
            self._pool = torch.randint(0, 1 << 16, (size,), dtype=torch.int32, generator=pool_gen).to(device)
        picks = torch.randint(0, 1 << 16, (2,), generator=self.generator).tolist()
        offset = picks[0] * (self._pool.numel() - n) // (1 << 16)
        return self._pool[offset : offset + n].bitwise_xor(picks[1])
