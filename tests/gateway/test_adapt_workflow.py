"""A reduced zoo measured through the API, then the adapt workflow end to end, on a Celery worker."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from services.gateway.demo import DEMO_MODELS, DEMO_SOURCES, DEMO_TARGET, generate_demo_data, seed_demo

pytestmark = pytest.mark.integration


def test_dataset_generation_is_deterministic(tmp_path):
    a = generate_demo_data(tmp_path / "a")
    b = generate_demo_data(tmp_path / "b")
    for name in a:
        files = sorted(p.relative_to(a[name]) for p in Path(a[name]).rglob("*"))
        assert len(files) > 1
        assert all((Path(a[name]) / f).read_bytes() == (Path(b[name]) / f).read_bytes() for f in files)


def test_reduced_zoo_then_adapt_workflow(api, celery_worker, tmp_path):
    from services.common.db import session_scope

    with session_scope() as session:
        session.execute(text("TRUNCATE models, datasets, finetune_results, dataset_similarity, graph_versions CASCADE"))
    parent = seed_demo(api, tmp_path, say=lambda _: None)
    results = api.get("/v1/selection/results", params={"limit": 100}).json()
    source_results = [r for r in results if r["dataset"] in DEMO_SOURCES]
    assert len(source_results) == len(DEMO_MODELS) * len(DEMO_SOURCES)
    assert {(r["metric"], r["source"], r["higher_is_better"]) for r in results} == {("val_loss", "measured", False)}
    edges = api.get("/v1/selection/graph").json()["edges"]
    by_method = Counter(e["method"] for e in edges if e["type"] == "similarity")
    # 4 profiled datasets, every pair, in each of the profile's measures: combined, image, caption
    assert sorted(by_method.values()) == [6, 6, 6] and sum(":image:" in m or ":caption:" in m for m in by_method) == 2

    result = parent["result"]
    assert set(r["model"] for r in result["ranking"]) == set(DEMO_MODELS)
    assert set(result["training_jobs"]) == set(DEMO_MODELS)
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
    target_results = api.get("/v1/selection/results", params={"dataset": DEMO_TARGET[0]}).json()
    assert {r["model"] for r in target_results} == set(DEMO_MODELS)


def test_adapt_rejects_bad_input(api, tmp_path):
    assert api.post("/v1/workflows/adapt", json={"dataset": "x", "top_k": 0}).status_code == 422
    assert api.post("/v1/workflows/adapt", json={}).status_code == 422
    # a dataset that is neither registered nor a folder, or registered without a folder: refused
    # at the request, before a parent job exists
    jobs_before = api.get("/v1/jobs", params={"kind": "workflow.adapt", "limit": 100}).json()["items"]
    for missing in ("no-such-dataset", str(tmp_path / "no-such-folder")):
        refused = api.post("/v1/workflows/adapt", json={"dataset": missing})
        assert refused.status_code == 422 and "neither a registered dataset nor an image folder" in refused.text
    name = f"adapt-no-uri-{tmp_path.name}"
    assert api.post("/v1/selection/datasets", json={"name": name}).status_code == 201
    refused = api.post("/v1/workflows/adapt", json={"dataset": name})
    assert refused.status_code == 422 and "has no uri" in refused.json()["detail"]
    assert api.get("/v1/jobs", params={"kind": "workflow.adapt", "limit": 100}).json()["items"] == jobs_before
