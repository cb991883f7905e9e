"""A job's life through the gateway, on a real Celery worker over Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.conftest import wait_for_job

pytestmark = pytest.mark.integration


def submit(api, headers=None, **body):
    return api.post("/v1/testsvc/jobs", json=body, headers=headers or {})


def wait_running(api, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "running" and job["detail"].get("pid"):
            return job
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    raise TimeoutError(job)


def test_lifecycle_through_gateway(api, celery_worker, tmp_path):
    marker = tmp_path / "done.txt"
    response = submit(api, steps=4, step_seconds=0.05, marker=str(marker))
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["kind"] == "testsvc.sleep" and job["queue"] == "cpu"
    done = wait_for_job(api, job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"steps": 4, "attempt": 1}
    assert done["progress"] == 1.0 and done["attempts"] == 1
    assert done["started_at"] and done["finished_at"]
    assert marker.read_text().count("\n") == 1


def test_failed_job_records_problem(api, celery_worker):
    job = submit(api, fail=True).json()
    done = wait_for_job(api, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["status"] == 422 and "asked to fail" in done["error"]["detail"]


def test_list_filters_and_cursor_pagination(api, celery_worker):
    ids = [submit(api, steps=1, step_seconds=0.0).json()["id"] for _ in range(5)]
    for job_id in ids:
        wait_for_job(api, job_id)
    seen, cursor = [], None
    while True:
        params = {"kind": "testsvc.sleep", "status": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/jobs", params=params).json()
        seen += [item["id"] for item in page["items"]]
        assert all(item["status"] == "succeeded" for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(ids) <= set(seen)
    assert len(seen) == len(set(seen)), "pages overlap"
    assert api.get("/v1/jobs", params={"status": "bogus"}).status_code == 422
    assert api.get("/v1/jobs", params={"cursor": "!!!"}).status_code == 422


def test_events_stream_progress_until_end(api, celery_worker):
    job = submit(api, steps=5, step_seconds=0.1).json()
    with api.client.stream("GET", f"/v1/jobs/{job['id']}/events", params={"poll_s": 0.1},
                           headers={"Authorization": f"Bearer {api.key}"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        for line in response.iter_lines():
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
            if line.startswith("data:") and events[-1] == "progress":
                last = json.loads(line[5:])
    assert events[-1] == "end" and events.count("progress") >= 2
    assert last["status"] == "succeeded"


def test_events_stream_keeps_a_quiet_stream_alive(api, celery_worker, monkeypatch):
    from services.common.jobs import views

    monkeypatch.setattr(views, "KEEPALIVE_S", 0.3)
    job = submit(api, steps=1, step_seconds=1.5).json()  # one long step: no progress change for 1.5 s
    with api.stream("GET", f"/v1/jobs/{job['id']}/events", params={"poll_s": 0.1}) as response:
        lines = list(response.iter_lines())
    assert ": keep-alive" in lines
    assert [line for line in lines if line.startswith("event:")][-1] == "event: end"


def test_wait_for_jobs_follows_each_stream_to_its_end(api, celery_worker):
    from services.gateway.demo import wait_for_jobs

    ok = submit(api, steps=3, step_seconds=0.1).json()
    failing = submit(api, fail=True).json()
    done = wait_for_jobs(api, [ok["id"], failing["id"]], timeout_s=60)
    assert [j["id"] for j in done] == [ok["id"], failing["id"]]
    assert done[0]["status"] == "succeeded" and done[0]["result"]["steps"] == 3
    assert done[1]["status"] == "failed" and "asked to fail" in json.dumps(done[1]["error"])
    with pytest.raises(RuntimeError, match="404"):
        wait_for_jobs(api, ["no-such-job"], timeout_s=5)


def test_cancel_queued_job_at_once(api, celery_worker):
    # Occupy the single worker process so the next job stays queued.
    blocker = submit(api, steps=40, step_seconds=0.05).json()
    queued = submit(api, steps=1).json()
    response = api.post(f"/v1/jobs/{queued['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert api.post(f"/v1/jobs/{queued['id']}/cancel").status_code == 409
    wait_for_job(api, blocker["id"])
    time.sleep(0.5)  # its message is delivered now; it must not run
    job = api.get(f"/v1/jobs/{queued['id']}").json()
    assert job["status"] == "cancelled" and job["attempts"] == 0


def test_cancel_running_job_stops_cooperatively(api, celery_worker):
    job = submit(api, steps=400, step_seconds=0.05).json()
    wait_running(api, job["id"])
    assert api.post(f"/v1/jobs/{job['id']}/cancel").json()["cancel_requested"] is True
    done = wait_for_job(api, job["id"], timeout=30)
    assert done["status"] == "cancelled"
    assert done["detail"]["step"] < 400


def test_idempotency_key(api, celery_worker):
    headers = {"Idempotency-Key": f"idem-{time.monotonic_ns()}"}
    first = submit(api, headers=headers, steps=1)
    again = submit(api, headers=headers, steps=1)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    different = submit(api, headers=headers, steps=2)
    assert different.status_code == 422
    assert different.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in different.json()["detail"]


def test_sigkill_worker_mid_job_redelivers_and_succeeds_once(api, celery_worker, tmp_path):
    marker = tmp_path / "completions.txt"
    job = submit(api, steps=60, step_seconds=0.05, marker=str(marker)).json()
    running = wait_running(api, job["id"])
    os.kill(running["detail"]["pid"], signal.SIGKILL)
    done = wait_for_job(api, job["id"], timeout=90)
    assert done["status"] == "succeeded", (done, celery_worker.log()[-3000:])
    assert done["attempts"] == 2 and done["result"]["attempt"] == 2
    assert marker.read_text().splitlines() == [f"{job['id']} attempt=2"]


def test_redelivery_cap_fails_clearly(api, celery_worker):
    job = submit(api, crash=True).json()
    done = wait_for_job(api, job["id"], timeout=120)
    assert done["status"] == "failed"
    assert done["error"]["title"] == "Redelivery limit reached"
    assert done["attempts"] == 3
    assert "giving up after 3 attempts" in done["error"]["detail"]
