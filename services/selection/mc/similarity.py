"""Dataset similarity from profiles: the (normalised) Fréchet distance between feature Gaussians.

Why Fréchet: a profile summarises a dataset by the mean and covariance of its image
(and caption) features, the same statistics FID uses. The Fréchet distance compares
both the location and the spread of two datasets, is 0 for identical profiles, is
symmetric and grows with a shift of the mean (||mu_a - mu_b||^2 term), which a cosine
of mean features ignores for spread and scale. It is computed in closed form.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray, eps: float = 1e-6) -> float:
    """||mu_a - mu_b||^2 + Tr(A + B - 2 (A B)^{1/2}); clipped at 0 against round-off."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    diff = mu_a - mu_b
    with np.errstate(all="ignore"):
        covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        # near-singular covariances (few images): regularise as the FID reference code does
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    d = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(d, 0.0)


def normalised_frechet(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance / (||mu_a - mu_b||^2 + Tr A + Tr B), in [0, 1].

    The cross term 2 Tr (A B)^{1/2} is >= 0, so the Fréchet distance never exceeds the denominator:
    0 for identical Gaussians, 1 for ones that share nothing. It does not change with the units or
    the number of features, so modalities measured by different encoders can be averaged.
    """
    diff = np.asarray(mu_a, np.float64) - np.asarray(mu_b, np.float64)
    scale = float(diff @ diff + np.trace(np.atleast_2d(cov_a)) + np.trace(np.atleast_2d(cov_b)))
    return 0.0 if scale <= 0 else min(frechet_distance(mu_a, cov_a, mu_b, cov_b) / scale, 1.0)


def profile_distance(profile_a: np.ndarray, profile_b: np.ndarray) -> float:
    """Distance between two packed profiles (see profile.pack_blocks).

    Multi-block profiles (image and caption Gaussians): the mean over modalities of the normalised
    Fréchet distance, so each modality weighs the same whatever its encoder's scale. Concatenated
    into one Gaussian, the image block's scale swamped the captions: on the T2I zoo's 42 datasets the
    nearest neighbour shared the dataset's renderer family for 38% of the targets; per modality, 75%.
    Single-block profiles keep the plain Fréchet distance.
    """
    return profile_distances(profile_a, profile_b)["combined"]


def _comparable_blocks(profile_a: np.ndarray, profile_b: np.ndarray):
    from .profile import unpack_blocks

    blocks_a, blocks_b = unpack_blocks(profile_a), unpack_blocks(profile_b)
    if [m.size for m, _ in blocks_a] != [m.size for m, _ in blocks_b]:
        raise ValueError("profiles with different layouts (encoders) are not comparable")
    return blocks_a, blocks_b


def profile_distances(profile_a: np.ndarray, profile_b: np.ndarray) -> dict[str, float]:
    """Every distance a pair of profiles yields, each block compared once: "combined"
    (profile_distance) and, for an image + caption profile, "image" and "caption", each block's
    normalised Fréchet distance on its own (their mean is the combined one). Kept apart, they are
    separate similarity methods a ranker can choose between (RankerConfig.similarity)."""
    blocks_a, blocks_b = _comparable_blocks(profile_a, profile_b)
    if len(blocks_a) == 1:
        return {"combined": frechet_distance(*blocks_a[0], *blocks_b[0])}
    per = [normalised_frechet(*a, *b) for a, b in zip(blocks_a, blocks_b)]
    out = {"combined": float(np.mean(per))}
    if len(per) == 2:
        out.update(image=per[0], caption=per[1])
    return out


def gaussian_kl(mu_p: np.ndarray, cov_p: np.ndarray, mu_q: np.ndarray, cov_q: np.ndarray) -> float:
    """KL(N(mu_p, cov_p) || N(mu_q, cov_q)) in nats, closed form:
    (tr(Q^-1 P) + (mu_q - mu_p)^T Q^-1 (mu_q - mu_p) - k + ln det Q - ln det P) / 2, clipped at 0."""
    mu_p, mu_q = np.asarray(mu_p, np.float64).ravel(), np.asarray(mu_q, np.float64).ravel()
    cov_p, cov_q = np.atleast_2d(cov_p).astype(np.float64), np.atleast_2d(cov_q).astype(np.float64)
    k = mu_p.size
    chol_q = linalg.cho_factor(cov_q)  # profiles carry a ridge (profile.gaussian): positive definite
    diff = mu_q - mu_p
    trace = float(np.trace(linalg.cho_solve(chol_q, cov_p)))
    maha = float(diff @ linalg.cho_solve(chol_q, diff))
    logdet_q = 2.0 * float(np.log(np.diag(chol_q[0])).sum())
    logdet_p = float(np.linalg.slogdet(cov_p)[1])
    return max(0.5 * (trace + maha - k + logdet_q - logdet_p), 0.0)


def profile_coverage(covered: np.ndarray, reference: np.ndarray) -> float:
    """How poorly the reference dataset's profile covers the covered one's: KL(covered || reference)
    of the (block-diagonal) profile Gaussians, i.e. the sum of each modality's KL. 0 when identical.

    Why a directed divergence next to the symmetric Fréchet distance: the question for a model is
    whether a target lies inside the support of its pretraining data. KL(target || source) is large
    when target items fall where the source has little mass (dark digits on white, for a model that
    only saw bright digits on black) and small when a broad source contains a narrow target; the
    Fréchet distance of the same pair is the same both ways and mostly measures the shift of the
    means. On the T2I zoo the model whose source minimises it is the best fine-tuned model on 27 of
    32 targets; the model whose source is nearest by the Fréchet distance, on 21 (the
    nearest_pretraining baseline, bench/results/selection-t2i-zoo.json and README). On 10 targets
    defined after this measure (`atelier bench zoo-holdout`): 9 of 10 against 7."""
    blocks_c, blocks_r = _comparable_blocks(covered, reference)
    return float(sum(gaussian_kl(*c, *r) for c, r in zip(blocks_c, blocks_r)))


def comparable_coverage(covered, reference) -> float | None:
    """profile_coverage, or None where the two profiles are not comparable (another layout, i.e.
    other encoders) or a covariance is singular."""
    try:
        return profile_coverage(np.asarray(covered, dtype=float), np.asarray(reference, dtype=float))
    except (ValueError, np.linalg.LinAlgError):
        return None


def coverage_method(image_encoder: str, caption_encoder: str) -> str:
    """The method name of coverage divergences between profiles of this layout."""
    return f"coverage-kl:{image_encoder}+{caption_encoder}"


def profile_methods(image_encoder: str, caption_encoder: str) -> dict[str, str]:
    """Similarity-method names of the distances one profile layout yields: "combined" (their mean,
    profile_distance) and, per modality block in order, "image" and "caption" (profile_distances)."""
    return {"combined": f"frechet-norm:{image_encoder}+{caption_encoder}",
            "image": f"frechet-norm:image:{image_encoder}", "caption": f"frechet-norm:caption:{caption_encoder}"}


def modality_of(method: str) -> str | None:
    """'image' or 'caption' for a per-modality profile method (see profile_methods), else None."""
    for label in ("image", "caption"):
        if method.startswith(f"frechet-norm:{label}:"):
            return label
    return None


def distance_to_weight(distance: np.ndarray, tau: float) -> np.ndarray:
    """Similarity weights exp(-(d - d_min) / tau): the nearest dataset weighs 1."""
    d = np.asarray(distance, dtype=np.float64)
    if d.size == 0:
        return d
    return np.exp(-(d - np.nanmin(d)) / max(tau, 1e-12))
