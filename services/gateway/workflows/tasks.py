"""The adapt workflow: a resumable parent job that parks while its child jobs run.

Each run of the handler starts at the top: what was decided is in `ctx.state`, and children are
submitted with idempotency keys derived from the parent, so a re-run finds them again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.common import artifacts
from services.common.clients import call_service
from services.common.db import session_scope
from services.common.jobs.models import Job, JobStatus
from services.common.jobs.registry import job_kind
from services.common.jobs.runner import JobContext, JobInputError, JobWaiting
from services.gateway.workflows.schemas import AdaptRequest


class _Children:
    """Submitting and following a parent's child jobs through the services' APIs."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def submit(self, service: str, path: str, body: dict[str, Any], key: str) -> str:
        response = call_service(service, "POST", path, json=body, owner=self.ctx.owner,
                                parent_job=self.ctx.job_id, idempotency_key=f"{self.ctx.job_id}:{key}")
        if response.status_code != 202:
            raise JobInputError(f"{service} refused the {key} step ({response.status_code}): {response.text[:400]}")
        return response.json()["id"]

    def wait(self, job_ids: list[str], stage: str) -> dict[str, Job]:
        """Return the ended jobs, or park the parent until they all end."""
        with session_scope() as session:
            jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
            for job in jobs.values():
                session.expunge(job)
        if any(not JobStatus(j.status).terminal for j in jobs.values()):
            raise JobWaiting(job_ids, stage=stage)
        return jobs


def _selection(method: str, path: str, ctx: JobContext, **kwargs):
    return call_service("selection", method, path, owner=ctx.owner, **kwargs)


def _resolve_dataset(request: AdaptRequest, ctx: JobContext) -> dict[str, Any]:
    found = _selection("GET", f"/v1/selection/datasets/{request.dataset}", ctx, scope="read")
    if found.status_code == 200:
        row = found.json()
        if not row.get("uri"):
            raise JobInputError(f"dataset {row['name']!r} has no uri (image folder) to profile and train on")
        return {"id": row["id"], "name": row["name"], "uri": row["uri"]}
    folder = Path(request.dataset).expanduser()
    if not folder.is_dir():
        raise JobInputError(f"{request.dataset!r} is neither a registered dataset nor an image folder")
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    created = _selection("POST", "/v1/selection/datasets", ctx,
                         json={"name": f"{folder.name}-{digest}", "uri": str(folder.resolve())})
    if created.status_code == 409:  # registered by an earlier run of this workflow
        created = _selection("GET", f"/v1/selection/datasets/{folder.name}-{digest}", ctx, scope="read")
    if created.status_code not in (200, 201):
        raise JobInputError(f"could not register {folder}: {created.text[:300]}")
    row = created.json()
    return {"id": row["id"], "name": row["name"], "uri": row["uri"]}


def _ended(job: Job, what: str) -> Job:
    if job.status != JobStatus.succeeded:
        detail = (job.error or {}).get("detail", job.status)
        raise JobInputError(f"the {what} job {job.id} ended {job.status}: {detail}")
    return job


@job_kind("workflow.adapt", queue="cpu")
def run_adapt(ctx: JobContext) -> dict[str, Any]:
    request = AdaptRequest.model_validate(ctx.params)
    children = _Children(ctx)
    state = ctx.state

    # 1. profile the dataset
    if "dataset" not in state:
        state["dataset"] = _resolve_dataset(request, ctx)
        ctx.save_state()
    dataset = state["dataset"]
    ctx.progress(0.02, "profiling the dataset")
    profile_id = children.submit("selection", "/v1/selection/datasets/profile", {"dataset": dataset["id"]},
                                 key="profile")
    _ended(children.wait([profile_id], "profiling the dataset")[profile_id], "profile")

    # 2. rank the models (fitting the graph first if it was never trained)
    if "ranking" not in state:
        ctx.progress(0.15, "ranking models")
        body = {"dataset": dataset["id"], "k": request.top_k,
                **({"candidates": request.candidates} if request.candidates else {})}
        ranked = _selection("POST", "/v1/selection/rank", ctx, json=body)
        if ranked.status_code == 409:
            fit_id = children.submit("selection", "/v1/selection/fit", {"evaluate": False}, key="fit")
            _ended(children.wait([fit_id], "training the matching graph")[fit_id], "fit")
            ranked = _selection("POST", "/v1/selection/rank", ctx, json=body)
        if ranked.status_code != 200:
            raise JobInputError(f"ranking failed ({ranked.status_code}): {ranked.text[:400]}")
        state["ranking"] = ranked.json()
        ctx.save_state()
    ranking = state["ranking"]["ranking"]
    if not ranking:
        raise JobInputError("no candidate model to fine-tune")

    # 3-4. fine-tune the top-k memory-lean; each training job records its result with selection
    ctx.progress(0.25, f"fine-tuning the top {len(ranking)}")
    train_ids = {entry["model"]: children.submit(
        "training", "/v1/training/jobs",
        {"model": entry["model"], "dataset": dataset["name"], "mode": "memlean", **request.training.model_dump(),
         "num_samples": 0}, key=f"train:{entry['model']}") for entry in ranking}
    trained = children.wait(list(train_ids.values()), f"fine-tuning {len(train_ids)} models")
    measured = {model: trained[job_id] for model, job_id in train_ids.items()
                if trained[job_id].status == JobStatus.succeeded}
    if not measured:
        errors = "; ".join(f"{m}: {(trained[j].error or {}).get('detail', trained[j].status)}"
                           for m, j in train_ids.items())
        raise JobInputError(f"every fine-tuning job failed: {errors}")

    # 5. quantize the best measured model
    best_model = min(measured, key=lambda m: measured[m].result["final_val_loss"])
    best_job = measured[best_model]
    with session_scope() as session:
        model_dir = artifacts.local_path(artifacts.get(db_session=session, artifact_id=best_job.result["artifact_id"]))
    ctx.progress(0.8, f"quantizing {best_model}")
    q = request.quantization
    quant_id = children.submit("quantization", "/v1/quantization/jobs", {
        "model": str(model_dir), "signal": q.signal, "num_inference_steps": q.num_inference_steps,
        "budget": {"avg_weight_bits": q.avg_weight_bits, "avg_act_bits": q.avg_act_bits},
        "calibration": {"n": q.calibration_samples, "sampled_steps": min(q.sampled_steps, q.num_inference_steps)},
        "eval_seeds": list(range(q.calibration_samples))}, key="quantize")
    quantized = _ended(children.wait([quant_id], f"quantizing {best_model}")[quant_id], "quantization")

    return {
        "dataset": dataset,
        "ranking": [{"model": r["model"], "rank": r["rank"], "score": r["score"]} for r in ranking],
        "predictor_version": state["ranking"]["predictor_version"],
        "profile_job": profile_id,
        "training_jobs": {m: {"job_id": j, "status": trained[j].status,
                              "final_val_loss": (trained[j].result or {}).get("final_val_loss"),
                              "recorded": ((trained[j].result or {}).get("selection") or {}).get("recorded")}
                          for m, j in train_ids.items()},
        "best_model": best_model,
        "best_training_job": best_job.id,
        "quantization_job": quant_id,
        "artifact_id": quantized.result["artifact_id"],
        "artifact_url": quantized.result["artifact_url"],
        "quantized": {k: quantized.result.get(k) for k in ("avg_weight_bits", "weight_bytes_before",
                                                            "weight_bytes_after", "quality")},
    }
