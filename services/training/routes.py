"""/v1/training: memory-lean fine-tuning jobs and their runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from services.common import artifacts
from services.common.api import CallerDep, IdempotencyKeyDep, accept_job
from services.common.db import SessionDep
from services.common.errors import Problem
from services.common.jobs.models import Job
from services.common.jobs.schemas import JobOut
from services.training import service
from services.training.models import ARTIFACT_KIND, TrainingRun
from services.training.schemas import TrainingJobRequest, TrainingRunOut

router = APIRouter(prefix="/v1/training", tags=["training"])


def check_request(body: TrainingJobRequest, db, owner: str | None) -> None:
    """Unknown model, unusable dataset or a missing checkpoint: a 4xx now rather than a failed job."""
    from services.common.diffusion import DatasetError, ModelRefError, inspect_model, load_imagefolder

    model = service.resolve_model(body.model, owner=owner)
    try:  # configs and file names only: the worker loads the weights
        info = inspect_model(model.value)
    except ModelRefError as exc:
        raise Problem(422, f"unknown or unreadable model: {exc}", title="Unknown model") from exc
    try:
        dataset = service.resolve_dataset(body.dataset, owner=owner)
        load_imagefolder(dataset.value, resolution=body.resolution or info.image_size, channels=info.image_channels)
    except (DatasetError, ValueError) as exc:
        raise Problem(422, f"unusable dataset: {exc}", title="Unusable dataset") from exc
    if body.resume_from_job:
        job = db.get(Job, body.resume_from_job)
        if job is None or job.kind != "training.finetune":
            raise Problem(404, f"training job {body.resume_from_job!r} does not exist")
        if not service.checkpoint_of(job.id).exists():
            raise Problem(409, f"job {job.id} left no checkpoint to resume from")


@router.post("/jobs", status_code=202, responses={202: {"model": JobOut}})
def create_training_job(body: TrainingJobRequest, db: SessionDep, caller: CallerDep,
                        idempotency_key: IdempotencyKeyDep = None):
    """Fine-tune a denoiser (a job on the gpu queue; CPU when there is no GPU)."""
    check_request(body, db, caller.key_id)
    return accept_job(db_session=db, kind="training.finetune", params=body.model_dump(mode="json"),
                      caller=caller, idempotency_key=idempotency_key)


@router.get("/runs", response_model=list[TrainingRunOut])
def list_training_runs(db: SessionDep, offset: Annotated[int, Query(ge=0)] = 0,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[TrainingRunOut]:
    rows = db.scalars(select(TrainingRun).order_by(TrainingRun.created_at.desc()).offset(offset).limit(limit))
    return [TrainingRunOut.model_validate(r) for r in rows]


@router.get("/artifacts/{artifact_id}", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "The fine-tuned model, zipped."}})
def download_training_artifact(artifact_id: str, db: SessionDep) -> StreamingResponse:
    return artifacts.download(db_session=db, artifact_id=artifact_id, kind=ARTIFACT_KIND)
