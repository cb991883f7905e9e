"""Simulated (fake) quantization of a denoiser: dequantized weights in place + activation hooks.

Weights are replaced by codes * scale (float32), exactly what an export dequantizes to, so the
simulated and the exported/reloaded model give identical outputs. Activation quantizers are forward
pre-hooks on each layer; with timestep groups a pre-hook on the denoiser picks the group from the
timestep it is called with (the first sample's timestep decides for the whole batch).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .calibrate import TimestepGroups, denoiser_timestep, target_layers
from .quantizers import ActRange, QuantizedWeight


@dataclass
class QuantSpec:
    """Everything needed to quantize a denoiser: per-layer weights and per-group activation ranges."""

    weights: dict[str, QuantizedWeight]
    acts: dict[str, list[ActRange | None]]  # per layer, one entry per timestep group (None = FP)
    groups: TimestepGroups

    @property
    def weight_bits(self) -> dict[str, int]:
        return {n: q.bits for n, q in self.weights.items()}


@dataclass
class QuantHandle:
    handles: list = field(default_factory=list)
    state: dict = field(default_factory=lambda: {"group": 0})

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def install_act_quantizers(denoiser: nn.Module, acts: dict[str, list[ActRange | None]], groups: TimestepGroups) -> QuantHandle:
    layers = target_layers(denoiser)
    unknown = set(acts) - set(layers)
    if unknown:
        raise ValueError(f"unknown layer names: {sorted(unknown)}")
    handle = QuantHandle()
    state = handle.state

    def set_group(module, args, kwargs):
        t = denoiser_timestep(args, kwargs)
        state["group"] = groups.group_of_timestep(t) if t is not None else 0
        return None

    handle.handles.append(denoiser.register_forward_pre_hook(set_group, with_kwargs=True))
    for name, per_group in acts.items():
        def pre(module, inputs, per_group=per_group):
            act = per_group[min(state["group"], len(per_group) - 1)]
            if act is None:
                return None
            return (act.fake_quant(inputs[0]),) + tuple(inputs[1:])

        handle.handles.append(layers[name].register_forward_pre_hook(pre))
    return handle


@torch.no_grad()
def set_weights(denoiser: nn.Module, weights: dict[str, QuantizedWeight]) -> None:
    layers = target_layers(denoiser)
    unknown = set(weights) - set(layers)
    if unknown:
        raise ValueError(f"unknown layer names: {sorted(unknown)}")
    for name, q in weights.items():
        w = layers[name].weight
        w.copy_(q.dequantize().to(w.dtype))


def apply_quantization(denoiser: nn.Module, spec: QuantSpec) -> QuantHandle:
    """Quantize `denoiser` in place (weights) and install activation quantizers; returns the hooks' handle."""
    set_weights(denoiser, spec.weights)
    return install_act_quantizers(denoiser, spec.acts, spec.groups)
