"""Dataset profiling: an imagefolder (images + captions) -> a profile embedding.

A profile is the Gaussian (mean, covariance) of per-item features: image features from a
pluggable encoder, concatenated with caption features. `similarity.frechet_distance`
compares two profiles. Encoders never download anything:
- `ClipImageEncoder(path)`: a local CLIP checkpoint loaded by path with transformers;
- `PixelStatsEncoder`: built-in, deterministic colour/texture/layout statistics;
- caption features: a packaged sentence encoder when one is passed in, else a hashed
  bag of words (sklearn HashingVectorizer), which needs no vocabulary or weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch


class ImageEncoder(Protocol):
    name: str

    def encode(self, images: torch.Tensor) -> np.ndarray:  # (N, C, H, W) in [-1, 1] -> (N, F)
        ...


class PixelStatsEncoder:
    """Offline image features: per-channel moments, colour histograms, gradient energy, 4x4 layout."""

    name = "pixel-stats-v1"

    def __init__(self, bins: int = 6, grid: int = 4):
        self.bins, self.grid = bins, grid

    def encode(self, images: torch.Tensor) -> np.ndarray:
        x = images.float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        n = x.shape[0]
        mean = x.mean(dim=(2, 3))
        std = x.std(dim=(2, 3))
        hist = torch.stack(
            [torch.stack([torch.histc(x[i, c], bins=self.bins, min=-1, max=1) for c in range(3)]).flatten() for i in range(n)]
        ) / (x.shape[2] * x.shape[3])
        gray = x.mean(dim=1, keepdim=True)
        gx = (gray[..., :, 1:] - gray[..., :, :-1]).abs().mean(dim=(1, 2, 3))
        gy = (gray[..., 1:, :] - gray[..., :-1, :]).abs().mean(dim=(1, 2, 3))
        layout = torch.nn.functional.adaptive_avg_pool2d(gray, self.grid).flatten(1)
        return torch.cat([mean, std, hist, gx[:, None], gy[:, None], layout], dim=1).numpy().astype(np.float64)


class ClipImageEncoder:
    """A local CLIP vision tower (transformers), loaded by path: no network access."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        from transformers import CLIPModel

        self.name = f"clip:{Path(path).name}"
        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.device = device
        cfg = self.model.config.vision_config
        self.size = cfg.image_size
        # CLIP's own normalisation constants (openai/clip)
        self.mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> np.ndarray:
        x = (images.float() + 1) / 2
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
        x = ((x - self.mean) / self.std).to(self.device)
        out = self.model.get_image_features(pixel_values=x)
        out = getattr(out, "pooler_output", out)
        return out.cpu().numpy().astype(np.float64)


def hashed_caption_features(texts: Sequence[str], dim: int = 32) -> np.ndarray:
    """Hashed bag-of-words (l2-normalised), the fallback when no sentence encoder is installed."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=dim, alternate_sign=False, norm="l2")
    return vec.transform(list(texts)).toarray().astype(np.float64)


def caption_stats(texts: Sequence[str]) -> dict[str, float]:
    lengths = np.array([len(t.split()) for t in texts], dtype=float) if texts else np.zeros(1)
    vocab = {w.lower() for t in texts for w in t.split()}
    return {
        "captions": float(len(texts)),
        "mean_words": float(lengths.mean()),
        "std_words": float(lengths.std()),
        "vocabulary": float(len(vocab)),
        "empty_fraction": float(np.mean([not t.strip() for t in texts])) if texts else 1.0,
    }


def pack_profile(mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Flat float vector [dim, mu..., cov...] that a DB column or a DatasetRow can hold."""
    mu = np.asarray(mu, np.float64).ravel()
    return np.concatenate([[float(mu.size)], mu, np.asarray(cov, np.float64).ravel()])


def unpack_profile(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(profile, np.float64)
    d = int(p[0])
    return p[1 : 1 + d], p[1 + d : 1 + d + d * d].reshape(d, d)


def gaussian(features: np.ndarray, shrinkage: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance; a small ridge keeps the covariance usable with few items."""
    f = np.atleast_2d(np.asarray(features, np.float64))
    mu = f.mean(axis=0)
    cov = np.cov(f, rowvar=False) if f.shape[0] > 1 else np.zeros((f.shape[1], f.shape[1]))
    cov = np.atleast_2d(cov) + shrinkage * np.eye(f.shape[1])
    return mu, cov


@dataclass
class DatasetProfile:
    embedding: np.ndarray  # packed Gaussian, see pack_profile
    num_items: int
    image_encoder: str
    caption_encoder: str
    caption_stats: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        return unpack_profile(self.embedding)[0]


def profile_features(
    image_features: np.ndarray, caption_features: np.ndarray | None = None, caption_weight: float = 1.0
) -> np.ndarray:
    parts = [np.asarray(image_features, np.float64)]
    if caption_features is not None and caption_features.size:
        parts.append(caption_weight * np.asarray(caption_features, np.float64))
    return np.concatenate(parts, axis=1)


def profile_imagefolder(
    path: str | Path,
    *,
    image_encoder: ImageEncoder | None = None,
    caption_encoder: Callable[[Sequence[str]], np.ndarray] | None = None,
    resolution: int = 64,
    max_items: int | None = 512,
    batch_size: int = 64,
) -> DatasetProfile:
    """Profile an HF imagefolder (metadata.jsonl/csv with file_name, text)."""
    from services.common.diffusion import load_imagefolder

    ds = load_imagefolder(path, resolution=resolution)
    n = len(ds) if max_items is None else min(len(ds), max_items)
    enc = image_encoder or PixelStatsEncoder()
    feats = []
    for start in range(0, n, batch_size):
        batch = torch.stack([ds[i]["pixel_values"] for i in range(start, min(n, start + batch_size))])
        feats.append(enc.encode(batch))
    image_feats = np.concatenate(feats, axis=0)
    texts = ds.texts[:n]
    if caption_encoder is not None:
        cap, cap_name = np.asarray(caption_encoder(texts), np.float64), getattr(caption_encoder, "name", "sentence-encoder")
    else:
        cap, cap_name = hashed_caption_features(texts), "hashed-bow-32"
    mu, cov = gaussian(profile_features(image_feats, cap))
    return DatasetProfile(pack_profile(mu, cov), n, enc.name, cap_name, caption_stats(texts))
