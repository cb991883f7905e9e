"""/v1/quantization: MPQ-Diff jobs and their artifacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from services.common import artifacts
from services.common.api import CallerDep, IdempotencyKeyDep, accept_job
from services.common.db import SessionDep
from services.common.errors import Problem
from services.common.jobs.schemas import JobOut
from services.quantization.models import ARTIFACT_KIND, QuantizedModel
from services.quantization.schemas import QuantizationJobRequest, QuantizedModelOut

router = APIRouter(prefix="/v1/quantization", tags=["quantization"])


def check_request(body: QuantizationJobRequest) -> dict:
    """Reject an unreadable model, unknown layers or an unreachable budget before queueing."""
    from services.common.diffusion import ModelRefError, skeleton_bundle
    from services.quantization.mpq.pipeline import layer_layout, validate_config

    try:  # the layers traced on a weightless skeleton: the worker loads the weights
        layout = layer_layout(*skeleton_bundle(body.model))
    except ModelRefError as exc:
        raise Problem(422, str(exc), title="Unreadable model") from exc
    try:
        return validate_config(layout, body)
    except ValueError as exc:  # BudgetError is a ValueError
        raise Problem(422, str(exc), title="Invalid quantization request") from exc


@router.post("/jobs", status_code=202, responses={202: {"model": JobOut}})
def create_quantization_job(body: QuantizationJobRequest, db: SessionDep, caller: CallerDep,
                            idempotency_key: IdempotencyKeyDep = None):
    """Quantize a denoiser with MPQ-Diff (a job on the gpu queue; CPU when there is no GPU)."""
    check_request(body)
    return accept_job(db_session=db, kind="quantization.quantize", params=body.model_dump(mode="json"),
                      caller=caller, idempotency_key=idempotency_key)


@router.get("/models", response_model=list[QuantizedModelOut])
def list_quantized_models(db: SessionDep, offset: Annotated[int, Query(ge=0)] = 0,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[QuantizedModelOut]:
    rows = db.scalars(select(QuantizedModel).order_by(QuantizedModel.created_at.desc()).offset(offset).limit(limit))
    return [QuantizedModelOut.model_validate(r) for r in rows]


@router.get("/artifacts/{artifact_id}", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "The exported model, zipped."}})
def download_artifact(artifact_id: str, db: SessionDep) -> StreamingResponse:
    return artifacts.download(db_session=db, artifact_id=artifact_id, kind=ARTIFACT_KIND)
