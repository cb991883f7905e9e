"""`atelier serve` with no configuration: SQLite under ./.atelier/ and an in-process worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import PLUGIN_ENV, REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def embedded_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(PLUGIN_ENV)  # the test job kind, mounted as a plug-in service
    env["PYTHONPATH"] = str(REPO)
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--port", str(port), "--admin-key"],
                            cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        key = re.search(r"(atl_\S+)", log.read_text()).group(1)
        yield base, key, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=20)


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
