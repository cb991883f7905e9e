"""Memory-lean fine-tuning as a job through the gateway; results recorded with selection."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from services.common.diffusion import generate_synthetic_dataset

    return str(generate_synthetic_dataset(tmp_path_factory.mktemp("data") / "shapes", domain="shapes", n=24,
                                          seed=0, resolution=16))


def test_finetune_records_result_with_selection(api, celery_worker, tiny_dataset):
    suffix = celery_worker.proc.pid
    model_name, dataset_name = f"tiny-cond-{suffix}", f"shapes-{suffix}"
    assert api.post("/v1/selection/models", json={"name": model_name, "ref": "tiny:unet2d-condition"}).status_code == 201
    assert api.post("/v1/selection/datasets", json={"name": dataset_name, "uri": tiny_dataset}).status_code == 201
    response = api.post("/v1/training/jobs", json={"model": model_name, "dataset": dataset_name, "mode": "memlean",
                                                   "steps": 4, "batch_size": 4, "lr": 1e-3, "eval_size": 4,
                                                   "num_samples": 2, "sample_steps": 2})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.json()["id"], timeout=400)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert job["queue"] == "gpu"
    assert result["mode"] == "memlean" and result["steps_done"] == 4
    assert result["final_val_loss"] > 0 and result["peak_memory_bytes"] > 0
    assert result["selection"]["recorded"] is True
    from services.common.hardware import cpu_has_native_bf16

    # memlean computes in bf16: a CPU worker without bf16 instructions says so in the result
    assert ("warnings" in result) == (result["device"] == "cpu" and cpu_has_native_bf16() is False)
    assert result["attention_precision"] == ("fp32" if result["device"] == "cpu" else "bf16")  # auto
    recorded = api.get("/v1/selection/results", params={"dataset": dataset_name}).json()
    assert [(r["model"], r["metric"], r["source"], r["job_id"]) for r in recorded] == \
        [(model_name, "val_loss", "measured", job["id"])]
    assert recorded[0]["value"] == pytest.approx(result["final_val_loss"])
    assert api.get(result["artifact_url"]).status_code == 200


def test_cancel_keeps_checkpoint_and_resume_finishes(api, celery_worker, tiny_dataset):
    body = {"model": "tiny:unet2d", "dataset": tiny_dataset, "mode": "memlean", "steps": 400, "batch_size": 2,
            "eval_size": 2, "num_samples": 0}
    job = api.post("/v1/training/jobs", json=body).json()
    running = wait_for_job(api, job["id"], until=("running",), timeout=120)
    import time

    deadline = time.monotonic() + 120
    while api.get(f"/v1/jobs/{job['id']}").json()["detail"].get("step", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running["status"] == "running"
    api.post(f"/v1/jobs/{job['id']}/cancel")
    cancelled = wait_for_job(api, job["id"], timeout=120)
    assert cancelled["status"] == "cancelled"
    stopped_at = cancelled["result"]["stopped_at_step"]
    assert 0 < stopped_at < 400
    resumed = api.post("/v1/training/jobs", json={**body, "steps": stopped_at + 2, "resume_from_job": job["id"]})
    assert resumed.status_code == 202, resumed.text
    done = wait_for_job(api, resumed.json()["id"], timeout=300)
    assert done["status"] == "succeeded", done
    assert done["result"]["steps_done"] == stopped_at + 2


@pytest.mark.parametrize("change, status", [
    ({"model": "tiny:nope"}, 422),
    ({"model": "/no/such/model"}, 422),
    ({"steps": 0}, 422),
    ({"steps": -3}, 422),
    ({"lr": 0}, 422),
    ({"mode": "turbo"}, 422),
    ({"attention_precision": "fp8"}, 422),
    ({"resume_from_job": "doesnotexist"}, 404),
])
def test_bad_requests(api, tiny_dataset, change, status):
    body = {"model": "tiny:unet2d", "dataset": tiny_dataset, "steps": 2, **change}
    response = api.post("/v1/training/jobs", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_dataset_without_images_is_422(api, tmp_path):
    (tmp_path / "metadata.jsonl").write_text("")
    response = api.post("/v1/training/jobs", json={"model": "tiny:unet2d", "dataset": str(tmp_path), "steps": 2})
    assert response.status_code == 422
    assert "dataset" in response.json()["detail"]


def test_a_latent_model_fine_tunes_on_its_images_and_a_model_without_weights_is_422(api, celery_worker, tiny_dataset,
                                                                                   tmp_path):
    """The request is checked from the model's configs alone (its images are 16x16 RGB, its latents
    4x8x8) and the worker trains on the VAE's latents; a model folder without its weights is
    refused before it is queued."""
    from services.common.diffusion import build_tiny

    build_tiny("unet2d-condition", latent=True).save(tmp_path / "latent")
    body = {"model": str(tmp_path / "latent"), "dataset": tiny_dataset, "mode": "memlean", "steps": 3,
            "batch_size": 4, "eval_size": 4, "num_samples": 2, "sample_steps": 2, "record_result": False}
    response = api.post("/v1/training/jobs", json=body)
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.json()["id"], timeout=300)
    assert job["status"] == "succeeded", job
    assert 0 < job["result"]["final_val_loss"] < float("inf")
    for weights in (tmp_path / "latent" / "unet").glob("diffusion_pytorch_model*"):
        weights.unlink()
    refused = api.post("/v1/training/jobs", json=body)
    assert refused.status_code == 422 and "no weights in unet/" in refused.json()["detail"]
