"""Kriging evidence: the correlogram fit, the ordinary-kriging weights, and the feature's use of
the context datasets only."""

import numpy as np
import pytest

from services.selection.mc.graph import tables_from_zoo
from services.selection.mc.kriging import Correlogram, column_correlations, fit_correlogram, kriged, kriging_weights
from services.selection.mc.predictor import feature_matrix
from services.selection.mc.records import DatasetRow, ModelRow, ResultRow, SimilarityRow, Zoo


def test_the_correlogram_fit_recovers_a_known_curve_and_needs_pairs():
    d = np.linspace(0.1, 6.0, 40)
    truth = Correlogram(sill=0.6, length=2.0, floor=0.2)
    rho = fit_correlogram(d, truth(d) + np.random.default_rng(0).normal(0, 0.005, d.size))
    assert rho.sill == pytest.approx(0.6, abs=0.03)
    assert rho.length == pytest.approx(2.0, rel=0.1)
    assert rho.floor == pytest.approx(0.2, abs=0.03)
    assert rho(np.array([np.nan, np.inf])) == pytest.approx([rho.floor, rho.floor])  # unknown: no nearness
    assert fit_correlogram(d[:2], truth(d[:2])) is None  # two pairs fit no three-parameter curve
    assert fit_correlogram(np.ones(5), np.ones(5)) is None  # no spread of distances


def test_redundant_neighbours_share_their_weight():
    """Three copies of one dataset and one other dataset, all as near the target: similarity
    weighting gives each a quarter; kriging gives the lone dataset as much as the copies together
    would get alone, less the nugget's pull, and far more than a quarter."""
    rho = Correlogram(sill=0.8, length=1.0, floor=0.0)
    among = np.array([[0, 0, 0, 4], [0, 0, 0, 4], [0, 0, 0, 4], [4, 4, 4, 0]], dtype=float)
    w = kriging_weights(rho, np.ones(4), among)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(w[1]) == pytest.approx(w[2])
    assert w[3] > 0.4 and w[3] > 2 * w[0]
    # a dataset nearer the target outweighs an equal one farther away
    w2 = kriging_weights(rho, np.array([0.5, 2.0]), np.array([[0, 4], [4, 0]], dtype=float))
    assert w2[0] > w2[1] and w2.sum() == pytest.approx(1.0)


def test_kriged_quality_stands_a_models_mean_in_for_a_missing_result():
    X = np.array([[1.0, 0.0, np.nan], [0.5, 0.5, 0.5], [np.nan, np.nan, np.nan]])
    w = np.array([0.5, 0.25, 0.25])
    out = kriged(X, w)
    assert out[0] == pytest.approx(0.5 * 1.0 + 0.25 * 0.0 + 0.25 * 0.5)
    assert out[1] == pytest.approx(0.5)
    assert out[2] == pytest.approx(np.nanmean(X))  # no result anywhere: the global mean


def test_column_correlations_are_pairwise_complete():
    X = np.array([[0.1, 0.2, np.nan], [0.5, 0.6, 1.0], [0.9, 1.0, 0.0], [0.3, 0.3, 0.5]])
    C = column_correlations(X)
    assert C[0, 1] == pytest.approx(np.corrcoef(X[:, 0], X[:, 1])[0, 1])
    assert C[0, 2] == pytest.approx(np.corrcoef(X[1:, 0], X[1:, 2])[0, 1])
    assert np.isnan(column_correlations(X[:2])[0, 1])  # two shared models are too few


def _cluster_zoo(seed=0):
    """Models carry two independent skills u and v. Four near-copies of a u-dataset and one
    v-dataset are known; the target asks for both skills alike and is as near each of the five."""
    rng = np.random.default_rng(seed)
    n = 40
    u, v = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    z = Zoo()
    for j in range(n):
        z.models[f"m{j}"] = ModelRow(name=f"m{j}", family="unet", num_parameters=1e6)
    known = {"u1": u, "u2": u, "u3": u, "u4": u, "v1": v}
    for d, skill in known.items():
        z.datasets[d] = DatasetRow(name=d, size=500.0)
        for j in range(n):
            z.results.append(ResultRow(f"m{j}", d, "eval_accuracy", float(skill[j] + rng.normal(0, 0.05))))
    z.datasets["t"] = DatasetRow(name="t", size=500.0)
    names = list(known)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            z.similarities.append(SimilarityRow(a, b, 0.2 if a[0] == b[0] else 3.0, "profile"))
        z.similarities.append(SimilarityRow("t", a, 1.5, "profile"))
    return z, names, {f"m{j}": 0.5 * u[j] + 0.5 * v[j] for j in range(n)}


def test_kriging_evidence_beats_the_mean_where_neighbours_are_copies():
    z, context, target_quality = _cluster_zoo()
    tables = tables_from_zoo(z)
    truth = np.array([target_quality[m] for m in tables.models])
    names, F = feature_matrix(tables, "t", context, families=("evidence",))
    f = {n: F[:, j] for j, n in enumerate(names)}
    r = {n: np.corrcoef(f[n], truth)[0, 1] for n in ("e_krig", "e_mean", "e_sw1.0")}
    assert r["e_krig"] > r["e_mean"] + 0.03 and r["e_krig"] > r["e_sw1.0"] + 0.03
    assert r["e_krig"] > 0.9


def test_a_training_rows_kriging_evidence_never_reads_its_own_dataset():
    z, names, _ = _cluster_zoo()
    context = [d for d in names if d != "u1"]
    _, F1 = feature_matrix(tables_from_zoo(z), "u1", context, families=("evidence",))
    z.results = [r for r in z.results if r.dataset != "u1"]
    names2, F2 = feature_matrix(tables_from_zoo(z), "u1", context, families=("evidence",))
    np.testing.assert_allclose(F1[:, names2.index("e_krig")], F2[:, names2.index("e_krig")])


def test_without_distances_kriging_weighs_the_datasets_alike():
    """No similarity rows: no correlogram can be fitted, and the evidence is the plain mean."""
    z, names, _ = _cluster_zoo()
    z.similarities = []
    tables = tables_from_zoo(z)
    cols, F = feature_matrix(tables, "t", names, families=("evidence",))
    np.testing.assert_allclose(F[:, cols.index("e_krig")], F[:, cols.index("e_mean")])
