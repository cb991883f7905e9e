"""`atelier serve` with no configuration: SQLite under ./.atelier/ and an in-process worker."""

from __future__ import annotations

import time

import httpx
import pytest

from services.gateway.benchserver import local_server
from tests.conftest import PLUGIN_ENV


@pytest.fixture
def embedded_server(tmp_path):
    # Only the plug-in test service is configured: everything else is the embedded default.
    with local_server(tmp_path, env=PLUGIN_ENV) as server:
        yield server


def test_embedded_serve_is_ready_and_runs_a_job(embedded_server):
    base, key, cwd = embedded_server
    headers = {"Authorization": f"Bearer {key}"}
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["broker"] is True
    assert (cwd / ".atelier" / "atelier.db").exists()
    submitted = httpx.post(f"{base}/v1/testsvc/jobs", json={"steps": 3, "step_seconds": 0.05}, headers=headers)
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert job["result"]["steps"] == 3
