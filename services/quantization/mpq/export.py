"""Real export: packed integer weights + scales in safetensors, and loading back into a working model.

Layout of an artifact directory:
  quantized.safetensors  {layer}.qweight (uint8: int8 codes at 8 bits, bit-packed below),
                         {layer}.scale (float32 per output channel), and every other denoiser
                         tensor (biases, norms, embeddings) in float32 under rest.{key};
                         metadata "mpq" = JSON with bits, shapes, activation ranges, timestep groups.
  base/                  the bundle's configs, scheduler and text encoder/tokenizer (no denoiser weights).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy

from .calibrate import TimestepGroups, target_layers
from .quantizers import ActRange, QuantizedWeight, pack_codes, unpack_codes
from .simulate import QuantSpec, apply_quantization

FORMAT = "atelier-mpq"
WEIGHTS_FILE = "quantized.safetensors"
BASE_DIR = "base"
_KIND_SUBFOLDER = {"unet2d": "unet", "unet2d-condition": "unet", "dit": "transformer"}


def export_quantized(bundle, spec: QuantSpec, artifact_dir: Path) -> dict:
    """Write the artifact; returns {"path", "bytes_on_disk" (weights file), "artifact_bytes" (all files)}."""
    artifact_dir = Path(artifact_dir)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    base = artifact_dir / BASE_DIR
    bundle.save(base)
    # the FP denoiser weights are replaced by quantized.safetensors: drop them from the base copy
    for f in (base / _KIND_SUBFOLDER[bundle.kind]).glob("diffusion_pytorch_model*"):
        f.unlink()
    tensors: dict[str, np.ndarray] = {}
    layers_meta = {}
    for name, q in spec.weights.items():
        tensors[f"{name}.qweight"] = pack_codes(q.codes, q.bits)
        tensors[f"{name}.scale"] = q.scale.to(torch.float32).cpu().numpy()
        layers_meta[name] = {"bits": q.bits, "shape": list(q.codes.shape)}
    quantized_keys = {f"{n}.weight" for n in spec.weights}
    for key, value in bundle.denoiser.state_dict().items():
        if key not in quantized_keys:
            tensors[f"rest.{key}"] = value.detach().to(torch.float32).cpu().numpy()
    acts = {
        name: [None if a is None else {"bits": a.bits, "lo": a.lo, "hi": a.hi} for a in per_group]
        for name, per_group in spec.acts.items()
    }
    meta = {"format": FORMAT, "version": 1, "kind": bundle.kind, "layers": layers_meta, "acts": acts,
            "groups": spec.groups.to_dict()}
    path = artifact_dir / WEIGHTS_FILE
    save_numpy(tensors, str(path), metadata={"mpq": json.dumps(meta)})
    total = sum(f.stat().st_size for f in artifact_dir.rglob("*") if f.is_file())
    return {"path": str(artifact_dir), "bytes_on_disk": os.path.getsize(path), "artifact_bytes": total}


def read_spec(artifact_dir: Path) -> tuple[QuantSpec, dict[str, np.ndarray], dict]:
    """Parse quantized.safetensors into a QuantSpec, the remaining tensors, and the metadata."""
    from safetensors import safe_open

    path = Path(artifact_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_FILE} in {artifact_dir}")
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["mpq"])
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT} artifact")
    arrays = load_numpy(str(path))
    weights = {}
    for name, info in meta["layers"].items():
        codes = unpack_codes(arrays[f"{name}.qweight"], info["bits"], tuple(info["shape"]))
        weights[name] = QuantizedWeight(codes=codes, scale=torch.from_numpy(arrays[f"{name}.scale"].copy()),
                                        bits=info["bits"])
    acts = {name: [None if a is None else ActRange(a["bits"], a["lo"], a["hi"]) for a in per_group]
            for name, per_group in meta["acts"].items()}
    rest = {k[len("rest."):]: v for k, v in arrays.items() if k.startswith("rest.")}
    return QuantSpec(weights=weights, acts=acts, groups=TimestepGroups.from_dict(meta["groups"])), rest, meta


def load_quantized(artifact_dir, *, device: str = "cpu", kernels: bool = False):
    """Rebuild a working DiffusionBundle from an export: architecture from base/, weights dequantized
    from the packed codes, activation quantizers installed (bundle.quant_handle keeps their hooks).
    kernels=True additionally applies torchao kernels where a bit-width has one (optional dependency;
    bundle.kernel_plan lists the layers)."""
    from diffusers import DDPMScheduler

    from services.common.diffusion import DiffusionBundle
    from services.common.diffusion.tiny import DENOISER_CLASSES

    artifact_dir = Path(artifact_dir)
    spec, rest, meta = read_spec(artifact_dir)
    base = artifact_dir / BASE_DIR
    kind = meta["kind"]
    folder = base / _KIND_SUBFOLDER[kind]
    cls = DENOISER_CLASSES[kind]
    denoiser = cls.from_config(cls.load_config(folder))
    layers = target_layers(denoiser)
    missing = set(spec.weights) - set(layers)
    if missing:
        raise ValueError(f"artifact names layers the architecture lacks: {sorted(missing)[:5]}")
    state = {k: torch.from_numpy(v.copy()) for k, v in rest.items()}
    result = denoiser.load_state_dict(state, strict=False)
    expected_missing = {f"{n}.weight" for n in spec.weights}
    if set(result.missing_keys) != expected_missing or result.unexpected_keys:
        raise ValueError(f"artifact does not match the architecture: missing {sorted(set(result.missing_keys) - expected_missing)[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
    denoiser.eval()
    text_encoder = tokenizer = None
    if (base / "text_encoder").is_dir():
        from transformers import CLIPTextModel, CLIPTokenizer

        text_encoder = CLIPTextModel.from_pretrained(base / "text_encoder", local_files_only=True).eval()
        tokenizer = CLIPTokenizer.from_pretrained(str(base / "tokenizer"), local_files_only=True)
    info = json.loads((base / "atelier.json").read_text())
    bundle = DiffusionBundle(
        denoiser=denoiser,
        scheduler=DDPMScheduler.from_pretrained(base / "scheduler"),
        kind=kind,
        sample_size=int(info["sample_size"]),
        in_channels=int(info["in_channels"]),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )
    bundle.quant_handle = apply_quantization(denoiser, spec)
    bundle.quant_spec = spec
    bundle.to(device)
    bundle.kernel_plan = {}
    if kernels:
        from .kernels import apply_torchao_kernels

        bundle.kernel_plan = apply_torchao_kernels(denoiser, spec.weight_bits, device=str(device))
    return bundle
