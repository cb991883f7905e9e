"""Synthetic zoo with a known right answer: datasets lie on a line, each model has a home
position; quality falls with the distance between the model's home and the dataset."""

import importlib.util

import numpy as np
import pytest
import torch

from services.selection.mc.evaluate import (
    best_on_average, leave_one_dataset_out, random_method, ranker_method, selection_metrics, similarity_weighted,
)
from services.selection.mc.graph import tables_from_zoo
from services.selection.mc.predictor import Ranker, RankerConfig
from services.selection.mc.records import DatasetRow, ModelRow, ResultRow, SimilarityRow, Zoo
from tests.conftest import requires_lleaves

torch.set_num_threads(1)
POS = {f"d{i}": float(i) for i in range(8)}


def quality(home: float, x: float, skill: float) -> float:
    return 0.5 + 0.4 * np.exp(-((home - x) ** 2) / 2.0) + 0.05 * skill


def make_zoo(n_models=16, seed=0):
    rng = np.random.default_rng(seed)
    z = Zoo()
    homes = np.linspace(-0.5, 7.5, n_models)
    skill = rng.normal(size=n_models)  # a per-model constant: part of the known answer
    for j, h in enumerate(homes):
        z.models[f"m{j}"] = ModelRow(name=f"m{j}", family=("a", "b")[j % 2], num_parameters=1e6 * (1 + j % 3),
                                      features={"accuracy": float(rng.uniform(0.7, 0.9))})
    for d, x in POS.items():
        z.datasets[d] = DatasetRow(name=d, size=1000.0, metadata={"number_of_classes": 10})
        for j, h in enumerate(homes):
            z.results.append(ResultRow(f"m{j}", d, "eval_accuracy", quality(h, x, skill[j]) + rng.normal(0, 0.005)))
    for a in POS:
        for b in POS:
            if a < b:
                z.similarities.append(SimilarityRow(a, b, abs(POS[a] - POS[b]), "line"))
    return z, homes


FAST = RankerConfig(members=1, inner_folds=3, graph_folds=2, objective="regression", select_graph_family=False,
                    lgbm_grid=({"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 5},))


def test_ranker_beats_random_on_the_known_answer():
    zoo, homes = make_zoo()
    res = leave_one_dataset_out(zoo, {"mc": ranker_method(FAST), "random": random_method(0)}, ["d3", "d5"])
    for t in ("d3", "d5"):
        assert res["mc"][t].metrics["spearman"] > 0.7  # GAT primary: 0.80 on d5, 0.98 on d3
        assert res["mc"][t].metrics["pearson"] > 0.7
        assert res["random"][t].metrics["pearson"] < 0.5
    assert np.mean([r.metrics["rel@1"] for r in res["random"].values()]) < np.mean([r.metrics["rel@1"] for r in res["mc"].values()])


def test_ranker_top1_is_the_known_best():
    zoo, _ = make_zoo()
    res = leave_one_dataset_out(zoo, {"mc": ranker_method(FAST)}, ["d3", "d5"])
    for t in ("d3", "d5"):
        assert res["mc"][t].metrics["rel@1"] > 0.97


def test_leave_one_out_hides_every_record_of_the_target():
    zoo, _ = make_zoo()
    tampered = zoo.copy()
    rng = np.random.default_rng(1)
    tampered.results = [ResultRow(r.model, r.dataset, r.metric, float(rng.random())) if r.dataset == "d4" else r
                        for r in zoo.results]
    seen = []

    def spy(tables, target, train):
        assert target not in train and tables.quality[target].isna().all()
        s = ranker_method(FAST)(tables, target, train)
        seen.append(s)
        return s

    leave_one_dataset_out(zoo, {"mc": spy}, ["d4"])
    leave_one_dataset_out(tampered, {"mc": spy}, ["d4"])
    np.testing.assert_allclose(seen[0], seen[1])


def test_sparse_records_hide_a_share_of_the_training_results_but_none_of_the_truth():
    from services.selection.mc.evaluate import sparse_training_zoo

    zoo, _ = make_zoo(n_models=30)
    sparse = sparse_training_zoo(zoo, 0.4, seed=1)
    kept = {(r.model, r.dataset) for r in sparse.results}
    assert 0.3 < len(kept) / len(zoo.results) < 0.5 and sparse.models == zoo.models
    assert {(r.model, r.dataset) for r in sparse_training_zoo(zoo, 0.4, seed=1).results} == kept  # drawn, not random
    assert {(r.model, r.dataset) for r in sparse_training_zoo(zoo, 0.4, seed=2).results} != kept
    assert sparse_training_zoo(zoo, 1.0) is zoo
    seen = []

    def spy(tables, target, train):
        shown = {(m, d) for d in tables.datasets for m in tables.models if np.isfinite(tables.quality.loc[m, d])}
        seen.append((target, shown, train))
        return np.arange(len(tables.models), dtype=float)

    res = leave_one_dataset_out(zoo, {"spy": spy}, ["d3", "d5"], keep_fraction=0.4, keep_seed=1)
    for target, shown, train in seen:
        assert shown == {p for p in kept if p[1] != target} and target not in train
    # scored on every model's result on the target, not on the kept ones
    truth = tables_from_zoo(zoo).quality["d3"].to_numpy()
    assert res["spy"]["d3"].metrics == selection_metrics(np.arange(len(truth), dtype=float), truth)


def test_targets_in_worker_processes_give_the_serial_results_in_target_order():
    zoo, _ = make_zoo()
    methods = {"random": random_method(3), "mc": ranker_method(FAST)}
    targets = ["d5", "d2", "d7"]
    serial = leave_one_dataset_out(zoo, methods, targets)
    seen = []
    parallel = leave_one_dataset_out(zoo, methods, targets, jobs=2, progress=seen.append)
    assert len(seen) == 3 and all(list(parallel[m]) == targets for m in methods)
    for m in methods:
        for t in targets:
            assert parallel[m][t].metrics == serial[m][t].metrics and parallel[m][t].seconds > 0


def test_inductive_new_dataset_ranked_from_similarity_edges_without_retraining():
    zoo, homes = make_zoo()
    skill = np.random.default_rng(0).normal(size=len(homes))
    ranker = Ranker(FAST).fit(zoo)
    state = {k: v.clone() for k, v in ranker.embedder.state.items()}
    version = ranker.version
    x_new = 2.4  # a dataset never seen, between d2 and d3
    dists = {d: abs(x - x_new) for d, x in POS.items()}
    ranked = ranker.rank(zoo, "brand_new", distances=dists, metadata={"size": 1000, "number_of_classes": 10}, k=3)
    truth = {f"m{j}": quality(h, x_new, skill[j]) for j, h in enumerate(homes)}
    best = max(truth.values())
    assert truth[ranked[0].model] / best > 0.97
    assert ranker.version == version and all(torch.equal(state[k], ranker.embedder.state[k]) for k in state)
    ex = ranked[0].evidence
    assert [n["dataset"] for n in ex["similar_datasets"]][:2] in (["d2", "d3"], ["d3", "d2"])
    assert ex["predictor_version"] == version and ex["similarity_weighted_quality"] is not None
    assert ex["kriged_quality"] is not None
    assert ex["graph_score"] is not None


def test_new_result_changes_ranking_evidence_without_retrain_and_bytes_roundtrip():
    zoo, _ = make_zoo()
    ranker = Ranker(FAST).fit(zoo, hide=["d7"])
    before = {r.model: r for r in ranker.rank(zoo.without_results_of(["d7"]), "d7", k=None)}
    # a new measured result: a weak model turns out excellent on d6, the nearest dataset to d7
    zoo2 = zoo.without_results_of(["d7"])
    zoo2.results = [r for r in zoo2.results if not (r.model == "m0" and r.dataset == "d6")]
    zoo2.add_result(ResultRow("m0", "d6", "eval_accuracy", 0.99, source="measured"))
    after = {r.model: r for r in ranker.rank(zoo2, "d7", k=None)}
    assert after["m0"].score > before["m0"].score
    assert after["m0"].evidence["predictor_version"] == ranker.version
    clone = Ranker.from_bytes(ranker.to_bytes())
    again = {r.model: r.score for r in clone.rank(zoo2, "d7", k=None)}
    for m in again:
        assert again[m] == pytest.approx(after[m].score, abs=1e-9)
    assert [r.model for r in clone.rank(zoo2, "d7", candidates=["m1", "m15"], k=5)] in (["m1", "m15"], ["m15", "m1"])


def test_selection_metrics():
    m = selection_metrics(np.array([3.0, 2.0, 1.0, np.nan]), np.array([0.9, 0.8, 0.5, 0.99]))
    assert m["hit@1"] == 1.0 and m["rel@1"] == 1.0 and m["pearson"] > 0.9


def test_paired_comparison_reports_the_difference_its_interval_and_the_count_of_wins():
    from services.selection.mc.evaluate import paired_comparison

    rng = np.random.default_rng(0)
    b = {f"t{i}": float(v) for i, v in enumerate(rng.random(12))}
    shifted = paired_comparison({t: v + 0.1 for t, v in b.items()}, b)
    assert shifted["difference"] == pytest.approx(0.1) and shifted["interval"] == pytest.approx([0.1, 0.1])
    assert (shifted["wins"], shifted["ties"], shifted["losses"], shifted["targets"]) == (12, 0, 0, 12)
    noisy_a = {t: v + 0.05 + 0.2 * rng.standard_normal() for t, v in b.items()}
    noisy = paired_comparison({**noisy_a, "only-in-a": 1.0}, b)
    lo, hi = noisy["interval"]
    assert noisy["targets"] == 12 and lo < noisy["difference"] < hi and hi - lo > 0.1
    assert noisy["wins"] + noisy["ties"] + noisy["losses"] == 12 and noisy == paired_comparison(noisy_a, b)
    assert paired_comparison(noisy_a, b, confidence=0.5)["interval"][1] < hi


def test_training_rows_graph_scores_never_see_their_own_dataset():
    """The graph score of a training row comes from an encoder that never saw that dataset's
    results: tampering with them leaves its own graph scores unchanged."""
    zoo, _ = make_zoo()
    rng = np.random.default_rng(3)
    tampered = zoo.copy()
    tampered.results = [ResultRow(r.model, r.dataset, r.metric, float(rng.random())) if r.dataset == "d2" else r
                        for r in zoo.results]
    a = Ranker(FAST).fit(zoo, hide=["d7"])
    b = Ranker(FAST).fit(tampered, hide=["d7"])
    np.testing.assert_allclose(a.graph_scores["d2"], b.graph_scores["d2"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.graph_scores["d4"], b.graph_scores["d4"])  # d2 is evidence for the others


def test_degenerate_dataset_is_excluded_and_recorded():
    zoo, _ = make_zoo()
    z = zoo.copy()
    z.datasets["flat"] = DatasetRow(name="flat", size=1000.0, metadata={"number_of_classes": 10})
    z.results += [ResultRow(f"m{j}", "flat", "eval_accuracy", 0.5) for j in range(16)]
    z.similarities += [SimilarityRow("flat", d, 0.1 + abs(3 - x), "line") for d, x in POS.items()]
    r = Ranker(FAST).fit(z, hide=["d7"])
    assert "flat" in r.excluded and "flat" not in r.trained_on and r.cv["excluded"] == r.excluded
    keep = Ranker(RankerConfig(**{**FAST.__dict__, "drop_degenerate": False})).fit(z, hide=["d7"])
    assert "flat" in keep.trained_on and not keep.excluded


def test_inner_cv_choices_are_recorded_and_blend_is_reproducible():
    zoo, _ = make_zoo()
    r = Ranker(FAST).fit(zoo, hide=["d7"])
    for key in ("alpha", "tau", "prior", "prior_share", "graph_weight", "objective", "inner_score", "anchor", "shrink"):
        assert key in r.cv
    assert 0.0 <= r.cv["alpha"] <= 1.0 and r.cv["prior"] in (None, "e_mean", "e_cf1")
    assert r.cv["inner_score"] <= r.cv["inner_score_best"] + 1e-12  # one-SE rule never beats the best
    s1 = r.scores(tables_from_zoo(zoo.without_results_of(["d7"])), "d7")[0]
    s2 = Ranker(FAST).fit(zoo, hide=["d7"]).scores(tables_from_zoo(zoo.without_results_of(["d7"])), "d7")[0]
    np.testing.assert_allclose(s1, s2)


def test_ensemble_averages_its_seeded_members_and_survives_a_bytes_roundtrip():
    from dataclasses import replace

    from services.selection.mc.predictor import _z

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    ens = Ranker(replace(FAST, members=2, seed=5)).fit(tables, hide=["d6"])
    singles = [Ranker(replace(FAST, seed=k)).fit(tables, hide=["d6"]) for k in (5, 6)]
    assert [m.config.seed for m in ens.members] == [5, 6] and len(ens.cv["members"]) == 2
    expected = np.mean([_z(r.scores(tables, "d6")[0]) for r in singles], axis=0)
    np.testing.assert_allclose(ens.scores(tables, "d6")[0], expected, rtol=1e-6, atol=1e-9)
    back = Ranker.from_bytes(ens.to_bytes())
    assert back.version == ens.version and len(back.members) == 2
    np.testing.assert_allclose(back.scores(tables, "d6")[0], ens.scores(tables, "d6")[0], rtol=1e-6, atol=1e-9)
    top = back.rank(tables, "d6", k=1)[0]
    assert top.evidence["predictor_version"] == ens.version and top.evidence["graph_score"] is not None


def test_latency_setup_is_shared_with_the_gateway_measurement(monkeypatch, tmp_path):
    from services.selection import bench

    zoo, _ = make_zoo()
    setup = bench.latency_setup(zoo, n_models=40, config=FAST)
    assert len(setup.zoo.models) == 40 and len(setup.candidates) == 40
    lat = bench.measure_rank_latency(setup=setup, calls=5)
    assert lat["candidates"] == 40 and lat["target"] == setup.target and lat["p99_ms"] >= lat["p50_ms"] > 0
    assert all(lat[f"{kind}_p99_ms"] >= lat[f"{kind}_p50_ms"] > 0 for kind in ("cold", "existing_cold", "warm", "reference"))
    # the service's compiled LightGBM models beside LightGBM's own predict, the compiled ones served after;
    # where lleaves is not installed, LightGBM's predict alone
    served = "compiled" if importlib.util.find_spec("lleaves") else "lightgbm"
    assert lat["inference"] == served and set(lat["by_inference"]) == {served, "lightgbm"}
    assert lat["by_inference"][served]["p50_ms"] == lat["p50_ms"]
    assert (setup.ranker.forest is not None) == (served == "compiled")
    # each cold call (5 with each inference, one first) ranked a new dataset; the tables keep only the last few
    from services.selection.mc.predictor import RECENT_TARGETS

    assert len(setup.tables.__dict__["_memo"]["recent_targets"]) == min(2 * 5 + 1, RECENT_TARGETS)

    write_benchmark_dir(zoo, tmp_path)
    monkeypatch.setattr(bench, "latency_setup", lambda z, **kw: setup)
    monkeypatch.setattr(bench, "default_methods", lambda: {"random": random_method(0), bench.PRIMARY: ranker_method(FAST)})
    seen = []

    def gateway(z, ranker, target, candidates):
        seen.append((z, ranker, target, candidates))
        return {"p99_ms": 1.0}

    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "pearson_correlation.csv").write_text(",d3,d9,average\nweak,-0.5,0.1,0\nstrong,0.9,0.1,0\n")
    out = bench.run_benchmark(data_dir=tmp_path, targets="d3", latency=True, gateway_latency_fn=gateway,
                              progress=lambda s: None)
    assert len(seen) == 1
    z, ranker, target, candidates = seen[0]
    assert z is setup.zoo and ranker is setup.ranker and target == setup.target and candidates == setup.candidates
    assert out["latency"]["gateway"] == {"p99_ms": 1.0} and out["latency"]["in_process"]["candidates"] == 40
    assert out["exclude_degenerate_training"] is True and out["excluded_from_training"] == []
    from services.common.hardware import cpu_model

    assert out["device"] == f"cpu ({cpu_model()}), torch threads=1" and out["jobs"] == 1
    # the primary against each baseline and the best published method, per target
    primary = out["methods"][bench.PRIMARY]["per_target"]["d3"]
    vs_random = out["paired"]["baselines"]["random"]["pearson"]
    assert vs_random["targets"] == 1 and vs_random["difference"] == pytest.approx(
        primary["pearson"] - out["methods"]["random"]["per_target"]["d3"]["pearson"])
    published = out["paired"]["published"]["pearson"]
    assert published["method"] == "strong" and published["difference"] == pytest.approx(primary["pearson"] - 0.9)


def test_chosen_ablations_run_beside_the_primary_and_are_compared_with_it(monkeypatch, tmp_path):
    from services.selection import bench

    zoo, _ = make_zoo()
    write_benchmark_dir(zoo, tmp_path)
    monkeypatch.setattr(bench, "default_methods", lambda: {"random": random_method(0), bench.PRIMARY: ranker_method(FAST)})
    monkeypatch.setattr(bench, "ablation_methods", lambda: {"variant": random_method(1), "other": random_method(2)})
    out = bench.run_benchmark(data_dir=tmp_path, targets="d3,d6", ablations=["variant"], progress=lambda s: None)
    assert set(out["methods"]) == {"random", bench.PRIMARY, "variant"}
    vs = out["paired"]["ablations"]["variant"]["rel@1"]
    assert vs["targets"] == 2 and vs["difference"] == pytest.approx(
        out["methods"][bench.PRIMARY]["rel@1"] - out["methods"]["variant"]["rel@1"])
    with pytest.raises(ValueError, match="unknown ablations"):
        bench.run_benchmark(data_dir=tmp_path, targets="d3", ablations=["nope"], progress=lambda s: None)


def test_bench_on_sparse_records_reports_the_share_and_leaves_published_numbers_out(monkeypatch, tmp_path):
    from services.selection import bench

    zoo, _ = make_zoo()
    write_benchmark_dir(zoo, tmp_path)
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "pearson_correlation.csv").write_text(",d3,average\nstrong,0.9,0\n")
    monkeypatch.setattr(bench, "default_methods", lambda: {"random": random_method(0), bench.PRIMARY: ranker_method(FAST)})
    full = bench.run_benchmark(data_dir=tmp_path, targets="d3", progress=lambda s: None)
    out = bench.run_benchmark(data_dir=tmp_path, targets="d3", keep_fraction=0.3, keep_seed=4, progress=lambda s: None)
    assert (out["keep_fraction"], out["keep_seed"]) == (0.3, 4) and full["keep_fraction"] == 1.0
    assert "published" in full["paired"] and "published" not in out["paired"]
    assert out["methods"][bench.PRIMARY]["per_target"]["d3"]["pearson"] != full["methods"][bench.PRIMARY]["per_target"]["d3"]["pearson"]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="keep_fraction"):
            bench.run_benchmark(data_dir=tmp_path, targets="d3", keep_fraction=bad, progress=lambda s: None)


def test_bench_refuses_data_it_cannot_evaluate_with_the_reason_and_no_traceback(tmp_path):
    from typer.testing import CliRunner

    from services.cli import app
    from services.selection import bench

    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no records.csv"):
        bench.run_benchmark(data_dir=empty, progress=lambda s: None)
    one_model = tmp_path / "one-model"  # no dataset compares two models: nothing to learn
    one_model.mkdir()
    (one_model / "records.csv").write_text("model,finetuned_dataset,eval_accuracy\nm1,d1,0.5\nm1,d2,0.6\n")
    with pytest.raises(ValueError, match="datasets with results for at least two models each"):
        bench.run_benchmark(data_dir=one_model, progress=lambda s: None)
    zoo, _ = make_zoo()
    (tmp_path / "zoo").mkdir()
    write_benchmark_dir(zoo, tmp_path / "zoo")
    with pytest.raises(ValueError, match="no target with results among nope"):
        bench.run_benchmark(data_dir=tmp_path / "zoo", targets="nope", progress=lambda s: None)
    for folder, reason in ((empty, "no records.csv"), (one_model, "at least two models each")):
        refused = runner.invoke(app, ["bench", "selection", "--data", str(folder)])
        assert refused.exit_code == 2 and reason in refused.output and "Traceback" not in refused.output


def write_benchmark_dir(zoo, path):
    """The synthetic zoo in the TransferGraph file format."""
    import pandas as pd

    pd.DataFrame([{"model": r.model, "finetuned_dataset": r.dataset, "eval_accuracy": r.value} for r in zoo.results]
                 ).to_csv(path / "records.csv", index=False)
    pd.DataFrame([{"model": m.name, "model_type": m.family, "number_of_parameters": m.num_parameters}
                  for m in zoo.models.values()]).to_csv(path / "model_config_dataset.csv", index=False)
    pd.DataFrame([{"finetune_dataset": d, "size": 1000, "number_of_classes": 10} for d in POS]
                 ).to_csv(path / "target_dataset_features.csv", index=False)
    names = list(POS)
    pd.DataFrame([[abs(POS[a] - POS[b]) for b in names] for a in names], index=names, columns=names
                 ).to_csv(path / "corr_domain_similarity_line.csv")


def test_low_rank_factors_recover_a_rank_one_matrix_and_rank_is_fast_numpy():
    from services.selection.mc.predictor import cf_score, low_rank_factors

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=6)
    X = 0.5 + np.outer(a, b) * 0.1
    mu, UF, V = low_rank_factors(X, 1)
    np.testing.assert_allclose(mu[:, None] + UF @ V.T, X, atol=1e-9)
    # a target equal to dataset 2 (distance 0, the others far): the prediction is its column
    dist = np.array([9.0, 9.0, 0.0, 9.0, 9.0, 9.0])
    assert np.corrcoef(cf_score(X, dist, 1, tau=0.01), X[:, 2])[0, 1] > 0.999


def test_rank_memoises_graph_score_per_target_and_inline_targets_match():
    zoo, _ = make_zoo()
    ranker = Ranker(FAST).fit(zoo, hide=["d7"])
    tables = tables_from_zoo(zoo.without_results_of(["d7"]))
    cold = [(r.model, r.score) for r in ranker.rank(tables, "d7", k=None)]
    assert any(isinstance(k, tuple) and k[0] == "graph_score" for k in tables._memo)
    warm = [(r.model, r.score) for r in ranker.rank(tables, "d7", k=None)]
    assert cold == warm
    fresh = [(r.model, r.score) for r in ranker.rank(tables_from_zoo(zoo.without_results_of(["d7"])), "d7", k=None)]
    assert [m for m, _ in fresh] == [m for m, _ in cold]


def test_pretrain_match_is_standardised_across_models_per_target():
    from services.selection.mc.predictor import pretrain_match

    m = pretrain_match(np.array([1.0, 3.0, np.nan, 5.0]))
    assert np.isnan(m[2]) and m[0] > m[1] > m[3]  # nearer pretraining data: higher
    assert np.nanmean(m) == pytest.approx(0.0) and np.nanstd(m) == pytest.approx(1.0)
    assert np.array_equal(pretrain_match(np.array([2.0, 2.0])), np.zeros(2))  # all tie: no signal
    assert np.isnan(pretrain_match(np.array([2.0, np.nan]))).all()  # one distance compares nothing


def test_source_evidence_reads_a_model_near_its_own_pretraining_data():
    """A is strong on the datasets near its source and weak far from it, B is the same everywhere;
    the target lies near A's source and is equally similar to every dataset. Neighbour evidence
    and the mean cannot tell A from B; the source evidence can."""
    from services.selection.mc.predictor import feature_matrix

    z = Zoo()
    z.models["A"] = ModelRow(name="A", family="unet", num_parameters=1e6, pretraining_data="srcA")
    z.models["B"] = ModelRow(name="B", family="unet", num_parameters=1e6, pretraining_data="srcB")
    near, far = ["x1", "x2", "x3"], ["y1", "y2", "y3"]
    for d in near + far + ["t"]:
        z.datasets[d] = DatasetRow(name=d, size=500.0)
        z.similarities.append(SimilarityRow(d, "srcA", 1.0 if d in near + ["t"] else 5.0, "profile"))
        z.similarities.append(SimilarityRow(d, "srcB", 2.0, "profile"))
    for d in near + far:
        z.results.append(ResultRow("A", d, "eval_accuracy", 0.9 if d in near else 0.3))
        z.results.append(ResultRow("B", d, "eval_accuracy", 0.6))
        z.similarities.append(SimilarityRow("t", d, 3.0, "profile"))
    tables = tables_from_zoo(z)
    names, F = feature_matrix(tables, "t", near + far, families=("evidence", "source", "relative"))
    f = {n: dict(zip(tables.models, F[:, j])) for j, n in enumerate(names)}
    assert f["e_mean"]["A"] == pytest.approx(f["e_mean"]["B"]) == pytest.approx(0.5)
    assert f["e_sw0.5"]["A"] == pytest.approx(f["e_sw0.5"]["B"])
    for tau in (0.5, 1.0):
        assert f[f"e_src{tau}"]["A"] > 0.85 and f[f"e_src{tau}"]["B"] == pytest.approx(0.5)
        assert f[f"r_e_src{tau}"]["A"] == 1.0 and f[f"r_e_src{tau}"]["B"] == 0.0
    # the row's own dataset never feeds it: with x1 as the target, x1's results are not evidence
    _, F1 = feature_matrix(tables, "x1", near + far, families=("source",))
    z.results = [r for r in z.results if r.dataset != "x1"]
    _, F2 = feature_matrix(tables_from_zoo(z), "x1", near + far, families=("source",))
    np.testing.assert_allclose(F1, F2)


def test_relative_features_are_the_standing_among_the_candidates():
    from services.selection.mc.predictor import _relative

    r = _relative(np.array([0.2, 0.9, np.nan, 0.2, 0.5]))
    assert r[1] == 1.0 and r[0] == r[3] == 0.0 + 0.5 / 3 and r[4] == pytest.approx(2 / 3) and np.isnan(r[2])
    assert np.array_equal(_relative(np.array([np.nan, 3.0])), np.array([np.nan, 0.5]), equal_nan=True)  # one model: no standing


def specialist_zoo(families=6, seed=0):
    """One target per family, one specialist per family pretrained on that family's source, and a
    generalist: no other dataset shows how a specialist does on its own family, so only the
    distance between a target and each model's pretraining data can point at it."""
    rng = np.random.default_rng(seed)
    z = Zoo()
    for k in range(families):
        z.models[f"s{k}"] = ModelRow(name=f"s{k}", family="unet", num_parameters=1e6, pretraining_data=f"src{k}")
        z.datasets[f"t{k}"] = DatasetRow(name=f"t{k}", size=500.0)
    z.models["g"] = ModelRow(name="g", family="unet", num_parameters=1e6, pretraining_data="srcG")
    for k in range(families):
        for j in range(families):
            value = 0.9 if j == k else 0.5
            z.results.append(ResultRow(f"s{j}", f"t{k}", "eval_accuracy", value + rng.normal(0, 0.005)))
            z.similarities.append(SimilarityRow(f"t{k}", f"src{j}", 1.0 if j == k else 5.0, "profile"))
            if j > k:
                z.similarities.append(SimilarityRow(f"t{k}", f"t{j}", 4.0, "profile"))
        z.results.append(ResultRow("g", f"t{k}", "eval_accuracy", 0.7 + rng.normal(0, 0.005)))
        z.similarities.append(SimilarityRow(f"t{k}", "srcG", 3.0, "profile"))
    return z


def test_ranker_finds_the_specialist_through_its_pretraining_data():
    from services.selection.mc.evaluate import best_on_average

    zoo = specialist_zoo()
    config = RankerConfig(families=("model", "dataset", "evidence"), embedding="none", inner_folds=3, members=1,
                          lgbm_grid=FAST.lgbm_grid)
    targets = ["t0", "t3", "t5"]
    res = leave_one_dataset_out(zoo, {"mc": ranker_method(config), "boa": best_on_average}, targets)
    assert all(res["mc"][t].metrics["hit@1"] == 1.0 for t in targets)
    assert all(res["boa"][t].metrics["hit@1"] == 0.0 for t in targets)  # the generalist, everywhere
    ranker = Ranker(config).fit(zoo.without_results_of(["t0"]), hide=["t0"], targets=["t0"])
    assert ranker.cv["pretrain_weight"] > 0 or ranker.cv["correction"] == "lgbm"
    top = ranker.rank(zoo.without_results_of(["t0"]), "t0", k=1)[0]
    assert top.model == "s0" and top.evidence["pretraining_data_distance"] == pytest.approx(1.0)


@pytest.mark.parametrize("embedding", ["sage", "node2vec"])
def test_other_embeddings_rank_the_known_answer(embedding):
    """The comparison embeddings run end to end (node2vec needs gensim and pkg_resources)."""
    zoo, _ = make_zoo(n_models=8)
    config = RankerConfig(embedding=embedding, inner_folds=3, graph_folds=2, lgbm_grid=FAST.lgbm_grid, members=1)
    res = leave_one_dataset_out(zoo, {"mc": ranker_method(config)}, ["d4"])
    assert res["mc"]["d4"].metrics["spearman"] > 0.5


def test_nearest_pretraining_baseline_ranks_by_pretraining_distance_then_best_on_average():
    from services.selection.mc.evaluate import best_on_average, nearest_pretraining

    zoo = specialist_zoo(families=4)
    zoo.models["u"] = ModelRow(name="u", family="unet", num_parameters=1e6, pretraining_data="unprofiled")
    for k in range(4):
        zoo.results.append(ResultRow("u", f"t{k}", "eval_accuracy", 0.6))
    res = leave_one_dataset_out(zoo, {"near": nearest_pretraining}, ["t0", "t2"])
    assert all(r.metrics["hit@1"] == 1.0 for r in res["near"].values())
    tables = tables_from_zoo(zoo.without_results_of(["t1"]))
    train = ["t0", "t2", "t3"]
    score = dict(zip(tables.models, nearest_pretraining(tables, "t1", train)))
    # s1 (distance 1), then g (3), then the other specialists (5, ties by best-on-average), then u (no distance)
    assert max(score, key=score.get) == "s1" and score["g"] > max(score[f"s{j}"] for j in (0, 2, 3))
    assert score["u"] == min(score.values())
    # with no pretraining distances at all it is best-on-average
    zoo.similarities = [s for s in zoo.similarities if not s.dataset_b.startswith("src")]
    tables = tables_from_zoo(zoo.without_results_of(["t1"]))
    near, boa = nearest_pretraining(tables, "t1", train), best_on_average(tables, "t1", train)
    assert int(np.argmax(near)) == int(np.nanargmax(boa))


def test_top_blend_puts_its_own_pick_first_and_keeps_the_main_order_below():
    from dataclasses import replace

    from services.selection.mc.predictor import _z

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    cfg = replace(FAST, top_blend=True, corrections=("lgbm", "sw", "nn"), taus=(0.25, 0.5))
    r = Ranker(cfg).fit(tables, hide=["d6"])
    assert r.top_blend is not None and r.cv["top_blend"] == r.top_blend
    assert r.top_blend["correction"] in (None, "lgbm", "e_sw0.25", "e_sw0.5", "e_nn1")
    score, top, names, F, _ = r._score_matrix(tables, "d6")
    main = _z(r._blend_score(names, F))
    pick = int(np.argmax(r._blend_score(names, F, r.top_blend)))
    final = r.scores(tables, "d6")[0]
    assert int(np.argmax(final)) == pick
    others = [i for i in range(len(final)) if i != pick]
    assert list(np.argsort(-final[others], kind="stable")) == list(np.argsort(-main[others], kind="stable"))
    # among a candidate subset that leaves the pick out, the subset's own top-blend best goes first
    rest = [tables.models[i] for i in others[:4]]
    want = max(rest, key=lambda m: r._blend_score(names, F, r.top_blend)[tables.models.index(m)])
    assert r.rank(tables, "d6", candidates=rest, k=4)[0].model == want
    back = Ranker.from_bytes(r.to_bytes())
    np.testing.assert_allclose(back.scores(tables, "d6")[0], final)


def test_neighbour_ceiling_finds_a_dataset_that_mirrors_the_target():
    from services.selection.mc.evaluate import nearest_dataset, oracle_ceilings

    zoo, _ = make_zoo(n_models=10)
    # a far-away copy of d2: the oracle reads the target's results and finds it; similarity does not
    copy = [ResultRow(r.model, "d2copy", r.metric, r.value) for r in zoo.results if r.dataset == "d2"]
    zoo.datasets["d2copy"] = DatasetRow(name="d2copy", size=1000.0, metadata={"number_of_classes": 10})
    zoo.results += copy
    for d, x in POS.items():
        zoo.similarities.append(SimilarityRow("d2copy", d, 50.0 + x, "line"))
    ceilings = oracle_ceilings(zoo, ["d2"])
    ceiling = ceilings["oracle_nearest_dataset"]
    assert ceiling["hit@1"] == 1.0 and ceiling["rel@1"] == pytest.approx(1.0) and ceiling["pearson"] > 0.99
    res = leave_one_dataset_out(zoo, {"nn": nearest_dataset}, ["d2"])
    assert res["nn"]["d2"].metrics["pearson"] < ceiling["pearson"]
    # every temperature's similarity weighting is bounded by the per-metric best one
    tau = ceilings["oracle_similarity_tau"]
    res = leave_one_dataset_out(zoo, {"sw": similarity_weighted, "boa": best_on_average}, ["d2"])
    for name in ("sw", "boa"):
        for k in ("pearson", "spearman", "rel@1", "hit@1"):
            assert res[name]["d2"].metrics[k] <= tau[k] + 1e-12


def _two_dataset_zoo(target_truth: dict[str, float]) -> Zoo:
    """Models A..D on two known datasets: A best on d1, B on d2, C second on both (first under equal
    weights), D below C on both (first under no weighting at all). The target holds `target_truth`."""
    known = {"d1": {"A": 1.0, "B": 0.0, "C": 0.6, "D": 0.5}, "d2": {"A": 0.0, "B": 1.0, "C": 0.6, "D": 0.5}}
    z = Zoo()
    for m in "ABCD":
        z.models[m] = ModelRow(name=m)
    for d, values in {**known, "t": target_truth}.items():
        z.datasets[d] = DatasetRow(name=d, size=100.0)
        z.results += [ResultRow(m, d, "eval_accuracy", 0.5 + 0.4 * v) for m, v in values.items()]
    z.similarities += [SimilarityRow("t", "d1", 1.0, "x"), SimilarityRow("t", "d2", 1.0, "x"), SimilarityRow("d1", "d2", 1.0, "x")]
    return z


def test_convex_weighting_ceiling_finds_a_pick_weights_can_make_and_no_other():
    from services.selection.mc.evaluate import oracle_ceilings

    # B truly best: weighting d2 alone puts it first, though equal weights pick C
    zoo = _two_dataset_zoo({"A": 0.2, "B": 1.0, "C": 0.5, "D": 0.1})
    assert int(np.argmax(best_on_average(tables_from_zoo(zoo), "t", ["d1", "d2"]))) == 2
    convex = oracle_ceilings(zoo, ["t"])["oracle_convex_weights"]
    assert convex["rel@1"] == pytest.approx(1.0) and convex["hit@1"] == 1.0
    # D truly best, B next: C beats D under every weighting, so the bound is B's quality over D's
    zoo = _two_dataset_zoo({"A": 0.2, "B": 0.9, "C": 0.5, "D": 1.0})
    convex = oracle_ceilings(zoo, ["t"])["oracle_convex_weights"]
    assert convex["rel@1"] == pytest.approx((0.5 + 0.4 * 0.9) / (0.5 + 0.4 * 1.0)) and convex["hit@1"] == 0.0
    assert np.isnan(convex["pearson"])


def test_convex_weighting_ceiling_gives_a_shared_first_place_to_the_oracle():
    from services.selection.mc.evaluate import convex_weighting_ceiling

    # sparse records: A and B have the same single top result, so no weighting puts either strictly
    # first; a bound counts the tie, else it would find no model at all
    X = np.array([[1.0, np.nan], [1.0, np.nan], [0.2, 0.3]])
    assert convex_weighting_ceiling(X, np.array([0.5, 0.9, 0.7])) == pytest.approx(1.0)
    assert convex_weighting_ceiling(X, np.array([0.5, 0.6, 1.0])) == pytest.approx(0.6)


def test_ranker_chooses_the_informative_similarity_method_by_inner_cv():
    zoo, _ = make_zoo(n_models=10)
    rng = np.random.default_rng(3)
    names = list(POS)
    for i, a in enumerate(names):  # a second measure that knows nothing about the datasets
        for b in names[i + 1:]:
            zoo.similarities.append(SimilarityRow(a, b, float(rng.uniform(1, 8)), "noise"))
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    assert sorted(tables.dist_by_method) == ["line", "noise"]
    np.testing.assert_allclose(tables.dist.loc["d5", "d3"], (2.0 + tables.dist_by_method["noise"].loc["d5", "d3"]) / 2)
    r = Ranker(FAST).fit(tables, hide=["d5"])
    assert r.cv["similarity"] == "line" and r.config.similarity == "line"
    assert r.cv["similarity_inner_scores"]["line"] > r.cv["similarity_inner_scores"]["noise"]
    line_only = Ranker(FAST).fit(tables.with_method("line"), hide=["d5"])
    np.testing.assert_allclose(r.scores(tables, "d5")[0], line_only.scores(tables.with_method("line"), "d5")[0])
    top = r.rank(tables, "d5", k=3)[0]
    assert [n["dataset"] for n in top.evidence["similar_datasets"]][:2] in (["d4", "d6"], ["d6", "d4"])
    back = Ranker.from_bytes(r.to_bytes())
    assert back.config.similarity == "line"
    np.testing.assert_allclose(back.scores(tables, "d5")[0], r.scores(tables, "d5")[0])
    # an inline target's distances stand for every method's
    new = tables.with_target("new", {"d4": 0.5, "d6": 0.5}).with_method("line")
    assert new.dist.loc["new", "d4"] == 0.5 and new.dist.loc["d4", "new"] == 0.5


def test_gat_inference_with_its_self_loops_in_the_graph_equals_the_training_network():
    """edge_scores adds GAT's self-loops once per graph; GATConv adding them per call gives the same."""
    from services.selection.mc.embed import GNNEmbedder, LinkEncoder

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    visible = [d for d in tables.datasets if d != "d5"]
    emb = GNNEmbedder(kind="gat", epochs=10, seed=1).fit(tables, visible)
    got = emb.edge_scores(tables, visible, ["d5"])["d5"]
    ref = LinkEncoder(emb.in_dim, emb.dim, "gat")
    ref.load_state_dict(emb.state)
    ref.eval()
    edges = emb._edges(tables)
    ei, ew = edges.graph(visible)
    with torch.no_grad():
        h = ref(emb._x(tables), ei, ew)
        want = ref.score(h[: edges.M], h[edges.M + edges.pos["d5"]].expand_as(h[: edges.M])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert all(conv.add_self_loops for conv in ref.convs)  # the reference adds them itself


def test_a_new_target_reuses_its_parent_tables_and_ranks_as_if_built_afresh():
    """with_target keeps a link to its parent; the numpy views derived from the parent's equal
    freshly built ones, and ranking a new dataset gives the scores of tables built without the link."""
    from services.selection.mc.predictor import _base, _Base

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    new = tables.with_target("new", {"d4": 0.7, "d6": 0.9, "d1": 3.0}, {"size": 500})
    assert new.__dict__["derived_from"] == (tables, "new")
    derived, fresh = _base(new), _Base(new)
    for field in ("norm", "ranks", "have", "have_f", "norm0", "ranks0", "model_feats", "pretrain", "dist"):
        np.testing.assert_array_equal(getattr(derived, field), getattr(fresh, field), err_msg=field)
    assert derived.pos == fresh.pos and derived.dist_pos == fresh.dist_pos
    assert new.dist.loc["new", "d4"] == new.dist.loc["d4", "new"] == 0.7 and np.isnan(new.dist.loc["new", "d2"])
    r = Ranker(FAST).fit(tables, hide=["d5"])
    unlinked = tables.with_target("new", {"d4": 0.7, "d6": 0.9, "d1": 3.0}, {"size": 500})
    del unlinked.__dict__["derived_from"]
    np.testing.assert_allclose(r.scores(new, "new")[0], r.scores(unlinked, "new")[0])
    ranked = r.rank(tables, "new", distances={"d4": 0.7, "d6": 0.9, "d1": 3.0}, metadata={"size": 500}, k=None)
    np.testing.assert_allclose(sorted(m.score for m in ranked), sorted(r.scores(unlinked, "new")[0]))


@pytest.mark.parametrize("kind", ["gat", "sage"])
def test_a_new_dataset_is_embedded_from_its_neighbours_cached_states_as_by_a_whole_forward_pass(kind):
    """The encoder's preprocessing is fitted on its training datasets, so a new node changes no
    other node: its embedding from its k neighbours' cached states equals a forward pass over the
    whole graph with it, and the models' states are the parent graph's."""
    from services.selection.mc.embed import GNNEmbedder

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    visible = [d for d in tables.datasets if d != "d5"]
    emb = GNNEmbedder(kind=kind, epochs=10, seed=1).fit(tables, visible)
    assert emb.stats is not None and emb.edge_scale > 0
    distances = {"d4": 0.6, "d6": 1.4, "d2": 2.5, "d0": 4.0}
    new = tables.with_target("new", distances, {"size": 3000, "number_of_classes": 4})
    fast = emb.edge_scores(new, visible, ["new"])["new"]
    assert ("gnn_states", id(emb), tuple(visible)) in tables.__dict__["_memo"]  # computed on the parent
    whole = tables.with_target("new", distances, {"size": 3000, "number_of_classes": 4})
    del whole.__dict__["derived_from"]  # no parent: the whole graph's forward pass
    slow = emb.edge_scores(whole, visible, ["new"])["new"]
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
    ei, ew = emb.message_graph(whole, visible)
    with torch.no_grad():
        states = emb._net().layer_states(emb._x(whole), ei, ew)
    parent_states = emb.layer_states(tables, visible)
    M = len(tables.models)
    np.testing.assert_allclose(states[-1][: M + len(tables.datasets)].numpy(), parent_states[-1].numpy(), rtol=1e-5, atol=1e-6)
    # the preprocessing travels with the encoder
    back = GNNEmbedder.from_bytes(emb.to_bytes())
    assert back.stats == emb.stats and back.edge_scale == emb.edge_scale
    np.testing.assert_allclose(back.edge_scores(new, visible, ["new"])["new"], fast, rtol=1e-6)
    # a different neighbourhood gives a different score
    far = tables.with_target("far", {"d0": 0.3, "d1": 0.8}, {})
    assert not np.allclose(emb.edge_scores(far, visible, ["far"])["far"], fast)


def test_an_encoder_stored_before_its_preprocessing_was_kept_still_ranks_a_new_dataset():
    """Graph versions stored earlier hold no FeatureStats / edge scale: they load, standardise over
    the tables at hand and scale the similarity edges per graph, as when they were trained."""
    import io

    from services.selection.mc.embed import GNNEmbedder, LinkEncoder, _Edges
    from services.selection.mc.graph import node_features

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    visible = [d for d in tables.datasets if d != "d5"]
    emb = GNNEmbedder(kind="gat", epochs=10, seed=1).fit(tables, visible)
    buf = io.BytesIO()
    torch.save({"cfg": (emb.kind, emb.dim, emb.epochs, emb.lr, emb.k, emb.hide_fraction, emb.seed, emb.in_dim),
                "state": emb.state}, buf)  # the format before
    old = GNNEmbedder.from_bytes(buf.getvalue())
    assert old.stats is None and old.edge_scale is None
    new = tables.with_target("new", {"d4": 0.6, "d6": 1.4}, {})
    got = old.edge_scores(new, visible, ["new"])["new"]
    ref = LinkEncoder(emb.in_dim, emb.dim, "gat")
    ref.load_state_dict(emb.state)
    ref.eval()
    edges = _Edges(new, emb.k)
    ei, ew = edges.graph(visible)
    with torch.no_grad():
        h = ref(node_features(new), ei, ew)
        want = ref.score(h[: edges.M], h[edges.M + edges.pos["new"]].expand_as(h[: edges.M])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["gat", "sage"])
@pytest.mark.parametrize("n_sources", [0, 1, 3])
def test_one_node_convolution_equals_the_pyg_layer_on_that_node(kind, n_sources):
    """The rank-time shortcut for a new dataset's node gives what PyG's layer gives it in a graph
    of its sources and itself (with GAT's self-loop), for random weights and edge attributes."""
    from services.selection.mc.embed import LinkEncoder, _OneNodeLayer

    torch.manual_seed(n_sources)
    conv = LinkEncoder(5, 16, kind).convs[0].eval()
    for p in conv.parameters():  # bias and attention start at zero: draw them all
        torch.nn.init.normal_(p, std=0.5)
    if kind == "gat":
        conv.add_self_loops = False  # the self-loop comes with the edges, as in GNNEmbedder._net
    sources, h = torch.randn(n_sources, 16), torch.randn(1, 16)
    w = torch.rand(n_sources + (kind == "gat"))
    ei = torch.tensor([[*range(n_sources), *([n_sources] if kind == "gat" else [])], [n_sources] * len(w)]).long()
    with torch.no_grad():
        want = conv(torch.cat([sources, h]), ei, **({"edge_attr": w[:, None]} if kind == "gat" else {}))[n_sources:]
    got = _OneNodeLayer.of(conv)(sources.numpy(), h.numpy(), w.numpy())
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_a_new_dataset_is_embedded_the_same_through_the_pyg_fallback(monkeypatch):
    """A layer the shortcut does not cover goes through PyG on the small graph: same embedding."""
    from services.selection.mc import embed
    from services.selection.mc.embed import GNNEmbedder

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    visible = [d for d in tables.datasets if d != "d5"]
    for kind in ("gat", "sage"):
        emb = GNNEmbedder(kind=kind, epochs=10, seed=1).fit(tables, visible)
        new = tables.with_target("new", {"d4": 0.6, "d6": 1.4, "d2": 2.5}, {"size": 3000})
        fast = emb.edge_scores(new, visible, ["new"])["new"]
        with monkeypatch.context() as m:
            m.setattr(embed._OneNodeLayer, "of", classmethod(lambda cls, conv: None))
            emb._one_node = None  # read the layers again: none covered
            assert emb._one_node_net().layers == [None, None]
            slow = emb.edge_scores(tables.with_target("new", {"d4": 0.6, "d6": 1.4, "d2": 2.5}, {"size": 3000}),
                                   visible, ["new"])["new"]
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)


def test_with_target_builds_the_frames_reindexing_would():
    """with_target's numpy construction equals reindexing the parent's frames, for a new name and
    for a dataset already there, with one and with several similarity methods."""
    import pandas as pd

    zoo, _ = make_zoo(n_models=6)
    zoo.similarities += [SimilarityRow(a, b, abs(POS[a] - POS[b]) ** 0.5, "sqrt") for a in POS for b in POS if a < b]
    tables = tables_from_zoo(zoo)
    assert tables.dist_by_method
    for name, dist in (("new", {"d4": 0.7, "d1": 3.0, "nowhere": 1.0}), ("d3", {"d4": 0.2})):
        got = tables.with_target(name, dist, {"size": 500, "number_of_classes": 7})
        names = list(tables.dist.index) + ([name] if name not in tables.dist.index else [])
        datasets = tables.datasets + ([name] if name not in tables.datasets else [])
        assert got.datasets == datasets
        pd.testing.assert_frame_equal(got.quality, tables.quality.reindex(columns=datasets), check_dtype=False)
        pd.testing.assert_frame_equal(got.norm, tables.norm.reindex(columns=datasets), check_dtype=False)
        for frame, parent in [(got.dist, tables.dist), *((got.dist_by_method[m], tables.dist_by_method[m])
                                                          for m in tables.dist_by_method)]:
            want = parent.reindex(index=names, columns=names).copy()
            for other, v in dist.items():
                if other in want.index:
                    want.loc[name, other] = want.loc[other, name] = v
            want.loc[name, name] = 0.0
            pd.testing.assert_frame_equal(frame, want.astype(float), check_dtype=False)
        assert list(got.dataset_feats.index) == list(tables.dataset_feats.index) + ([name] if name == "new" else [])
        np.testing.assert_allclose(got.dataset_feats.loc[name].to_numpy(dtype=float), [np.log10(500), np.log10(7)])


def test_distance_reads_the_distance_table_and_gives_nan_for_unknown_names():
    zoo, _ = make_zoo(n_models=6)
    tables = tables_from_zoo(zoo)
    others = ["d4", "nowhere", "d1", "d2"]
    want = tables.dist.loc["d2"].reindex(others).to_numpy(dtype=float)
    np.testing.assert_array_equal(tables.distance("d2", others), want)
    assert np.isnan(tables.distance("d2", ["nowhere"])).all() and tables.distance("d2", []).shape == (0,)
    assert np.isnan(tables.distance("nowhere", others)).all()
    new = tables.with_target("new", {"d4": 0.7})
    assert new.distance("new", ["d4", "new", "d1"])[:2].tolist() == [0.7, 0.0]


def test_a_new_datasets_evidence_is_its_parents_for_the_same_context_and_read_only():
    """The target-independent evidence is computed once per context on the parent tables: two new
    datasets share it, their features equal those of tables built whole, and nothing can edit it."""
    from services.selection.mc.predictor import feature_matrix

    tables = tables_from_zoo(make_zoo()[0])
    context = [d for d in tables.datasets if d != "d5"]
    a, b = tables.with_target("a", {"d4": 0.5, "d6": 1.0}), tables.with_target("b", {"d1": 0.3})
    names, Fa = feature_matrix(a, "a", context)
    _, Fb = feature_matrix(b, "b", context)
    shared = [k for k in tables.__dict__["_memo"] if isinstance(k, tuple) and k[0] == "context_evidence"]
    assert shared == [("context_evidence", tuple(context))]
    ev = tables.__dict__["_memo"][shared[0]]
    assert not ev.X.flags.writeable and not ev.columns["e_mean"].flags.writeable
    j = names.index("e_mean")
    np.testing.assert_array_equal(Fa[:, j], Fb[:, j])
    whole = tables_from_zoo(make_zoo()[0]).with_target("a", {"d4": 0.5, "d6": 1.0})
    whole.__dict__.pop("derived_from")  # built as plain tables: nothing read from a parent
    np.testing.assert_array_equal(feature_matrix(whole, "a", context)[1], Fa)


def test_a_large_prediction_in_row_chunks_on_threads_equals_one_call(monkeypatch):
    from services.selection.mc import predictor

    r = Ranker(FAST).fit(tables_from_zoo(make_zoo()[0]), hide=["d5"])
    assert r.model is not None
    X = np.random.default_rng(0).normal(size=(101, len(r.lgbm_features)))
    whole = r.model.booster_.predict(X.astype(np.float32), num_threads=1)
    monkeypatch.setattr(predictor, "PARALLEL_PREDICT_MIN_WORK", 1)
    monkeypatch.setattr(predictor, "_predict_threads", lambda: 3)
    np.testing.assert_array_equal(predictor._predict(r.model, X), whole)
    np.testing.assert_array_equal(predictor._predict_later(r.model, X)(), whole)  # started, then awaited
    monkeypatch.setattr(predictor, "PARALLEL_PREDICT_MIN_WORK", 10**9)
    np.testing.assert_array_equal(predictor._predict_later(r.model, X)(), whole)  # one chunk


def test_ensemble_scores_with_predictions_started_early_equal_those_made_in_turn(monkeypatch):
    """_score_matrix starts each member's LightGBM prediction before the next member's graph score;
    the blended scores are those of predicting inside each blend, bit for bit."""
    from dataclasses import replace

    tables = tables_from_zoo(make_zoo()[0])
    r = Ranker(replace(FAST, members=2)).fit(tables, hide=["d5"])
    for m in r.members:  # whatever the inner CV chose, both blends correct with LightGBM here
        m.blend = {"anchor": "e_mean", "correction": "lgbm", "shrink": 0.5, "graph": 0.25}
        m.top_blend = {"anchor": "e_cf1", "correction": "lgbm", "shrink": 1.0, "graph": 0.0}
    early = r.scores(tables, "d5")[0]
    monkeypatch.setattr(Ranker, "_start_lgbm", lambda self, names, F: None)  # each blend predicts itself
    np.testing.assert_array_equal(r.scores(tables, "d5")[0], early)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_predicts_in_row_chunks_on_its_own_threads(monkeypatch):
    """The prediction threads do not survive a fork: a prefork worker's first chunked prediction
    starts its own pool instead of waiting on the parent's dead threads."""
    import os

    from services.selection.mc import predictor

    r = Ranker(FAST).fit(tables_from_zoo(make_zoo()[0]), hide=["d5"])
    X = np.random.default_rng(1).normal(size=(64, len(r.lgbm_features)))
    monkeypatch.setattr(predictor, "PARALLEL_PREDICT_MIN_WORK", 1)
    monkeypatch.setattr(predictor, "_predict_threads", lambda: 2)
    want = predictor._predict(r.model, X)  # the parent's pool now exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: answer through the pipe, never return into pytest
        ok = 0
        try:
            ok = int(np.array_equal(predictor._predict(r.model, X), want) and predictor._predict_pool is not None)
        finally:
            os.write(write, bytes([ok]))
            os._exit(0)
    os.close(write)
    import select
    import signal

    answered = select.select([read], [], [], 60)[0]
    if not answered:  # stuck on the parent's threads
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert answered and os.read(read, 1) == b"\x01" and status == 0


def test_standardising_a_score_ignores_missing_entries_and_spreads_nothing_constant():
    from services.selection.mc.predictor import _z

    x = np.array([1.0, 2.0, 4.0, 9.0])
    assert np.array_equal(_z(x), (x - x.mean()) / x.std())
    with_gap = np.array([1.0, np.nan, 2.0, 4.0, 9.0, np.inf])
    expected = np.array([*(_z(x)[:1]), 0.0, *(_z(x)[1:]), 0.0])  # no evidence: the mean
    assert np.array_equal(_z(with_gap), expected)
    assert np.array_equal(_z(np.full(3, 7.0)), np.zeros(3))
    assert np.array_equal(_z(np.full(3, np.nan)), np.zeros(3))


def test_a_coverage_row_decides_the_pretraining_distance_the_baseline_and_an_inline_ranking():
    """The similarity rows put t1 equally near every specialist's source; coverage divergences say
    which source's data covers it. Targets without a coverage row keep the similarity distance."""
    from services.selection.mc.evaluate import nearest_pretraining
    from services.selection.mc.predictor import pretraining_distance
    from services.selection.mc.records import CoverageRow

    zoo = specialist_zoo(families=3)
    zoo.similarities = [s for s in zoo.similarities if not (s.dataset_a == "t1" and s.dataset_b.startswith("src"))]
    zoo.similarities += [SimilarityRow("t1", src, 2.0, "profile") for src in ("src0", "src1", "src2", "srcG")]
    tables = tables_from_zoo(zoo.without_results_of(["t1"]))
    assert np.unique(pretraining_distance(tables, "t1")).tolist() == [2.0]  # no model stands out
    zoo.coverages = [CoverageRow("t1", "src0", 30.0), CoverageRow("t1", "src1", 0.5), CoverageRow("t1", "src2", 8.0)]
    tables = tables_from_zoo(zoo.without_results_of(["t1"]))
    d = dict(zip(tables.models, pretraining_distance(tables, "t1")))
    assert d["s1"] == pytest.approx(np.log1p(0.5)) and d["s0"] == pytest.approx(np.log1p(30.0))
    assert np.isnan(d["g"])  # no coverage of t1 by srcG: left unknown, never mixed with a similarity distance
    assert dict(zip(tables.models, pretraining_distance(tables, "t0")))["s0"] == 1.0  # no row: the similarity
    score = dict(zip(tables.models, nearest_pretraining(tables, "t1", ["t0", "t2"])))
    assert max(score, key=score.get) == "s1"

    # a new dataset given with its coverage: the explanation names the measure it was judged by
    config = RankerConfig(families=("model", "dataset", "evidence"), embedding="none", inner_folds=3, members=1,
                          lgbm_grid=FAST.lgbm_grid)
    ranker = Ranker(config).fit(zoo)
    distances = {"t0": 4.0, "t1": 4.0, "t2": 4.0}
    ranked = ranker.rank(zoo, "fresh", distances=distances, coverage={"src2": 0.2, "src0": 9.0, "src1": 9.0}, k=None)
    by_model = {r.model: r.evidence for r in ranked}
    assert by_model["s2"]["pretraining_data_measure"] == "log1p-coverage-kl"
    assert by_model["s2"]["pretraining_data_distance"] == pytest.approx(np.log1p(0.2))
    plain = ranker.rank(zoo, "fresh2", distances=distances, k=None)
    assert plain[0].evidence["pretraining_data_measure"] == "similarity"


def test_cli_passes_the_share_of_records_through_and_refuses_one_out_of_range(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from services.cli import app
    from services.selection import bench

    calls = []
    monkeypatch.setattr(bench, "run_benchmark", lambda **kw: calls.append(kw))
    runner = CliRunner()
    ok = runner.invoke(app, ["bench", "selection", "--data", str(tmp_path), "--keep-fraction", "0.3", "--keep-seed", "2"])
    assert ok.exit_code == 0, ok.output
    assert (calls[0]["keep_fraction"], calls[0]["keep_seed"]) == (0.3, 2)
    for bad in ("0", "1.2"):
        assert runner.invoke(app, ["bench", "selection", "--data", str(tmp_path), "--keep-fraction", bad]).exit_code == 2
    assert len(calls) == 1


@requires_lleaves
def test_compiled_forests_rank_as_lightgbm_does_and_are_never_stored():
    from dataclasses import replace

    zoo, _ = make_zoo(n_models=12)
    tables = tables_from_zoo(zoo.without_results_of(["d5"]))
    ranker = Ranker(replace(FAST, members=2)).fit(tables, hide=["d5"])
    inline = {"d4": 1.1, "d6": 0.9, "d2": 3.0}
    before = ranker.rank(tables, "d5", k=None), ranker.rank(tables, "fresh", k=None, distances=inline)
    assert ranker.compile_forests() and all(m.forest is not None for m in ranker.members)
    after = ranker.rank(tables, "d5", k=None), ranker.rank(tables, "fresh", k=None, distances=inline)
    for old, new in zip(before, after):
        assert [r.model for r in new] == [r.model for r in old]
        np.testing.assert_allclose([r.score for r in new], [r.score for r in old], rtol=1e-12, atol=1e-12)
    back = Ranker.from_bytes(ranker.to_bytes())  # machine code is per machine: not in the artifact
    assert all(m.forest is None for m in back.members)


@requires_lleaves
def test_the_service_compiles_a_loaded_ranker_in_the_background_and_reuses_its_cache(tmp_path, monkeypatch):
    from services.common.settings import Settings
    from services.selection import service

    zoo, _ = make_zoo(n_models=10)
    blob = Ranker(FAST).fit(zoo, hide=["d7"]).to_bytes()
    monkeypatch.setattr(service, "get_settings", lambda: Settings(home=tmp_path, compile_forests=False))
    off = Ranker.from_bytes(blob)
    assert service._compile_forests(off) is None and off.forest is None  # switched off: LightGBM predicts
    monkeypatch.setattr(service, "get_settings", lambda: Settings(home=tmp_path))
    first = Ranker.from_bytes(blob)
    thread = service._compile_forests(first)
    assert thread is not None  # nothing cached: compiled off the request path
    thread.join(timeout=120)
    assert first.forest is not None and first.forest.cache_file.parent == service.forest_cache_dir()
    again = Ranker.from_bytes(blob)
    assert service._compile_forests(again) is None and again.forest is not None  # loaded from the cache at once


def test_one_se_band_holds_the_blends_within_a_paired_standard_error_of_the_best():
    from services.selection.mc.predictor import _one_se_band

    crit = np.array([[1.0, 1.0, 1.0, 1.0],   # best mean 1.0
                     [0.9, 1.1, 0.9, 1.1],   # same mean, paired SE 0.058: in
                     [0.9, 0.9, 0.9, 0.9],   # 0.1 below with paired SE 0: out
                     [0.5, 1.5, 0.4, 1.4]])  # 0.05 below with paired SE 0.29: in
    assert list(_one_se_band(crit)) == [0, 1, 3]
    assert list(_one_se_band(crit[:, :2])) == [0]  # too few datasets for an SE: the best alone


def test_top_tiebreak_by_main_takes_the_band_member_best_on_the_main_criterion():
    from dataclasses import replace

    from services.selection.mc.predictor import _best_on_main_within_one_se, _complexity

    # (anchor, correction, shrink, graph, pretrain) combos: the anchor alone is the simplest
    combos = [(0, None, 0.0, 0.0, 0.0), (0, ("S", 0.5), 0.5, 0.0, 0.0), (0, ("S", 0.5), 0.5, 0.0, 1.0),
              (0, ("S", 0.5), 1.0, 0.0, 0.0)]
    assert sorted(range(4), key=lambda i: _complexity(combos[i]))[0] == 0
    rel = np.array([[1.0, 0.9, 1.0, 0.9], [1.0, 0.9, 1.0, 0.9], [0.9, 1.0, 1.0, 0.9], [0.5, 0.5, 0.5, 0.5]])
    main = np.array([[1.2, 1.0, 1.1, 1.0], [1.5, 1.4, 1.6, 1.5], [1.9, 2.0, 1.9, 1.8], [2.0, 2.0, 2.0, 2.0]])
    # the band on rel@1 is {0, 1, 2} (3 is far below); 2 is best on main; 3 is out of the band
    assert _best_on_main_within_one_se(combos, rel, main) == 2
    # main ties go to the simplest
    assert _best_on_main_within_one_se(combos, rel, np.ones_like(main)) == 0

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    cfg = replace(FAST, corrections=("lgbm", "sw", "nn"), taus=(0.25, 0.5))
    simplest = Ranker(cfg).fit(tables, hide=["d6"])
    by_main = Ranker(replace(cfg, top_tiebreak="main")).fit(tables, hide=["d6"])
    # the same main blend; the top blend changes only which member of its band is taken
    assert by_main.blend == simplest.blend and by_main.top_blend is not None


def test_band_inner_score_is_the_criterion_of_the_band_mean_blend():
    from dataclasses import replace

    from services.selection.mc.predictor import _band_mean_criterion, _criterion

    truth = np.array([0.1, 0.5, 0.9, 0.3])
    S = np.array([[0.0, 1.0, 2.0, 3.0],    # ranks the best (index 2) second
                  [3.0, 1.0, 2.0, 0.0],
                  [0.0, 0.5, 3.0, 0.2]])   # puts the best first
    one = _band_mean_criterion([(S, truth)], [2])
    pear, rel = _criterion(S[2:3], truth)
    assert one == pytest.approx(float(pear[0] + rel[0]))
    # the band's mean row is its blend's score, not the mean of the rows' criteria
    mean_row = (S[0] + S[1]) / 2
    pear, rel = _criterion(mean_row[None, :], truth)
    assert _band_mean_criterion([(S, truth)], [0, 1]) == pytest.approx(float(pear[0] + rel[0]))
    crit_rows = [sum(_criterion(S[i:i + 1], truth)).item() for i in (0, 1)]
    assert _band_mean_criterion([(S, truth)], [0, 1]) != pytest.approx(float(np.mean(crit_rows)))

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    cfg = replace(FAST, corrections=("lgbm", "sw", "nn"), taus=(0.25, 0.5))
    default, by_band = Ranker(cfg).fit(tables, hide=["d6"]), Ranker(replace(cfg, band_inner_score=True)).fit(tables, hide=["d6"])
    assert by_band.blend == default.blend and by_band.top_blend == default.top_blend  # only the score moves


def test_band_mean_scores_with_the_mean_of_the_band_blends():
    from dataclasses import replace

    from services.selection.mc.predictor import _band_weights, _blend_of

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    # (the top blend kept apart from the main one: deferring to it is tested below)
    cfg = replace(FAST, band_mean=("main", "top"), corrections=("lgbm", "sw", "nn"), taus=(0.25, 0.5),
                  top_defers_to_main=False)
    r = Ranker(cfg).fit(tables, hide=["d6"])
    assert r.blend["band"] >= 1 and sum(r.blend["weights"].values()) > 0
    assert r.top_blend is not None and "weights" in r.top_blend
    assert r.cv["weights"] == r.blend["weights"]
    score, top, names, F, _ = r._score_matrix(tables, "d6")
    # averaging blends that are weighted sums of z-scores is one weighted sum: check it on any band
    anchors = ("e_mean", "e_cf1")
    combos = [(0, None, 0.0, 0.0, 0.0), (1, ("S", 0.5), 0.5, 0.25, 0.0), (0, ("F", "e_nn1"), 1.0, 0.0, 1.0)]
    if r.model is not None:
        combos.append((1, ("L", None), 0.25, 0.0, 0.5))
    mean_of_scores = np.mean([r._blend_score(names, F, _blend_of(c, anchors)) for c in combos], axis=0)
    weights = {"weights": _band_weights(combos, range(len(combos)), anchors)}
    np.testing.assert_allclose(r._blend_score(names, F, weights), mean_of_scores, atol=1e-12)
    back = Ranker.from_bytes(r.to_bytes())
    np.testing.assert_allclose(back.scores(tables, "d6")[0], r.scores(tables, "d6")[0])
    main_only = Ranker(replace(cfg, band_mean=("main",))).fit(tables, hide=["d6"])
    assert "weights" in main_only.blend and "weights" not in main_only.top_blend
    # (FAST has one LightGBM variant, so both fits allow the same blends for the top one)
    assert main_only.top_blend == Ranker(replace(cfg, band_mean=())).fit(tables, hide=["d6"]).top_blend


def test_the_lightgbm_baseline_keeps_one_blend_chosen_as_it_was_measured():
    # the primary's band mean must not change the baseline it is compared with
    from services.selection.mc.evaluate import lgbm_without_graph

    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    baseline = Ranker(lgbm_without_graph().config).fit(tables, hide=["d6"])
    assert "weights" not in baseline.blend and baseline.blend["correction"] == "lgbm"
    assert "weights" in Ranker(FAST).fit(tables, hide=["d6"]).blend  # the primary's default averages


def test_the_judged_band_counts_only_the_datasets_that_judged_each_blend():
    from services.selection.mc.predictor import _judged_band

    nan = np.nan
    crit = np.array([[1.0, 1.0, nan, 1.0, 1.0],   # judged on 4, mean 1.0: the best
                     [0.9, nan, 0.9, 0.9, 0.9],   # 0.1 below on the 3 datasets both judged, no spread: out
                     [1.0, nan, nan, nan, 1.0],   # ties the best but judged on 2 (< 3): never in
                     [0.7, 1.0, nan, 1.3, 1.0],   # same mean on 4 shared datasets, paired SE 0.12: in
                     [1.0, 1.0, 1.0, nan, nan]])  # judged on 3, mean 1.0, shares 2 with the best: no SE, ties: in
    assert list(_judged_band(crit)) == [0, 3, 4]
    # a NaN is not a zero: the same blends fully judged at those values would score lower
    assert list(_judged_band(np.nan_to_num(crit))) != [0, 3, 4]
    # without the one-SE rule: the blends tied with the best mean
    assert list(_judged_band(crit, one_se=False)) == [0, 3, 4]
    assert list(_judged_band(crit[:, :4] * [1, 1, 1, 0.5])) == [4]  # 4 now leads alone (0 and 3 fell)


def _wide_zoo(n_datasets=16, n_models=6, seed=0) -> Zoo:
    """Datasets on a line, models good near their home: many datasets, few models (like the T2I zoo)."""
    rng = np.random.default_rng(seed)
    z = Zoo()
    homes = np.linspace(0, n_datasets - 1, n_models)
    for j in range(n_models):
        z.models[f"m{j}"] = ModelRow(name=f"m{j}", family=("a", "b")[j % 2], num_parameters=1e6 * (1 + j % 3))
    for i in range(n_datasets):
        z.datasets[f"d{i}"] = DatasetRow(name=f"d{i}", size=1000.0, metadata={"number_of_classes": 10})
        for j, h in enumerate(homes):
            z.results.append(ResultRow(f"m{j}", f"d{i}", "eval_accuracy",
                                       0.5 + 0.4 * np.exp(-((h - i) / 3.0) ** 2) + rng.normal(0, 0.01)))
    z.similarities += [SimilarityRow(f"d{a}", f"d{b}", abs(a - b) / 3.0, "line")
                       for a in range(n_datasets) for b in range(a + 1, n_datasets)]
    return z


def test_the_top_pick_judged_on_all_models_where_training_datasets_show_few_of_them():
    from dataclasses import replace

    from services.selection.mc.evaluate import sparse_training_zoo

    cfg = replace(FAST, corrections=("sw", "nn"), taus=(0.25, 0.5), embedding="none",
                  families=tuple(f for f in FAST.families if f != "graph"))
    every = replace(cfg, top_judged_on="all")
    zoo = _wide_zoo()
    # complete records: every pick has a result, so the two judgements are one
    complete = tables_from_zoo(zoo.without_results_of(["d7"]))
    a, b = Ranker(cfg).fit(complete, hide=["d7"]), Ranker(every).fit(complete, hide=["d7"])
    assert a.top_blend == b.top_blend and b.cv["top_judged"] == len(b.trained_on)
    np.testing.assert_array_equal(a.scores(complete, "d7")[0], b.scores(complete, "d7")[0])
    # sparse records: judged where the pick among all six has a result (about half the datasets)
    sparse = tables_from_zoo(sparse_training_zoo(zoo.without_results_of(["d7"]), 0.5, seed=1))
    r = Ranker(every).fit(sparse, hide=["d7"])
    assert 3 <= r.cv["top_judged"] < len(r.trained_on)
    score, top, names, F, _ = r._score_matrix(sparse, "d7")
    assert r.rank(sparse, "d7")[0].model == sparse.models[int(np.argmax(top))]
    # too few judged per blend (8 datasets, a third of the results): judged on the observed models
    few = tables_from_zoo(sparse_training_zoo(_wide_zoo(n_datasets=8).without_results_of(["d3"]), 0.34, seed=1))
    f_all, f_obs = Ranker(every).fit(few, hide=["d3"]), Ranker(cfg).fit(few, hide=["d3"])
    assert "top_judged" not in f_all.cv and f_all.top_blend == f_obs.top_blend
    # "all_mean" drops no dataset (an unjudged pick counts as a random observed model), so it judges
    # on all models even there; on complete records it too is the observed judgement
    f_mean = Ranker(replace(cfg, top_judged_on="all_mean")).fit(few, hide=["d3"])
    assert f_mean.cv["top_judged"] < len(f_mean.trained_on)
    assert Ranker(replace(cfg, top_judged_on="all_mean")).fit(complete, hide=["d7"]).top_blend == a.top_blend


def test_the_top_blend_defers_to_the_main_blend_where_rel_at_1_cannot_tell_them_apart():
    from dataclasses import replace

    cfg = replace(FAST, corrections=("sw", "nn"), taus=(0.25, 0.5))
    zoo, _ = make_zoo(n_models=10)
    tables = tables_from_zoo(zoo.without_results_of(["d6"]))
    plain = Ranker(replace(cfg, top_defers_to_main=False)).fit(tables, hide=["d6"])
    r = Ranker(replace(cfg, top_defers_to_main=True)).fit(tables, hide=["d6"])
    assert plain.top_blend != r.top_blend and "defers_to_main" not in plain.top_blend
    assert r.blend == plain.blend  # only the top blend may change
    # a smooth zoo: the main blend's first pick is the best on (nearly) every training dataset, so
    # it is within one SE of the top band's best and keeps its pick
    assert r.top_blend == {**r.blend, "defers_to_main": True}
    score, top, names, F, _ = r._score_matrix(tables, "d6")
    assert int(np.argmax(top)) == int(np.argmax(score))
    back = Ranker.from_bytes(r.to_bytes())
    np.testing.assert_allclose(back.scores(tables, "d6")[0], r.scores(tables, "d6")[0])


def test_a_blend_is_within_one_se_of_the_best_unless_the_datasets_say_it_is_worse():
    from services.selection.mc.predictor import _within_one_se_of_best

    crit = np.array([[1.0, 1.0, 0.9, 1.0], [0.9, 0.9, 0.9, 0.9]])
    assert _within_one_se_of_best(crit, np.array([1.0, 1.0, 0.9, 1.0]))  # ties the best
    assert _within_one_se_of_best(crit, np.array([1.0, 0.8, 1.0, 0.9]))  # lower mean, noisy: within
    assert not _within_one_se_of_best(crit, np.array([0.9, 0.9, 0.8, 0.9]))  # lower on every dataset


def test_the_main_blend_keeps_the_first_pick_where_training_datasets_show_few_of_the_models():
    from dataclasses import replace

    from services.selection.mc.evaluate import sparse_training_zoo

    assert RankerConfig().top_min_coverage == 0.0  # measured, not adopted: the primary never applies it
    cfg = replace(FAST, corrections=("sw", "nn"), taus=(0.25, 0.5), embedding="none", top_defers_to_main=False,
                  families=tuple(f for f in FAST.families if f != "graph"), top_min_coverage=0.0)
    guarded = replace(cfg, top_min_coverage=0.5)
    zoo = _wide_zoo()
    # complete records: every training dataset shows every model, so nothing changes
    complete = tables_from_zoo(zoo.without_results_of(["d7"]))
    a, b = Ranker(cfg).fit(complete, hide=["d7"]), Ranker(guarded).fit(complete, hide=["d7"])
    assert a.cv["coverage"] == b.cv["coverage"] == 1.0
    assert a.top_blend == b.top_blend and "sparse" not in b.top_blend
    np.testing.assert_array_equal(a.scores(complete, "d7")[0], b.scores(complete, "d7")[0])
    # a quarter of the results: the top blend is the main blend, so the main blend's best goes first
    sparse = tables_from_zoo(sparse_training_zoo(zoo.without_results_of(["d7"]), 0.25, seed=1))
    plain, r = Ranker(cfg).fit(sparse, hide=["d7"]), Ranker(guarded).fit(sparse, hide=["d7"])
    assert r.cv["coverage"] < 0.5 and r.blend == plain.blend
    assert "sparse" not in plain.top_blend and r.top_blend == {**r.blend, "defers_to_main": True, "sparse": True}
    score, top, names, F, _ = r._score_matrix(sparse, "d7")
    assert int(np.argmax(top)) == int(np.argmax(score))
    assert r.rank(sparse, "d7")[0].model == sparse.models[int(np.argmax(score))]
    back = Ranker.from_bytes(r.to_bytes())
    np.testing.assert_allclose(back.scores(sparse, "d7")[0], r.scores(sparse, "d7")[0])


def test_fitting_rows_where_no_dataset_compares_two_models_says_so():
    zoo = Zoo()
    for d, m in (("d1", "a"), ("d2", "b"), ("d3", "a")):
        zoo.models.setdefault(m, ModelRow(name=m))
        zoo.datasets[d] = DatasetRow(name=d)
        zoo.results.append(ResultRow(m, d, "eval_accuracy", 0.5))
    with pytest.raises(ValueError, match="results for at least two models"):
        Ranker(FAST).fit(zoo)
