"""Dataset similarity from profiles: the Fréchet distance between feature Gaussians.

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
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():
        # near-singular covariances (few images): regularise as the FID reference code does
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    d = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(d, 0.0)


def profile_distance(profile_a: np.ndarray, profile_b: np.ndarray) -> float:
    """Fréchet distance between two flattened profiles (see profile.pack_profile)."""
    from .profile import unpack_profile

    mu_a, cov_a = unpack_profile(profile_a)
    mu_b, cov_b = unpack_profile(profile_b)
    return frechet_distance(mu_a, cov_a, mu_b, cov_b)


def distance_to_weight(distance: np.ndarray, tau: float) -> np.ndarray:
    """Similarity weights exp(-(d - d_min) / tau): the nearest dataset weighs 1."""
    d = np.asarray(distance, dtype=np.float64)
    if d.size == 0:
        return d
    return np.exp(-(d - np.nanmin(d)) / max(tau, 1e-12))
