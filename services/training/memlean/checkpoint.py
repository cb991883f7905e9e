"""Moving between ordinary fp32 modules and split (bf16 + remainder) ones.

* ``split_module_`` casts a module to bf16 in place and returns the int16
  remainders of its trainable parameters, so no bit of the fp32 values is lost.
* ``export_fp32_state_dict`` rebuilds an ordinary fp32 state dict (what
  diffusers' ``save_pretrained`` needs) from a split module and its optimizer.
* ``load_fp32_state_dict_`` splits an fp32 checkpoint into a split module
  exactly.

Frozen parameters and buffers are cast to bf16 without a remainder (they are
never updated, and forward needs one dtype); exporting gives them back as the
upcast bf16 value.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .optim import SplitOptimizer
from .split import split_fp32


def split_module_(module: nn.Module) -> dict[Tensor, Tensor]:
    """Cast ``module`` to bf16 in place; return {trainable parameter: int16 remainder}.

    Works parameter by parameter, so the extra memory is one fp32 tensor at a time.
    """
    remainders: dict[Tensor, Tensor] = {}
    for p in module.parameters():
        if p.dtype != torch.float32:
            raise TypeError(f"split_module_ expects an fp32 module, found a {p.dtype} parameter")
        hi, lo = split_fp32(p.data)
        p.data = hi
        if p.requires_grad:
            remainders[p] = lo
    for name, buf in module.named_buffers():
        if buf.is_floating_point():
            owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
            owner._buffers[name.rpartition(".")[2]] = buf.to(torch.bfloat16)
    return remainders


def export_fp32_state_dict(module: nn.Module, optimizer: SplitOptimizer) -> dict[str, Tensor]:
    """Ordinary fp32 state dict of a split module: trainable weights rebuilt exactly."""
    out: dict[str, Tensor] = {}
    for name, value in module.state_dict().items():
        out[name] = value.float() if value.is_floating_point() else value.clone()
    for name, p in module.named_parameters():
        if p in optimizer.state and "remainder" in optimizer.state[p]:
            out[name] = optimizer.master_fp32(p)
    return out


def load_fp32_state_dict_(
    module: nn.Module, optimizer: SplitOptimizer, state_dict: Mapping[str, Tensor]
) -> None:
    """Load an fp32 state dict into a split module, splitting trainable weights exactly."""
    params = dict(module.named_parameters())
    expected = set(module.state_dict().keys())
    missing = expected - set(state_dict)
    unexpected = set(state_dict) - expected
    if missing or unexpected:
        raise KeyError(
            f"state dict mismatch: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    rest: dict[str, Tensor] = {}
    for name, value in state_dict.items():
        p = params.get(name)
        if p is not None and p in optimizer.state and "remainder" in optimizer.state[p]:
            optimizer.set_master_fp32_(p, value.float())
        else:
            rest[name] = value
    own = module.state_dict()
    with torch.no_grad():
        for name, value in rest.items():
            own[name].copy_(value)
