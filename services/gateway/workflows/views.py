"""/v1/workflows: multi-service workflows run as one parent job."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.api import CallerDep, IdempotencyKeyDep, accept_job
from services.common.db import SessionDep
from services.common.jobs.schemas import JobOut
from services.gateway.workflows.schemas import AdaptRequest

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])


@router.post("/adapt", status_code=202, responses={202: {"model": JobOut}})
def adapt(body: AdaptRequest, db: SessionDep, caller: CallerDep, idempotency_key: IdempotencyKeyDep = None):
    """Profile the dataset, rank the models, fine-tune the top-k memory-lean, record their results,
    and quantize the best measured one with MPQ-Diff. Child jobs are listed with `?parent_id=`."""
    return accept_job(db_session=db, kind="workflow.adapt", params=body.model_dump(mode="json"), caller=caller,
                      idempotency_key=idempotency_key)
