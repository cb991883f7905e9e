"""A reduced zoo measured through the API, then the adapt workflow end to end, on a Celery worker."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_job

pytestmark = pytest.mark.integration

MODELS = {"zoo-cond": "tiny:unet2d-condition", "zoo-dit": "tiny:dit"}
DOMAINS = {"reduced-shapes": "shapes", "reduced-stripes": "stripes", "reduced-rings": "rings"}
TRAIN = {"mode": "memlean", "steps": 3, "batch_size": 4, "lr": 1e-3, "eval_size": 4, "num_samples": 0}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from services.common.diffusion import generate_synthetic_dataset

    root = tmp_path_factory.mktemp("reduced-zoo")
    names = {**DOMAINS, "reduced-target": "shapes-warm"}
    return {name: str(generate_synthetic_dataset(root / name, domain=domain, n=16, seed=3, resolution=16))
            for name, domain in names.items()}


def run_jobs(api, requests: list[tuple[str, dict]], timeout=600) -> list[dict]:
    ids = []
    for path, body in requests:
        response = api.post(path, json=body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    jobs = [wait_for_job(api, job_id, timeout=timeout) for job_id in ids]
    assert all(j["status"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    return jobs


def test_reduced_zoo_then_adapt_workflow(api, celery_worker, folders):
    from services.common.db import session_scope
    from sqlalchemy import text

    with session_scope() as session:
        session.execute(text("TRUNCATE models, datasets, finetune_results, dataset_similarity, graph_versions CASCADE"))
    for name, ref in MODELS.items():
        assert api.post("/v1/selection/models", json={"name": name, "ref": ref}).status_code == 201
    for name in [*DOMAINS, "reduced-target"]:
        assert api.post("/v1/selection/datasets", json={"name": name, "uri": folders[name]}).status_code == 201
    run_jobs(api, [("/v1/selection/datasets/profile", {"dataset": name}) for name in DOMAINS])
    run_jobs(api, [("/v1/training/jobs", {"model": m, "dataset": d, **TRAIN}) for m in MODELS for d in DOMAINS])
    results = api.get("/v1/selection/results").json()
    assert len(results) == len(MODELS) * len(DOMAINS)
    assert {(r["metric"], r["source"], r["higher_is_better"]) for r in results} == {("val_loss", "measured", False)}
    similarities = [e for e in api.get("/v1/selection/graph").json()["edges"] if e["type"] == "similarity"]
    assert len(similarities) == 3  # every pair of the three profiled datasets

    response = api.post("/v1/workflows/adapt", json={
        "dataset": "reduced-target", "top_k": 2, "training": {"steps": 3, "batch_size": 4},
        "quantization": {"avg_weight_bits": 4, "num_inference_steps": 4, "calibration_samples": 2,
                         "sampled_steps": 2}})
    assert response.status_code == 202, response.text
    parent = wait_for_job(api, response.json()["id"], timeout=900)
    assert parent["status"] == "succeeded", parent
    result = parent["result"]
    assert [r["model"] for r in result["ranking"]] and set(result["training_jobs"]) == set(MODELS)
    assert all(t["status"] == "succeeded" and t["recorded"] for t in result["training_jobs"].values())
    losses = {m: t["final_val_loss"] for m, t in result["training_jobs"].items()}
    assert result["best_model"] == min(losses, key=losses.get)
    assert api.get(result["artifact_url"]).status_code == 200
    children = api.get("/v1/jobs", params={"parent_id": parent["id"], "limit": 50}).json()["items"]
    kinds = sorted(c["kind"] for c in children)
    assert kinds.count("training.finetune") == 2 and "selection.profile" in kinds
    assert "quantization.quantize" in kinds and "selection.fit" in kinds
    assert parent["attempts"] == 1, "parking while children run must not count as an attempt"
    # The workflow's own fine-tunes are now edges of the graph.
    target_results = api.get("/v1/selection/results", params={"dataset": "reduced-target"}).json()
    assert {r["model"] for r in target_results} == set(MODELS)


def test_adapt_rejects_bad_input(api):
    assert api.post("/v1/workflows/adapt", json={"dataset": "x", "top_k": 0}).status_code == 422
    assert api.post("/v1/workflows/adapt", json={}).status_code == 422
