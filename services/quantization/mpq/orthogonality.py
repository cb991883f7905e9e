"""Network orthogonality metric (ORM) of MPQ-Diff, computed in the n x n Gram form.

For layer i at one timestep, X_i is the n x d_i matrix of flattened per-sample outputs.
G_i = H X_i X_i^T H is its centred Gram matrix (H = I - 11^T/n) and
ORM(i, j) = <G_i, G_j>_F / (||G_i||_F ||G_j||_F).
Only n x n matrices are kept, so the cost after the Gram product does not grow with layer width.
A layer whose output is identical across samples has G_i = 0, so its ORM is undefined (NaN here).
"""
from __future__ import annotations

import torch

# A centred Gram whose norm is this small relative to the uncentred one means "constant output".
CONSTANT_OUTPUT_RTOL = 1e-6


def gram(features: torch.Tensor) -> torch.Tensor:
    """Uncentred Gram X X^T (n x n, float64) of per-sample flattened features."""
    x = features.detach().reshape(features.shape[0], -1).to(torch.float64)
    return x @ x.T


def center_gram(g: torch.Tensor) -> torch.Tensor:
    """H G H without building H: subtract row and column means, add back the grand mean."""
    g = g.to(torch.float64)
    return g - g.mean(0, keepdim=True) - g.mean(1, keepdim=True) + g.mean()


def normalized_centered_grams(grams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and Frobenius-normalise a stack of uncentred Grams (L x n x n).

    Returns (unit grams flattened to L x n^2, defined mask of length L). Layers with constant
    output (centred norm ~ 0 relative to the uncentred one) get a zero row and defined=False.
    """
    centred = torch.stack([center_gram(g) for g in grams])
    flat = centred.reshape(centred.shape[0], -1)
    norms = flat.norm(dim=1)
    scale = grams.reshape(grams.shape[0], -1).norm(dim=1)
    defined = norms > CONSTANT_OUTPUT_RTOL * scale.clamp_min(torch.finfo(torch.float64).tiny)
    unit = torch.where(defined[:, None], flat / norms.clamp_min(1e-300)[:, None], torch.zeros_like(flat))
    return unit, defined


def orm_matrix(grams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ORM(i, j) for every pair of layers at one timestep from their uncentred Grams (L x n x n).

    Returns (L x L matrix with NaN rows/columns for undefined layers, defined mask).
    """
    unit, defined = normalized_centered_grams(grams)
    orm = unit @ unit.T
    undefined = ~defined
    orm[undefined, :] = float("nan")
    orm[:, undefined] = float("nan")
    return orm, defined


def orm_from_features(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Convenience: ORM matrix straight from per-layer feature tensors (first dim = samples)."""
    return orm_matrix(torch.stack([gram(f) for f in features]))


def orthogonality_importance(
    orm: torch.Tensor, defined: torch.Tensor, *, beta: float | None = None, sign: str = "neg"
) -> torch.Tensor:
    """theta_i = exp(-/+ beta * sum_{j != i, j defined} ORM(i, j)) for one timestep.

    sign="neg" is the paper's form: a layer strongly correlated with the rest is redundant and
    gets less importance; sign="pos" flips it. beta=None means 1 / (number of defined layers - 1),
    which keeps the exponent of order one whatever the network depth.
    Undefined (constant-output) layers are left out of every sum and get the median importance of
    the defined ones at this step: a neutral value, since the metric says nothing about them.
    """
    if sign not in ("neg", "pos"):
        raise ValueError(f"sign must be 'neg' or 'pos', got {sign!r}")
    m = torch.nan_to_num(orm.clone(), nan=0.0)
    m.fill_diagonal_(0.0)
    m[:, ~defined] = 0.0
    if beta is None:
        beta = 1.0 / max(int(defined.sum()) - 1, 1)
    direction = -1.0 if sign == "neg" else 1.0
    theta = torch.exp(direction * beta * m.sum(1))
    neutral = theta[defined].median() if defined.any() else torch.tensor(1.0, dtype=theta.dtype)
    return torch.where(defined, theta, neutral)
