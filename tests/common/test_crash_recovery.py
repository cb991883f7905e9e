"""SIGKILL the worker process in the middle of a real training job and of a real quantization job:
each job is redelivered, completes exactly once and keeps one result (one run row, one artifact)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from services.common.artifacts import Artifact
from services.common.db import session_scope
from services.common.jobs.models import Job
from tests.conftest import wait_for_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from services.common.diffusion import generate_synthetic_dataset

    return str(generate_synthetic_dataset(tmp_path_factory.mktemp("data") / "shapes", domain="shapes", n=16,
                                          seed=0, resolution=16, overwrite=True))


def _kill_worker_once_progressed(api, job_id: str, *, progressed, timeout: float = 240.0) -> int:
    """Wait until the job runs and `progressed(job)`; SIGKILL the process running it; return its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), job
        if job["status"] == "running" and progressed(job):
            with session_scope() as session:
                identity = session.get(Job, job_id).worker
            pid = int(identity.rsplit(":", 1)[1])
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not progress: {job}")


def _rows(model, job_id: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.job_id == job_id))


def test_training_job_survives_a_killed_worker(api, celery_worker, tiny_dataset):
    from services.training.models import TrainingRun

    body = {"model": "tiny:unet2d-condition", "dataset": tiny_dataset, "mode": "memlean", "steps": 60,
            "batch_size": 2, "eval_size": 2, "num_samples": 0, "record_result": False}
    job = api.post("/v1/training/jobs", json=body).json()
    _kill_worker_once_progressed(api, job["id"], progressed=lambda j: j["detail"].get("step", 0) >= 2)
    done = wait_for_job(api, job["id"], timeout=400)
    assert done["status"] == "succeeded", (done, celery_worker.log()[-3000:])
    assert done["attempts"] == 2
    assert done["result"]["steps_done"] == 60
    assert _rows(TrainingRun, job["id"]) == 1 and _rows(Artifact, job["id"]) == 1
    assert api.get(done["result"]["artifact_url"]).status_code == 200


def test_quantization_job_survives_a_killed_worker(api, celery_worker):
    from services.quantization.models import QuantizedModel

    body = {"model": "tiny:unet2d", "num_inference_steps": 6, "calibration": {"n": 4, "sampled_steps": 3},
            "eval_seeds": [1, 2, 3, 4], "signal": "sensitivity", "budget": {"avg_weight_bits": 4, "avg_act_bits": 8}}
    job = api.post("/v1/quantization/jobs", json=body).json()
    _kill_worker_once_progressed(api, job["id"], progressed=lambda j: j["progress"] > 0.0)
    done = wait_for_job(api, job["id"], timeout=400)
    assert done["status"] == "succeeded", (done, celery_worker.log()[-3000:])
    assert done["attempts"] == 2
    assert _rows(QuantizedModel, job["id"]) == 1 and _rows(Artifact, job["id"]) == 1
    assert api.get(done["result"]["artifact_url"]).status_code == 200
