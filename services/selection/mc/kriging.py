"""Kriging evidence: a target's quality column predicted from the other datasets' columns.

Best-on-average weighs every known dataset alike; similarity-weighted evidence weighs each by
its nearness to the target, one at a time, so a cluster of near-duplicate datasets (the two
smallNORB labels, a zoo renderer's palette variants) counts as many votes. Ordinary kriging
weighs them by what they add: with the correlation between two datasets' quality columns
modelled as a function of their distance (a correlogram), the weights solve
``K w + mu 1 = k, sum(w) = 1`` where K holds the modelled correlations among the known datasets
and k their correlations with the target. Redundant neighbours share their weight; a dataset
unlike the rest keeps its own.

The correlogram ``rho(d) = sill * exp(-d / length) + floor`` is fitted by least squares to the
pairs of known datasets (the pairwise-complete Pearson correlation of their normalised quality
over models against their distance) and never reads the target's results. rho(0) < 1 is the
nugget: the share of a column's variance that no neighbour predicts, which keeps the system
well-posed. There is no free parameter. ``floor`` does not change ordinary-kriging weights (a
constant added to K and k is absorbed by mu), so only the sill's share and the length matter.

No kriging library fits here: PyKrige and scikit-learn's Gaussian processes work on coordinates
(a variogram over points in space, a kernel over feature vectors), while datasets here are known
only by a distance matrix, and the covariance is fitted to observed column correlations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

MIN_PAIRS = 3  # fewer pairs fit no curve of three parameters: weigh the datasets alike
MIN_COMMON = 3  # models two columns must share for their correlation to count


@dataclass(frozen=True)
class Correlogram:
    """rho(d) = sill * exp(-d / length) + floor; the correlation of two datasets' quality columns
    at distance d (rho of an infinite or unknown distance is the floor)."""

    sill: float
    length: float
    floor: float

    def __call__(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=float)
        return self.sill * np.exp(-np.where(np.isfinite(d), d, np.inf) / self.length) + self.floor


def column_correlations(X: np.ndarray) -> np.ndarray:
    """Pairwise-complete Pearson correlation of the columns of X (models x datasets, NaN where a
    pair has no result); NaN where two columns share fewer than MIN_COMMON models or one is
    constant on the shared ones. Sums over the shared rows as matrix products: one pass for all
    pairs (the tables are rebuilt when a result arrives, and this runs once per tables)."""
    have = np.isfinite(X).astype(float)
    X0 = np.where(have > 0, X, 0.0)
    n = have.T @ have  # shared models of each pair
    sum_a = X0.T @ have  # [a, b]: sum of column a over the rows b shares
    sum_sq_a = (X0 * X0).T @ have
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = X0.T @ X0 - sum_a * sum_a.T / n
        var_a = sum_sq_a - sum_a ** 2 / n
        corr = cov / np.sqrt(var_a * var_a.T)
    ok = (n >= MIN_COMMON) & (var_a > 1e-12 * np.maximum(sum_sq_a, 1.0)) & (var_a.T > 1e-12 * np.maximum(sum_sq_a.T, 1.0))
    return np.where(ok, np.clip(corr, -1.0, 1.0), np.nan)


def fit_correlogram(distances: np.ndarray, correlations: np.ndarray) -> Correlogram | None:
    """Least-squares fit of the correlogram to (distance, correlation) pairs with finite values;
    None with fewer than MIN_PAIRS such pairs or no spread of distances."""
    d, r = np.asarray(distances, float), np.asarray(correlations, float)
    ok = np.isfinite(d) & np.isfinite(r)
    d, r = d[ok], r[ok]
    if len(d) < MIN_PAIRS or np.ptp(d) <= 0:
        return None
    scale = float(np.median(d)) or float(np.mean(d)) or 1.0

    def residual(p: np.ndarray) -> np.ndarray:
        return p[0] * np.exp(-d / p[1]) + p[2] - r

    # sill >= 0: nearer datasets never correlate less; sill + floor <= 1 is a correlation at 0
    fit = optimize.least_squares(residual, x0=[0.5, scale, float(np.clip(r.min(), -0.9, 0.4))],
                                 bounds=([0.0, 1e-3 * scale, -1.0], [1.0, 1e3 * scale, 1.0]))
    sill, length, floor = (float(v) for v in fit.x)
    if sill + floor > 1.0:  # keep rho(0) a correlation: lower the floor (no change to the weights)
        floor = 1.0 - sill
    return Correlogram(sill, length, floor)


def kriging_weights(rho: Correlogram, to_target: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Ordinary-kriging weights (summing to 1) of the known datasets for the target, from their
    distances to the target (n) and among themselves (n x n)."""
    n = len(to_target)
    if n == 0:
        return np.zeros(0)
    K = rho(among)
    np.fill_diagonal(K, 1.0)
    A = np.zeros((n + 1, n + 1))
    A[:n, :n], A[:n, n], A[n, :n] = K, 1.0, 1.0
    rhs = np.append(rho(to_target), 1.0)
    # lstsq: a distance that is not Euclidean can leave K indefinite; the minimum-norm solution
    # still sums to one
    return np.linalg.lstsq(A, rhs, rcond=None)[0][:n]


def filled_with_model_means(X: np.ndarray, empty: float = np.nan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each row's mean over its finite entries, NaN for a row with none; the mean each row is filled
    with, the global mean for a row with none, `empty` when X has no finite entry at all; X with
    every missing entry so filled). Rows are models, columns datasets."""
    have = np.isfinite(X)
    cnt = have.sum(axis=1)
    mean = np.where(cnt > 0, np.where(have, X, 0.0).sum(axis=1) / np.maximum(cnt, 1), np.nan)
    fill = np.where(np.isfinite(mean), mean, float(np.nanmean(X)) if have.any() else empty)
    return mean, fill, np.where(have, X, fill[:, None])


def kriged(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row of X (a model's normalised quality on the known datasets) combined with the
    weights; a missing entry stands in as the model's mean over its other results (the global
    mean for a model with none), as best-on-average would."""
    return filled_with_model_means(X)[2] @ weights
