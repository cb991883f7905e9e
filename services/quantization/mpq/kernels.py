"""Optional real low-bit kernels through torchao, per module, wherever a bit-width has a torchao config.

Never required: everything else in mpq works with simulated (dequantized) weights. torchao requantizes
the already-quantized weights with its own per-channel/group scheme, so outputs are close to the
simulated model's, not bit-identical. Mapping (Linear layers only; torchao has no Conv2d configs):
  8 bits -> Int8WeightOnlyConfig (CPU and CUDA)
  4 bits -> Int4WeightOnlyConfig(group_size=32) in torch's own tinygemm layout (CUDA only): torchao's
            default int4 layout needs the separate `mslk` kernel package. The layer runs in bfloat16, its
            input cast down and its output cast back by hooks, so the rest of the model keeps its dtype.
Other bit-widths and all Conv2d layers stay simulated.
"""
from __future__ import annotations

import importlib.util

import torch
from torch import nn

from .calibrate import target_layers


def torchao_available() -> bool:
    return importlib.util.find_spec("torchao") is not None


def torchao_plan(denoiser: nn.Module, weight_bits: dict[str, int], device: str) -> dict[str, str]:
    """Which layers get which torchao config on `device` ({layer: config name})."""
    layers = target_layers(denoiser)
    plan = {}
    for name, bits in weight_bits.items():
        layer = layers[name]
        if not isinstance(layer, nn.Linear):
            continue
        if bits == 8:
            plan[name] = "Int8WeightOnlyConfig"
        elif bits == 4 and device.startswith("cuda") and layer.in_features % 32 == 0:
            plan[name] = "Int4WeightOnlyConfig"
    return plan


def apply_torchao_kernels(denoiser: nn.Module, weight_bits: dict[str, int], *, device: str = "cpu") -> dict[str, str]:
    """Swap the weights of eligible layers for torchao quantized tensors in place; returns the plan.
    Module objects (and so activation-quantizer hooks) are kept."""
    if not torchao_available():
        raise RuntimeError("torchao is not installed: the kernel path is optional (pip install torchao)")
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    plan = torchao_plan(denoiser, weight_bits, device)
    configs = {"Int8WeightOnlyConfig": Int8WeightOnlyConfig, "Int4WeightOnlyConfig": _int4_config}
    layers = target_layers(denoiser)
    for config_name, make_config in configs.items():
        names = {n for n, c in plan.items() if c == config_name}
        if not names:
            continue
        if config_name == "Int4WeightOnlyConfig":
            for n in names:
                _run_in_bfloat16(layers[n])
        quantize_(denoiser, make_config(), filter_fn=lambda module, fqn, names=names: fqn in names)
    return plan


def _int4_config():
    from torchao.quantization import Int4WeightOnlyConfig

    try:
        return Int4WeightOnlyConfig(group_size=32, int4_packing_format="tile_packed_to_4d")
    except TypeError:  # older torchao: tinygemm is its only int4 layout and there is no such argument
        return Int4WeightOnlyConfig(group_size=32)


def _run_in_bfloat16(layer: nn.Linear) -> None:
    """The int4 kernel takes bfloat16 weights and inputs: convert the layer, cast its input down before
    it (after any activation quantizer, registered earlier) and its output back to the model's dtype."""
    model_dtype = layer.weight.dtype
    layer.to(torch.bfloat16)

    def cast_input(module, args):
        return tuple(a.to(torch.bfloat16) if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    def cast_output(module, args, output):
        return output.to(model_dtype)

    layer.register_forward_pre_hook(cast_input)
    layer.register_forward_hook(cast_output)
