"""DiffusionBundle: one denoiser + noise scheduler (+ text encoder/tokenizer), and loading by reference."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, PixArtTransformer2DModel, UNet2DConditionModel, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin

BUNDLE_META = "atelier.json"
BUNDLE_FORMAT = "atelier-diffusion-bundle"
_CLASS_TO_KIND = {
    "UNet2DModel": "unet2d",
    "UNet2DConditionModel": "unet2d-condition",
    "PixArtTransformer2DModel": "dit",
}
_KIND_TO_CLASS = {
    "unet2d": UNet2DModel,
    "unet2d-condition": UNet2DConditionModel,
    "dit": PixArtTransformer2DModel,
}
MAX_PROMPT_TOKENS = 512
_KIND_TO_SUBFOLDER = {"unet2d": "unet", "unet2d-condition": "unet", "dit": "transformer"}


class ModelRefError(ValueError):
    """A model reference that cannot be resolved or read (services map this to a 4xx)."""


@dataclass(eq=False)
class DiffusionBundle:
    denoiser: torch.nn.Module
    scheduler: SchedulerMixin
    kind: str
    sample_size: int
    in_channels: int
    text_encoder: torch.nn.Module | None = None
    tokenizer: Any | None = None
    vae: Any | None = None  # AutoencoderKL for latent models; None: the denoiser works on pixels

    @property
    def conditional(self) -> bool:
        return self.text_encoder is not None

    @property
    def vae_scale_factor(self) -> int:
        return _vae_factor(self.vae.config) if self.vae is not None else 1

    @property
    def image_channels(self) -> int:
        """Channels of the images it trains on and generates (the VAE's for a latent model)."""
        return int(self.vae.config.in_channels) if self.vae is not None else self.in_channels

    @property
    def image_size(self) -> int:
        """Side of the images this bundle generates / trains on (sample_size is the denoiser's input side)."""
        return self.sample_size * self.vae_scale_factor

    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixels in [-1, 1] -> the denoiser's space (scaled VAE latents; identity for pixel models).

        Uses the posterior mode unless a generator is given, then a posterior sample.
        """
        if self.vae is None:
            return images
        vae_dtype = next(self.vae.parameters()).dtype
        dist = self.vae.encode(images.to(vae_dtype)).latent_dist
        latents = dist.sample(generator) if generator is not None else dist.mode()
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return (latents - shift) * self.vae.config.scaling_factor

    def decode_images(self, x: torch.Tensor) -> torch.Tensor:
        """The denoiser's space -> pixels clamped to [-1, 1]."""
        if self.vae is None:
            return x.clamp(-1.0, 1.0)
        vae_dtype = next(self.vae.parameters()).dtype
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        latents = x.to(vae_dtype) / self.vae.config.scaling_factor + shift
        return self.vae.decode(latents).sample.float().clamp(-1.0, 1.0)

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.denoiser.parameters()).dtype

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor | None:
        """Text-encoder hidden states (B, L, D), or None for an unconditional model."""
        if not self.conditional:
            return None
        # Some tokenizers (T5) report an effectively unbounded model_max_length.
        max_length = min(int(self.tokenizer.model_max_length), MAX_PROMPT_TOKENS)
        tokens = self.tokenizer(list(prompts), padding="max_length", max_length=max_length, truncation=True,
                                return_tensors="pt")
        device = next(self.text_encoder.parameters()).device
        return self.text_encoder(tokens.input_ids.to(device)).last_hidden_state

    def predict_noise(self, x_t: torch.Tensor, timesteps, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Denoiser output (epsilon for prediction_type="epsilon") for any of the three denoiser kinds.

        `timesteps` may be an int, a 0-d or a (B,) tensor. For conditional models `cond=None` means the
        empty prompt (the unconditional branch of classifier-free guidance).
        """
        batch = x_t.shape[0]
        dtype = self.dtype
        timesteps = torch.as_tensor(timesteps, device=x_t.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(batch)
        x_t = x_t.to(dtype)
        if self.conditional:
            if cond is None:
                cond = self.encode_prompts([""] * batch)
            cond = cond.to(device=x_t.device, dtype=dtype)
            if cond.shape[0] == 1 and batch > 1:
                cond = cond.expand(batch, *cond.shape[1:])
        if self.kind == "unet2d":
            return self.denoiser(x_t, timesteps).sample
        if self.kind == "unet2d-condition":
            return self.denoiser(x_t, timesteps, encoder_hidden_states=cond).sample
        if self.kind == "dit":
            out = self.denoiser(x_t, encoder_hidden_states=cond, timestep=timesteps,
                                added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample
            # PixArt checkpoints learn the variance too (2*C channels): epsilon is the first half.
            return out[:, : self.in_channels] if out.shape[1] != self.in_channels else out
        raise ValueError(f"unknown bundle kind {self.kind!r}")

    def to(self, device, dtype: torch.dtype | None = None) -> "DiffusionBundle":
        # Only pass dtype when asked: diffusers warns about dtype casts even for dtype=None.
        kwargs = {"device": device} if dtype is None else {"device": device, "dtype": dtype}
        self.denoiser.to(**kwargs)
        for module in (self.text_encoder, self.vae):
            if module is not None:
                module.to(**kwargs)
        return self

    def num_parameters(self, include_text_encoder: bool = False) -> int:
        n = sum(p.numel() for p in self.denoiser.parameters())
        if include_text_encoder and self.text_encoder is not None:
            n += sum(p.numel() for p in self.text_encoder.parameters())
        return n

    def save(self, directory) -> None:
        """diffusers/transformers save_pretrained of every component plus atelier.json (kind, sizes)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.denoiser.save_pretrained(directory / _KIND_TO_SUBFOLDER[self.kind])
        self.scheduler.save_pretrained(directory / "scheduler")
        if self.text_encoder is not None:
            self.text_encoder.save_pretrained(directory / "text_encoder")
            self.tokenizer.save_pretrained(str(directory / "tokenizer"))
        if self.vae is not None:
            self.vae.save_pretrained(directory / "vae")
        meta = {"format": BUNDLE_FORMAT, "version": 1, "kind": self.kind, "sample_size": self.sample_size,
                "in_channels": self.in_channels, "conditional": self.conditional, "latent": self.vae is not None}
        (directory / BUNDLE_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _resolve(ref: str) -> str | Path:
    """The tiny kind of "tiny:<kind>", else the model's directory: a local path or a hub id's
    snapshot already in the local cache."""
    if not isinstance(ref, str) or not ref.strip():
        raise ModelRefError("model reference must be a non-empty string")
    ref = ref.strip()
    if ref.startswith("tiny:"):
        from .tiny import TINY_KINDS

        kind = ref[len("tiny:"):]
        if kind not in TINY_KINDS:
            raise ModelRefError(f"unknown tiny model {ref!r}; expected one of {[f'tiny:{k}' for k in TINY_KINDS]}")
        return kind
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelRefError(f"model path {ref!r} is not a directory")
        return path
    if ref.startswith((".", "/", "~")) or ref.count("/") != 1:
        raise ModelRefError(f"model {ref!r}: no such directory, and not a hub id of the form 'owner/name'")
    return _cached_hub_snapshot(ref)


def load_bundle(ref: str, *, device="cpu") -> DiffusionBundle:
    """Resolve "tiny:<kind>", a local bundle/pipeline directory, or a hub id already in the local cache."""
    target = _resolve(ref)
    if isinstance(target, str):
        from .tiny import build_tiny

        return build_tiny(target, seed=0).to(device)
    return _load_directory(target, str(ref).strip()).to(device)


@dataclass(frozen=True)
class ModelInfo:
    """What a model reference declares, from its configs alone (inspect_model)."""

    kind: str
    sample_size: int  # the denoiser's input side
    in_channels: int  # the denoiser's input channels
    image_size: int  # side of the images it trains on and generates (sample_size x the VAE's factor)
    image_channels: int
    conditional: bool


def inspect_model(ref: str) -> ModelInfo:
    """Resolve `ref` as load_bundle does and check, from configs and file names only, that it has
    what loading needs: the denoiser's config and weights, a text encoder with its tokenizer where
    the denoiser is conditional, the VAE's config and weights. No weights are read, so a request
    naming a model of any size is checked in milliseconds in the API process; a corrupt weight file
    is still reported, by the job that loads it."""
    return _inspect(_resolve(ref), ref)[0]


def _inspect(target: str | Path, ref: str) -> tuple[ModelInfo, dict]:
    """inspect_model of a resolved reference (a tiny kind or a directory), with the denoiser's config."""
    if isinstance(target, str):
        from .tiny import tiny_config

        cfg = tiny_config(target)
        d = cfg["denoiser"]
        return ModelInfo(target, d["sample_size"], d["in_channels"], d["sample_size"], d["in_channels"],
                         cfg["text_encoder"] is not None), d
    ref = str(ref).strip()
    kind, folder = _denoiser_of(target, ref)
    cfg = _read_json(folder / "config.json")
    _require_weights(folder, ("diffusion_pytorch_model",), ref)
    conditional = (target / "text_encoder").is_dir()
    if conditional:
        _text_encoder_class(target)
        _require_weights(target / "text_encoder", ("model", "pytorch_model"), ref)
    elif kind != "unet2d":
        raise ModelRefError(f"{ref!r}: conditional {kind} model without text_encoder/ and tokenizer/")
    sample_size, in_channels = _side(cfg.get("sample_size") or 0), int(cfg.get("in_channels") or 0)
    if sample_size < 1 or in_channels < 1:
        raise ModelRefError(f"{ref!r}: the denoiser's config names no sample_size / in_channels")
    image_size, image_channels = sample_size, in_channels
    if (target / "vae").is_dir():
        vae = _read_json(target / "vae" / "config.json")
        _require_weights(target / "vae", ("diffusion_pytorch_model",), ref)
        image_size = sample_size * _vae_factor(vae)
        image_channels = int(vae.get("in_channels") or 3)
    return ModelInfo(kind, sample_size, in_channels, image_size, image_channels, conditional), cfg


def skeleton_bundle(ref: str) -> tuple[DiffusionBundle, torch.Tensor | None]:
    """The model's denoiser built from its config on the meta device (no weights read, no memory)
    and a conditioning tensor of the shape it takes (None for an unconditional model): enough to
    trace its layers and their sizes (quantization checks a request's budget with it). The
    reference is checked as by inspect_model."""
    info, config = _inspect(_resolve(ref), ref)
    try:
        with torch.device("meta"):
            denoiser = _KIND_TO_CLASS[info.kind].from_config(config).eval()
    except Exception as exc:
        raise ModelRefError(f"could not build the denoiser of {ref!r} from its config: {exc}") from exc
    cond = None
    if info.kind != "unet2d":
        width = config.get("cross_attention_dim") if info.kind == "unet2d-condition" else config.get("caption_channels")
        width = width[0] if isinstance(width, (list, tuple)) else width
        cond = torch.zeros(1, 1, int(width), device="meta")
    bundle = DiffusionBundle(denoiser=denoiser, scheduler=DDPMScheduler(), kind=info.kind,
                             sample_size=info.sample_size, in_channels=info.in_channels)
    return bundle, cond


def _side(sample_size) -> int:
    """A config's sample_size, an int or (height, width), as one side."""
    return int(sample_size if isinstance(sample_size, int) else sample_size[0])


def _vae_factor(vae_config) -> int:
    """How many image pixels one latent spans per side: 2 per downsampling block."""
    return 2 ** (len(vae_config["block_out_channels"]) - 1)  # a dict or diffusers' FrozenDict config


def _require_weights(folder: Path, stems: tuple[str, ...], ref: str) -> None:
    """A weight file (safetensors or bin, whole or sharded) of one of `stems` in `folder`."""
    if not any(p.is_file() for stem in stems for ext in ("safetensors", "bin") for p in folder.glob(f"{stem}*.{ext}")):
        raise ModelRefError(f"{ref!r}: no weights in {folder.name}/ (expected {stems[0]}.safetensors or .bin)")


def _cached_hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # offline: anything but a complete cached snapshot is unusable
        raise ModelRefError(f"hub model {repo_id!r} is not in the local cache (downloads are disabled): {exc}") from exc


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelRefError(f"unreadable {path.name} in model directory: {exc}") from exc


def _locate_denoiser(path: Path) -> tuple[str, Path]:
    """(kind, folder) of the denoiser: root config.json (single-model repo) or unet/ / transformer/."""
    for folder in (path, path / "unet", path / "transformer"):
        cfg = folder / "config.json"
        if cfg.is_file():
            cls = _read_json(cfg).get("_class_name")
            if cls in _CLASS_TO_KIND:
                return _CLASS_TO_KIND[cls], folder
            if folder != path:
                raise ModelRefError(f"unsupported denoiser class {cls!r} in {folder.name}/; supported: {sorted(_CLASS_TO_KIND)}")
    raise ModelRefError(f"{path}: no denoiser found (expected unet/ or transformer/ with a diffusers config.json)")


def _denoiser_of(path: Path, ref: str) -> tuple[str, Path]:
    """(kind, folder) of the directory's denoiser, checked against the bundle metadata if any."""
    meta = _read_json(path / BUNDLE_META) if (path / BUNDLE_META).is_file() else {}
    if meta and meta.get("format") != BUNDLE_FORMAT:
        raise ModelRefError(f"{ref!r}: {BUNDLE_META} has unknown format {meta.get('format')!r}")
    kind, folder = _locate_denoiser(path)
    if meta and meta.get("kind") != kind:
        raise ModelRefError(f"{ref!r}: {BUNDLE_META} says kind {meta.get('kind')!r} but the denoiser is {kind!r}")
    return kind, folder


def _load_directory(path: Path, ref: str) -> DiffusionBundle:
    kind, folder = _denoiser_of(path, ref)
    try:
        # Said outright: diffusers defaults to True, then warns to install accelerate when it is absent.
        # Measured here (diffusers 0.42, an 860M-parameter SD-1.5 UNet, CPU): load and touch every weight
        # 3.5-4.4 s either way, peak RSS 3.76 GiB either way: it already builds without random init.
        denoiser = _KIND_TO_CLASS[kind].from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=False)
        scheduler = _load_scheduler(path, folder)
        text_encoder = tokenizer = vae = None
        if (path / "text_encoder").is_dir():
            text_encoder, tokenizer = _load_text_encoder(path)
        if (path / "vae").is_dir():
            from diffusers import AutoencoderKL

            vae = AutoencoderKL.from_pretrained(path / "vae", local_files_only=True, low_cpu_mem_usage=False).eval()
    except ModelRefError:
        raise
    except Exception as exc:
        raise ModelRefError(f"could not load model {ref!r}: {type(exc).__name__}: {exc}") from exc
    if kind != "unet2d" and text_encoder is None:
        raise ModelRefError(f"{ref!r}: conditional {kind} model without text_encoder/ and tokenizer/")
    denoiser.eval()
    if text_encoder is not None:
        text_encoder.eval()
    cfg = denoiser.config
    return DiffusionBundle(denoiser=denoiser, scheduler=scheduler, kind=kind, sample_size=_side(cfg.sample_size),
                           in_channels=int(cfg.in_channels), text_encoder=text_encoder, tokenizer=tokenizer, vae=vae)


def _text_encoder_class(path: Path):
    """The transformers class text_encoder/config.json declares (CLIPTextModel, T5EncoderModel, ...),
    with tokenizer/ beside it."""
    import transformers

    architectures = _read_json(path / "text_encoder" / "config.json").get("architectures") or ["CLIPTextModel"]
    model_cls = getattr(transformers, architectures[0], None)
    if model_cls is None:
        raise ModelRefError(f"unsupported text encoder class {architectures[0]!r}")
    if not (path / "tokenizer").is_dir():
        raise ModelRefError(f"{path}: text_encoder/ without tokenizer/")
    return model_cls


def _load_text_encoder(path: Path):
    """Text encoder of the class its config declares and its tokenizer."""
    import transformers

    text_encoder = _text_encoder_class(path).from_pretrained(path / "text_encoder", local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path / "tokenizer"), local_files_only=True)
    return text_encoder, tokenizer


def _load_scheduler(path: Path, denoiser_folder: Path) -> DDPMScheduler:
    """Training scheduler: the checkpoint's noise schedule re-expressed as DDPM (same betas)."""
    for candidate in (path / "scheduler" / "scheduler_config.json", denoiser_folder / "scheduler_config.json"):
        if candidate.is_file():
            return DDPMScheduler.from_config(_read_json(candidate))
    return DDPMScheduler()
