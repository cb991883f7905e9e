"""A small demo a new user sees work: a reduced zoo measured through the API, then `adapt`.

Used by `atelier serve --demo` (hence `make run`) and by the tests, over any httpx-like client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from services.common.jobs.models import JobStatus

DEMO_MODELS = {"demo-unet-cond": "tiny:unet2d-condition", "demo-dit": "tiny:dit"}
DEMO_SOURCES = {"demo-shapes": "shapes", "demo-stripes": "stripes", "demo-rings": "rings"}
DEMO_TARGET = ("demo-target-warm-shapes", "shapes-warm")
DEMO_TRAINING = {"mode": "memlean", "steps": 3, "batch_size": 4, "lr": 1e-3, "eval_size": 4, "num_samples": 0}


def generate_demo_data(root: Path, *, n: int = 16, seed: int = 3) -> dict[str, str]:
    from services.common.diffusion import generate_synthetic_dataset

    domains = {**DEMO_SOURCES, DEMO_TARGET[0]: DEMO_TARGET[1]}
    return {name: str(generate_synthetic_dataset(root / name, domain=domain, n=n, seed=seed, resolution=16,
                                                 overwrite=True))
            for name, domain in domains.items()}


def wait_for_jobs(client, job_ids: list[str], *, timeout_s: float = 900.0) -> list[dict]:
    """Each job's final state, read from its event stream: one request a job, not a poll loop that
    would bury the server's console (and the admin key it printed) under access-log lines."""
    deadline = time.monotonic() + timeout_s
    return [_follow_job(client, job_id, deadline=deadline) for job_id in job_ids]


def _follow_job(client, job_id: str, *, deadline: float) -> dict:
    while True:
        try:
            job = _read_event_stream(client, job_id, deadline=deadline)
        except httpx.TransportError:  # the connection dropped mid-stream: the job lives on in the database
            job = None
        if job is not None and JobStatus(job["status"]).terminal:
            return job
        # The stream ended without the job ending (a server restart): look again, then follow anew.
        job = client.get(f"/v1/jobs/{job_id}").json()
        if JobStatus(job["status"]).terminal:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job.get('status')}")
        time.sleep(1.0)


def _read_event_stream(client, job_id: str, *, deadline: float) -> dict | None:
    """The last `progress` event's job, once the stream sends `end` or closes."""
    job, event = None, None
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"job {job_id}: {response.status_code} {response.text[:300]}")
        for line in response.iter_lines():  # a keep-alive comment arrives at least every 15 s
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status'] if job else 'unknown'}")
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "end":
                    break
            elif line.startswith("data:") and event == "progress":
                job = json.loads(line[5:])
    return job


def _submit_all(client, requests: list[tuple[str, dict]]) -> list[dict]:
    ids = []
    for path, body in requests:
        response = client.post(path, json=body)
        if response.status_code != 202:
            raise RuntimeError(f"{path} refused: {response.status_code} {response.text[:300]}")
        ids.append(response.json()["id"])
    jobs = wait_for_jobs(client, ids)
    failed = [j for j in jobs if j["status"] != "succeeded"]
    if failed:
        raise RuntimeError(f"demo jobs failed: {[j['error'] for j in failed]}")
    return jobs


def seed_demo(client, data_root: Path, *, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Register 2 tiny models and 4 generated datasets, measure the 6 source pairs, run `adapt`."""
    earlier = client.get("/v1/jobs", params={"kind": "workflow.adapt", "status": "succeeded", "limit": 1}).json()
    if earlier["items"]:
        say(f"demo: already seeded (adapt job {earlier['items'][0]['id']})")
        return earlier["items"][0]
    folders = generate_demo_data(data_root)
    for name, ref in DEMO_MODELS.items():
        client.post("/v1/selection/models", json={"name": name, "ref": ref, "family": ref.split(":")[1]})
    for name, folder in folders.items():
        client.post("/v1/selection/datasets", json={"name": name, "uri": folder})
    say("demo: profiling 3 source datasets")
    _submit_all(client, [("/v1/selection/datasets/profile", {"dataset": name}) for name in DEMO_SOURCES])
    say("demo: fine-tuning 2 models x 3 datasets (memory-lean, a few steps each)")
    _submit_all(client, [("/v1/training/jobs", {"model": m, "dataset": d, **DEMO_TRAINING})
                         for m in DEMO_MODELS for d in DEMO_SOURCES])
    say("demo: running the adapt workflow on a new dataset")
    response = client.post("/v1/workflows/adapt", json={
        "dataset": DEMO_TARGET[0], "top_k": 2, "training": {"steps": 3, "batch_size": 4},
        "quantization": {"avg_weight_bits": 4, "num_inference_steps": 4, "calibration_samples": 2,
                         "sampled_steps": 2}})
    if response.status_code != 202:
        raise RuntimeError(f"adapt refused: {response.status_code} {response.text[:300]}")
    parent = wait_for_jobs(client, [response.json()["id"]])[0]
    if parent["status"] != "succeeded":
        raise RuntimeError(f"adapt ended {parent['status']}: {parent['error']}")
    say(f"demo: adapt chose {parent['result']['best_model']}; quantized artifact at "
        f"{parent['result']['artifact_url']} (job {parent['id']})")
    return parent
