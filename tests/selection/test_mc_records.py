import json

import numpy as np
import pytest

from services.selection.mc.records import (
    ResultRow, Zoo, flag_degenerate, load_benchmark_dir, load_published, parse_results,
)

MESSY = """,model_name,dataset,score,lr
0,m1,dsA,0.80,0.01
1,m1,dsA,0.85,0.02
2,m2,dsA,not-a-number,0.01
3,,dsA,0.5,0.01
4,m3,dsA,0.7
5,m2,dsA,0.60,0.01
"""


def test_messy_csv_reports_junk_rows_and_keeps_best_duplicate():
    rows, rep = parse_results(MESSY.encode())
    got = {(r.model, r.dataset): r.value for r in rows}
    assert got == {("m1", "dsA"): 0.85, ("m2", "dsA"): 0.60}
    assert rep.duplicates == 1
    assert sorted(r for _, r, _ in rep.skipped) == [3, 4, 5]  # 1-based data rows
    assert all("" not in r.config for r in rows)  # the unnamed index column is not config
    assert rows[0].config.get("lr") in ("0.02", "0.01")


def test_metric_and_direction_columns_lower_is_better():
    text = "model,dataset,metric,value,higher_is_better\na,d,denoise_loss,0.30,false\na,d,denoise_loss,0.20,false\nb,d,denoise_loss,0.50,maybe\n"
    rows, rep = parse_results(text)
    assert len(rows) == 1 and rows[0].value == 0.20 and rows[0].higher_is_better is False
    assert rows[0].metric == "denoise_loss"
    assert [r for _, r, _ in rep.skipped] == [3]
    z = Zoo()
    z.add_result(rows[0])
    z.add_result(ResultRow("c", "d", "denoise_loss", 0.1, False))
    q = z.quality_matrix()
    assert q.loc["c", "d"] > q.loc["a", "d"]  # oriented: lower loss ranks higher


def test_json_import_and_malformed_json_never_raises():
    data = [{"model": "a", "dataset": "d", "eval_accuracy": 0.9}, "junk", {"model": "b", "dataset": "d", "eval_accuracy": None}]
    rows, rep = parse_results(json.dumps(data))
    assert [r.model for r in rows] == ["a"]
    assert sorted(r for _, r, _ in rep.skipped) == [2, 3]
    rows, rep = parse_results("{not json")
    assert rows == [] and rep.skipped


def _write_dir(tmp_path, food_broken=True):
    lines = [",model,finetuned_dataset,eval_accuracy"]
    i = 0
    rng = np.random.default_rng(0)
    for m in range(6):
        for d in ("stanfordcars", "pets", "food101"):
            v = 0.01 if (d == "food101" and food_broken and m > 0) else 0.5 + 0.05 * m + rng.normal(0, 0.01)
            lines.append(f"{i},model{m},{d},{v}")
            i += 1
    lines.append(f"{i},model1,pets,oops")
    (tmp_path / "records.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "model_config_dataset.csv").write_text(
        "model,model_type,number_of_parameters,dataset,input_shape\n" + "".join(f"model{m},vit,{1e6 * (m + 1)},imagenet,224\n" for m in range(6)) + "ghost,vit,1,imagenet,224\n")
    (tmp_path / "target_dataset_features.csv").write_text("finetune_dataset,size,number_of_classes\nStanford-Cars,8144,196\npets,3680,37\nmystery,10,2\n")
    (tmp_path / "corr_domain_similarity_x.csv").write_text(",stanfordcars,Pets,imagenet\nstanfordcars,0,2,3\nPets,2,0,1\nimagenet,3,1,0\n")


def test_benchmark_dir_matches_names_reports_rest_and_flags_degenerate(tmp_path):
    _write_dir(tmp_path)
    zoo, rep = load_benchmark_dir(tmp_path)
    assert rep.renamed["Stanford-Cars"] == "stanfordcars" and rep.renamed["Pets"] == "pets"
    assert "mystery" in rep.unmatched["target_dataset_features.csv (no results)"]
    assert "ghost" in rep.unmatched["model_config_dataset.csv (no results)"]
    assert [r for s, r, _ in rep.skipped if s == "records.csv"] == [19]
    assert "food101" in rep.degenerate and "pets" not in rep.degenerate
    assert zoo.datasets["stanfordcars"].metadata["number_of_classes"] == 196
    D = zoo.distance_matrix()
    assert D.loc["stanfordcars", "pets"] == 2
    assert "food101" in zoo.datasets  # flagged, not silently dropped
    zoo2, rep2 = load_benchmark_dir(tmp_path, drop_degenerate=True)
    assert "food101" not in zoo2.datasets and rep2.dropped == ["food101"]


def test_flag_degenerate_near_chance():
    import pandas as pd
    q = pd.DataFrame({"ok": np.linspace(0.5, 0.9, 10), "chance": np.linspace(0.09, 0.13, 10)})
    flags = flag_degenerate(q, {"chance": 10})
    assert "chance" in flags and "ok" not in flags


def test_published_numbers_load_per_method_and_target_without_the_average_column(tmp_path):
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "pearson_correlation.csv").write_text(
        ",t1,t2,average\nxgb_a,0.5,0.7,0.9\nlr_b,0.4,,0.1\n")
    (tmp_path / "published" / "rel@1_correlation.csv").write_text("not,a\n\"broken")
    got = load_published(tmp_path)
    assert got["pearson"] == {"xgb_a": {"t1": 0.5, "t2": 0.7}, "lr_b": {"t1": 0.4}}
    assert set(got) <= {"pearson", "rel@1"} and load_published(tmp_path / "absent") == {}


def test_coverage_matrix_written_from_profiles_loads_directed_and_keeps_pretraining_sets(tmp_path):
    from services.gateway.zoobuild import write_coverage
    from services.selection.mc.graph import tables_from_zoo
    from services.selection.mc.predictor import pretraining_distance
    from services.selection.mc.profile import pack_blocks
    from services.selection.mc.similarity import profile_coverage

    _write_dir(tmp_path)
    rng = np.random.default_rng(0)
    profiles = {}
    for name in ("stanfordcars", "Pets", "imagenet"):
        a = rng.normal(size=(3, 3))
        profiles[name] = pack_blocks([(rng.normal(size=3), a @ a.T + np.eye(3))]).tolist()
    write_coverage(tmp_path / "domain_coverage_test.csv", profiles)
    zoo, report = load_benchmark_dir(tmp_path)
    cov = zoo.coverage_matrix()
    arrays = {n: np.asarray(p) for n, p in profiles.items()}
    expected = profile_coverage(arrays["Pets"], arrays["imagenet"])
    assert cov.loc["pets", "imagenet"] == pytest.approx(expected)  # names matched as elsewhere
    assert cov.loc["pets", "stanfordcars"] != pytest.approx(cov.loc["stanfordcars", "pets"])  # directed
    assert report.unmatched["domain_coverage_test.csv"] == ["imagenet"]  # a pretraining set: kept by its name
    tables = tables_from_zoo(zoo)
    # the models' pretraining distance to a target with a coverage row is its log coverage divergence
    assert pretraining_distance(tables, "pets")[0] == pytest.approx(np.log1p(expected))
    assert np.isnan(pretraining_distance(tables, "food101")).all()  # neither coverage nor similarity
