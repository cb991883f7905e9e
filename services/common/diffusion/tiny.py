"""Tiny random-init pixel-space diffusion models (the three denoiser families Atelier supports).

Configs follow diffusers' own test fixtures (get_dummy_components): real architectures, shrunk to a
few hundred thousand parameters at 16x16 so CPU tests and benchmarks run in seconds.
"""
from __future__ import annotations

import copy

import torch
from diffusers import AutoencoderKL, DDPMScheduler, PixArtTransformer2DModel, UNet2DConditionModel, UNet2DModel
from transformers import CLIPTextConfig, CLIPTextModel

from .tokenizer import DEFAULT_MAX_LENGTH, build_offline_tokenizer

TINY_KINDS = ("unet2d", "unet2d-condition", "dit")
DENOISER_CLASSES = {
    "unet2d": UNet2DModel,
    "unet2d-condition": UNet2DConditionModel,
    "dit": PixArtTransformer2DModel,
}

_BASE: dict[str, dict] = {
    "unet2d": {
        "sample_size": 16,
        "in_channels": 3,
        "out_channels": 3,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
        "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": 16,
    },
    "unet2d-condition": {
        "sample_size": 16,
        "in_channels": 3,
        "out_channels": 3,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": 8,
        "cross_attention_dim": 32,  # = text encoder hidden size (kept in sync below)
    },
    "dit": {
        "sample_size": 16,
        "in_channels": 3,
        "out_channels": 3,  # no learned variance: the model predicts epsilon only
        "patch_size": 2,
        "num_attention_heads": 2,
        "attention_head_dim": 32,
        "num_layers": 3,
        "cross_attention_dim": 64,  # = inner dim; captions are projected to it
        "caption_channels": 32,  # = text encoder hidden size (kept in sync below)
        "norm_num_groups": 8,
        "use_additional_conditions": False,
    },
}

_TEXT_ENCODER = {
    "vocab_size": None,  # filled from the offline tokenizer
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "max_position_embeddings": DEFAULT_MAX_LENGTH,
    "projection_dim": 32,
    "layer_norm_eps": 1e-5,
}

_VAE = {  # diffusers' dummy AutoencoderKL: one 2x downsampling, 4 latent channels
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (32, 64),
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
}

_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",  # cosine: better than linear at tiny resolutions
    "prediction_type": "epsilon",
    "clip_sample": True,
}


def tiny_config(kind: str, *, latent: bool = False, **overrides) -> dict:
    """{"denoiser", "scheduler", "text_encoder", "tokenizer", "vae"} config dicts (None where absent).

    Overrides apply to the denoiser config; pass `scheduler={...}` / `text_encoder={...}` /
    `tokenizer={...}` / `vae={...}` dicts to change those parts. Cross-attention sizes follow the text
    encoder. latent=True adds a tiny VAE: the denoiser then works on 4-channel latents at half the
    image side (`sample_size` still names the image side here).
    """
    if kind not in _BASE:
        raise ValueError(f"unknown tiny kind {kind!r}; expected one of {TINY_KINDS}")
    scheduler_over = overrides.pop("scheduler", None) or {}
    text_over = overrides.pop("text_encoder", None) or {}
    tok_over = overrides.pop("tokenizer", None) or {}
    vae_over = overrides.pop("vae", None) or {}
    denoiser = copy.deepcopy(_BASE[kind])
    allowed = set(_init_arg_names(DENOISER_CLASSES[kind]))
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(f"unknown {kind} config keys: {sorted(unknown)}")
    denoiser.update(overrides)
    vae = None
    if latent:
        vae = {**_VAE, "sample_size": denoiser["sample_size"], **vae_over}
        factor = 2 ** (len(vae["block_out_channels"]) - 1)
        if denoiser["sample_size"] % factor:
            raise ValueError(f"sample_size {denoiser['sample_size']} is not divisible by the VAE factor {factor}")
        denoiser["sample_size"] //= factor
        denoiser["in_channels"] = vae["latent_channels"]
    if "out_channels" not in overrides:
        denoiser["out_channels"] = denoiser["in_channels"]

    conditional = kind != "unet2d"
    tokenizer_cfg = {"model_max_length": DEFAULT_MAX_LENGTH, **tok_over}
    text_encoder = None
    if conditional:
        text_encoder = {**_TEXT_ENCODER, "max_position_embeddings": tokenizer_cfg["model_max_length"], **text_over}
        hidden = text_encoder["hidden_size"]
        if kind == "unet2d-condition":
            denoiser["cross_attention_dim"] = hidden
        else:
            denoiser["caption_channels"] = hidden
            denoiser["cross_attention_dim"] = denoiser["num_attention_heads"] * denoiser["attention_head_dim"]
    return {
        "kind": kind,
        "denoiser": denoiser,
        "scheduler": {**_SCHEDULER, **scheduler_over},
        "text_encoder": text_encoder,
        "tokenizer": tokenizer_cfg if conditional else None,
        "vae": vae,
    }


def _init_arg_names(cls) -> list[str]:
    import inspect

    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def build_tiny(kind: str, *, seed: int = 0, latent: bool = False, **overrides):
    """Random-init tiny bundle; identical weights for the same (kind, seed, latent, overrides)."""
    from .bundle import DiffusionBundle

    cfg = tiny_config(kind, latent=latent, **overrides)
    rng_state = torch.random.get_rng_state()
    try:
        # Seed only around construction so callers' global RNG stream is left as it was.
        torch.manual_seed(seed)
        denoiser = DENOISER_CLASSES[kind](**cfg["denoiser"])
        text_encoder = tokenizer = None
        if cfg["text_encoder"] is not None:
            tokenizer = build_offline_tokenizer(model_max_length=cfg["tokenizer"]["model_max_length"])
            te_cfg = dict(cfg["text_encoder"])
            te_cfg["vocab_size"] = te_cfg["vocab_size"] or len(tokenizer)
            te_cfg.setdefault("bos_token_id", tokenizer.bos_token_id)
            te_cfg.setdefault("eos_token_id", tokenizer.eos_token_id)
            te_cfg.setdefault("pad_token_id", tokenizer.pad_token_id)
            text_encoder = CLIPTextModel(CLIPTextConfig(**te_cfg))
        vae = AutoencoderKL(**cfg["vae"]).eval() if cfg["vae"] is not None else None
    finally:
        torch.random.set_rng_state(rng_state)
    denoiser.eval()
    if text_encoder is not None:
        text_encoder.eval()
    return DiffusionBundle(
        denoiser=denoiser,
        scheduler=DDPMScheduler(**cfg["scheduler"]),
        kind=kind,
        sample_size=cfg["denoiser"]["sample_size"],
        in_channels=cfg["denoiser"]["in_channels"],
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        vae=vae,
    )
