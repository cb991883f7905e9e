import torch
import pytest

from services.quantization.mpq.orthogonality import orm_from_features, orthogonality_importance


def _feats(n=12, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def test_identical_layers_give_one():
    x = _feats()
    orm, defined = orm_from_features([x, x.clone()])
    assert defined.all()
    assert orm[0, 1].item() == pytest.approx(1.0, abs=1e-12)
    assert orm[0, 0].item() == pytest.approx(1.0, abs=1e-12)


def test_orthogonal_layers_give_zero():
    # features living on disjoint sample subspaces after centring give orthogonal Grams
    n = 8
    a = torch.zeros(n, 3, dtype=torch.float64)
    b = torch.zeros(n, 3, dtype=torch.float64)
    a[0, 0], a[1, 0] = 1.0, -1.0  # only samples 0,1 differ in layer a
    b[2, 0], b[3, 0] = 1.0, -1.0  # only samples 2,3 differ in layer b
    orm, _ = orm_from_features([a, b])
    assert orm[0, 1].item() == pytest.approx(0.0, abs=1e-12)


def test_invariances_scale_rotation_width():
    x, y = _feats(seed=1), _feats(seed=2)
    base = orm_from_features([x, y])[0][0, 1].item()
    q, _ = torch.linalg.qr(torch.randn(20, 20, dtype=torch.float64))
    assert orm_from_features([7.5 * x, y])[0][0, 1].item() == pytest.approx(base, abs=1e-12)
    assert orm_from_features([x @ q, y])[0][0, 1].item() == pytest.approx(base, abs=1e-12)
    # width independence: duplicating the features (d -> 2d) leaves the Gram shape and ORM intact
    assert orm_from_features([torch.cat([x, x], 1), y])[0][0, 1].item() == pytest.approx(base, abs=1e-12)
    # a feature offset shared by all samples is removed by the centring
    assert orm_from_features([x + 3.0, y])[0][0, 1].item() == pytest.approx(base, abs=1e-12)
    assert 0.0 < base < 1.0


def test_constant_output_layer_is_undefined_and_neutral():
    x, y = _feats(seed=3), _feats(seed=4)
    const = torch.ones(12, 5, dtype=torch.float64) * torch.arange(5.0, dtype=torch.float64)
    orm, defined = orm_from_features([x, y, const, x + 0.1 * y])
    assert defined.tolist() == [True, True, False, True]
    assert torch.isnan(orm[2]).all() and torch.isnan(orm[:, 2]).all()
    theta = orthogonality_importance(orm, defined, beta=1.0, sign="neg")
    assert torch.isfinite(theta).all()
    assert theta[2].item() == pytest.approx(theta[[0, 1, 3]].median().item())
    # the constant layer does not enter the others' sums
    orm2, defined2 = orm_from_features([x, y, x + 0.1 * y])
    theta2 = orthogonality_importance(orm2, defined2, beta=1.0, sign="neg")
    assert torch.allclose(theta[[0, 1, 3]], theta2)


def test_sign_flips_ranking():
    x, y = _feats(seed=5), _feats(seed=6)
    feats = [x, x + 0.05 * y, y]  # layers 0 and 1 nearly redundant, layer 2 distinct
    orm, defined = orm_from_features(feats)
    neg = orthogonality_importance(orm, defined, beta=1.0, sign="neg")
    pos = orthogonality_importance(orm, defined, beta=1.0, sign="pos")
    assert neg[2] > neg[0] and pos[2] < pos[0]
    assert torch.allclose(neg * pos, torch.ones(3, dtype=torch.float64))
