"""MPQ-Diff as a job through the gateway, on a real Celery worker."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.conftest import wait_for_job

pytestmark = pytest.mark.integration

SMALL = {"num_inference_steps": 6, "calibration": {"n": 4, "sampled_steps": 3}, "eval_seeds": [1, 2, 3, 4],
         "signal": "sensitivity", "budget": {"avg_weight_bits": 4, "avg_act_bits": 8}}


def test_full_job_on_tiny_conditional_unet(api, celery_worker):
    # three candidate widths rather than five: the per-layer sensitivity measurement is most of the job
    response = api.post("/v1/quantization/jobs", json={"model": "tiny:unet2d-condition", **SMALL,
                                                        "weight_bits": [2, 4, 8],
                                                        "calibration": {"n": 4, "sampled_steps": 3,
                                                                        "prompts": ["a red circle", "blue stripes"]}})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.json()["id"], timeout=400)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert job["queue"] == "gpu" and result["device"] == "cpu"
    layers = result["layers"]
    assert layers and {"name", "parameters", "importance", "weight_bits", "act_bits"} <= set(layers[0])
    assert len(result["importance_matrix"]) == len(layers)
    assert len(result["importance_matrix"][0]) == 3  # K sampled steps
    assert result["weight_bytes_after"] < result["weight_bytes_before"]
    assert result["avg_weight_bits"] <= 4 + 1e-9
    assert {row["weight_bits"] for row in layers} <= {2, 4, 8}
    assert {"mse", "psnr", "ssim"} <= set(result["quality"])
    download = api.get(result["artifact_url"])
    assert download.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert any(name.endswith(".safetensors") for name in names)
    listed = api.get("/v1/quantization/models").json()
    assert any(row["job_id"] == job["id"] for row in listed)


@pytest.mark.parametrize("body, fragment", [
    ({"model": "tiny:unet2d", "budget": {"avg_weight_bits": 1.0}}, "budget"),
    ({"model": "tiny:unet2d", "budget": {"avg_weight_bits": 4, "weight_bytes": 10}}, "exactly one"),
    ({"model": "tiny:unet2d", "weight_bits": [1, 4]}, "2..8"),
    ({"model": "tiny:unet2d", "overrides": {"no.such.layer": 4}}, "no.such.layer"),
    ({"model": "/nonexistent/model"}, "model"),
    ({"model": "tiny:nonsense"}, "tiny"),
])
def test_bad_requests_are_rejected(api, body, fragment):
    response = api.post("/v1/quantization/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fragment.lower() in response.text.lower()


def test_a_model_folder_without_weights_is_rejected_before_it_is_queued(api, tmp_path):
    from services.common.diffusion import build_tiny

    build_tiny("unet2d").save(tmp_path / "m")
    for weights in (tmp_path / "m" / "unet").glob("diffusion_pytorch_model*"):
        weights.unlink()
    response = api.post("/v1/quantization/jobs", json={"model": str(tmp_path / "m")})
    assert response.status_code == 422 and "no weights in unet/" in response.json()["detail"]


def test_unknown_artifact_is_404(api):
    assert api.get("/v1/quantization/artifacts/nope").status_code == 404
