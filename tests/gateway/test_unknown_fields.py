"""A request body's unknown field is a 422 that names it: a typo must not run a job on defaults."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path, body, field", [
    ("/v1/quantization/jobs", {"model": "tiny:unet2d-condition", "candidate_bits": [2, 4]}, "candidate_bits"),
    ("/v1/quantization/jobs", {"model": "tiny:unet2d-condition", "calibration": {"dataset": "/data"}}, "dataset"),
    ("/v1/training/jobs", {"model": "tiny:unet2d-condition", "dataset": "/data", "learning_rate": 0.1},
     "learning_rate"),
    ("/v1/selection/rank", {"dataset": "d", "top_k": 3}, "top_k"),
    ("/v1/selection/fit", {"embeding": "sage"}, "embeding"),
    ("/v1/workflows/adapt", {"dataset": "d", "training": {"step": 5}}, "step"),
])
def test_an_unknown_field_is_refused_by_name(api, path, body, field):
    jobs_before = api.get("/v1/jobs", params={"limit": 200}).json()["items"]
    refused = api.post(path, json=body)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    errors = refused.json()["errors"]
    assert any(e["loc"][-1] == field and e["type"] == "extra_forbidden" for e in errors), errors
    assert api.get("/v1/jobs", params={"limit": 200}).json()["items"] == jobs_before


@pytest.mark.parametrize("path, raw, field", [
    ("/v1/training/jobs", b'{"model": "tiny:unet2d-condition", "dataset": "/data", "max_grad_norm": Infinity}',
     "max_grad_norm"),
    ("/v1/quantization/jobs", b'{"model": "tiny:unet2d-condition", "beta": NaN}', "beta"),
])
def test_a_number_json_cannot_store_is_refused_before_the_job_is_written(api, path, raw, field):
    # job parameters are stored as JSON, which has no NaN or Infinity (PostgreSQL refuses them)
    refused = api.post(path, content=raw, headers={"content-type": "application/json"})
    assert refused.status_code == 422, refused.text
    assert any(e["loc"][-1] == field for e in refused.json()["errors"])
