"""Weight and activation quantizers (simulated) and b-bit packing for export.

Weights: per output channel, symmetric (zero point 0), signed codes in [-2^(b-1), 2^(b-1) - 1],
scale = alpha * max|w| / (2^(b-1) - 1) with alpha chosen per channel by a grid search that
minimises the channel's squared error (clipping trades range for resolution).
Activations: per tensor, asymmetric (scale + integer zero point), range chosen on calibration
samples by shrinking [min, max] to minimise squared error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

CLIP_GRID = torch.linspace(0.2, 1.0, 41)


@dataclass
class QuantizedWeight:
    codes: torch.Tensor  # int16 signed codes, same shape as the weight
    scale: torch.Tensor  # float32, one per output channel
    bits: int

    def dequantize(self) -> torch.Tensor:
        shape = (-1,) + (1,) * (self.codes.dim() - 1)
        return self.codes.to(torch.float32) * self.scale.reshape(shape)


def _signed_range(bits: int) -> tuple[int, int]:
    if not 2 <= bits <= 8:
        raise ValueError(f"weight bit-width must be in 2..8, got {bits}")
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def quantize_weight(weight: torch.Tensor, bits: int, *, clip_search: bool = True) -> QuantizedWeight:
    """Per-output-channel symmetric quantization with an MSE-minimising clipping search."""
    qmin, qmax = _signed_range(bits)
    w = weight.detach().to(torch.float32).reshape(weight.shape[0], -1)
    absmax = w.abs().amax(1).clamp_min(1e-12)
    ratios = (CLIP_GRID if clip_search else torch.ones(1)).to(w.device)
    # candidates x channels: error of each clipping ratio, evaluated for all channels at once
    scales = ratios[:, None] * absmax[None, :] / qmax
    errors = []
    for s in scales:
        q = torch.clamp(torch.round(w / s[:, None]), qmin, qmax)
        errors.append(((q * s[:, None] - w) ** 2).sum(1))
    best = torch.stack(errors).argmin(0)
    scale = scales[best, torch.arange(w.shape[0])]
    codes = torch.clamp(torch.round(w / scale[:, None]), qmin, qmax).to(torch.int16)
    return QuantizedWeight(codes=codes.reshape(weight.shape), scale=scale.contiguous(), bits=bits)


def weight_relative_error(weight: torch.Tensor, bits: int) -> float:
    """||W - Q_b(W)||^2 / ||W||^2 with the clipped quantizer: a data-free error proxy."""
    q = quantize_weight(weight, bits).dequantize()
    w = weight.detach().to(torch.float32)
    return float(((q - w) ** 2).sum() / (w**2).sum().clamp_min(1e-30))


@dataclass
class ActRange:
    """Asymmetric per-tensor activation quantizer: x -> clamp(round(x/scale) + zp, 0, 2^b-1)."""

    bits: int
    lo: float
    hi: float

    def params(self) -> tuple[float, float, int]:
        levels = 2**self.bits - 1
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)  # keep 0 exactly representable (padding)
        scale = max((hi - lo) / levels, 1e-12)
        zero_point = int(round(-lo / scale))
        return scale, float(zero_point), levels

    def fake_quant(self, x: torch.Tensor) -> torch.Tensor:
        scale, zp, levels = self.params()
        q = torch.clamp(torch.round(x / scale) + zp, 0, levels)
        return ((q - zp) * scale).to(x.dtype)


def calibrate_act_range(samples: torch.Tensor, bits: int, *, search: bool = True) -> ActRange:
    """Choose [lo, hi] for `bits` on calibration samples by an MSE search over shrink ratios."""
    x = samples.detach().reshape(-1).to(torch.float32)
    lo, hi = float(x.min()), float(x.max())
    if bits >= 16 or not search:
        return ActRange(bits, lo, hi)
    best, best_err = ActRange(bits, lo, hi), float("inf")
    for ratio in torch.linspace(0.3, 1.0, 15).tolist():
        cand = ActRange(bits, lo * ratio, hi * ratio)
        err = float(((cand.fake_quant(x) - x) ** 2).mean())
        if err < best_err:
            best, best_err = cand, err
    return best


def act_relative_error(samples: torch.Tensor, act: ActRange) -> float:
    x = samples.detach().reshape(-1).to(torch.float32)
    return float(((act.fake_quant(x) - x) ** 2).sum() / (x**2).sum().clamp_min(1e-30))


def pack_codes(codes: torch.Tensor, bits: int) -> np.ndarray:
    """Pack signed b-bit codes (b <= 8) into a little-endian bit stream of uint8."""
    qmin, _ = _signed_range(bits)
    unsigned = (codes.reshape(-1).to(torch.int16).cpu() - qmin).numpy().astype(np.uint8)
    if bits == 8:
        return unsigned
    bit_planes = (unsigned[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(bit_planes.reshape(-1), bitorder="little")


def unpack_codes(packed: np.ndarray, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of pack_codes: returns int16 signed codes of the given shape."""
    qmin, _ = _signed_range(bits)
    count = int(np.prod(shape))
    if bits == 8:
        unsigned = packed[:count].astype(np.int16)
    else:
        flat_bits = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits)
        unsigned = (flat_bits.astype(np.int16) << np.arange(bits, dtype=np.int16)).sum(1)
    return torch.from_numpy((unsigned + qmin).astype(np.int16)).reshape(shape)
