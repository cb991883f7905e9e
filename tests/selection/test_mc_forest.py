"""LightGBM models compiled by lleaves (mc.forest): the same predictions, cached per model and machine."""

import lightgbm as lgb
import numpy as np
import pytest

from services.selection.mc import forest as forest_module
from services.selection.mc.forest import compile_forest, probe_rows
from tests.conftest import requires_lleaves


def features(n=400, seed=0):
    """Continuous columns with missing values and exact zeros, and an integer category column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random(n) < 0.2, 1] = np.nan
    X[rng.random(n) < 0.2, 2] = 0.0
    X[:, 4] = rng.integers(0, 6, size=n)
    y = X[:, 0] + np.nan_to_num(X[:, 1]) * 0.5 + (X[:, 4] == 3) + rng.normal(0, 0.1, size=n)
    return X, y


def booster(objective="regression", seed=0):
    X, y = features(seed=seed)
    params = dict(n_estimators=30, num_leaves=7, min_child_samples=5, verbose=-1, random_state=seed)
    if objective == "lambdarank":
        model = lgb.LGBMRanker(**params).fit(X, np.clip(np.round(y - y.min()), 0, 4).astype(int), group=[40] * 10,
                                             categorical_feature=[4])
    else:
        model = lgb.LGBMRegressor(**params).fit(X, y, categorical_feature=[4])
    return model.booster_


@requires_lleaves
@pytest.mark.parametrize("objective", ["regression", "lambdarank"])
def test_a_compiled_forest_predicts_what_lightgbm_predicts_from_float32_rows(objective):
    b = booster(objective)
    forest = compile_forest(b)
    assert forest is not None
    X, _ = features(n=300, seed=1)
    X32 = np.ascontiguousarray(X, dtype=np.float32)  # what the rank path hands LightGBM
    np.testing.assert_allclose(forest.predict(X32), b.predict(X32, num_threads=1), rtol=1e-12, atol=1e-12)
    probe = probe_rows(b)  # both sides of every split, missing values, zeros, categories
    splits = b.trees_to_dataframe()
    named = {int(c) for t in splits.loc[splits["decision_type"] == "==", "threshold"] for c in str(t).split("||")}
    assert named <= set(probe[:, 4].tolist()) and np.isnan(probe).any()
    assert named or objective == "lambdarank"  # the regression splits on categories; the ranker need not
    np.testing.assert_allclose(forest.predict(probe), b.predict(probe, num_threads=1), rtol=1e-12, atol=1e-12)


@requires_lleaves
def test_object_code_is_cached_per_model_and_loaded_without_compiling(tmp_path, monkeypatch):
    first, second = booster(seed=0), booster(seed=1)
    assert compile_forest(first, cache_dir=tmp_path, cached_only=True) is None  # nothing cached yet
    made = compile_forest(first, cache_dir=tmp_path)
    assert made is not None and made.cache_file.exists() and made.cache_file.parent == tmp_path
    assert list(tmp_path.iterdir()) == [made.cache_file]  # staged files moved in whole, none left over

    import lleaves.compiler

    def no_compiling(*args, **kwargs):
        raise AssertionError("a cached model was compiled again")

    monkeypatch.setattr(lleaves.compiler, "compile_to_module", no_compiling)
    loaded = compile_forest(first, cache_dir=tmp_path, cached_only=True)
    assert loaded is not None and loaded.cache_file == made.cache_file
    X, _ = features(n=50, seed=2)
    np.testing.assert_allclose(loaded.predict(X), first.predict(X.astype(np.float32), num_threads=1), rtol=1e-12)
    assert compile_forest(second, cache_dir=tmp_path, cached_only=True) is None  # another model, another key


@requires_lleaves
def test_a_forest_that_disagrees_with_lightgbm_on_the_probe_is_not_used(monkeypatch):
    original = forest_module.CompiledForest.predict
    monkeypatch.setattr(forest_module.CompiledForest, "predict", lambda self, X: original(self, X) + 1e-6)
    assert compile_forest(booster()) is None


def test_without_lleaves_lightgbm_predicts(monkeypatch):
    import builtins

    real_import = builtins.__import__
    import importlib.util

    real_find = importlib.util.find_spec

    def without_lleaves(name, *args, **kwargs):
        if name == "lleaves":
            raise ImportError("no lleaves here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_lleaves)
    assert compile_forest(booster()) is None
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lleaves" else real_find(name, *a))
    assert not forest_module.available()


def test_probe_rows_take_thresholds_beyond_float32_to_its_edge_without_warnings(monkeypatch):
    """LightGBM writes thresholds up to DBL_MAX; the probe clips them to float32's largest value and
    probes its neighbour, infinity, without an overflow warning."""
    import warnings

    b = booster()
    largest = float(np.finfo(np.float32).max)
    monkeypatch.setattr(forest_module, "_splits", lambda booster: {0: [1.7976931348623157e308, -1e300, 0.5]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = probe_rows(b)
    column = set(X[:, 0][np.isfinite(X[:, 0])].tolist()) | {v for v in X[:, 0].tolist() if np.isinf(v)}
    assert {largest, -largest, float(np.float32(0.5))} <= column
    assert np.inf in column and -np.inf in column
