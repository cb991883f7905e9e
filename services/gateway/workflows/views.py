"""/v1/workflows: multi-service workflows run as one parent job."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from services.common.api import Caller, CallerDep, IdempotencyKeyDep, accept_job
from services.common.db import SessionDep
from services.common.errors import Problem
from services.common.jobs.schemas import JobOut
from services.gateway.forward import caller_headers, unreachable
from services.gateway.workflows.schemas import AdaptRequest

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])


async def _check_dataset(request: Request, dataset: str, caller: Caller) -> None:
    """A registered dataset with an image folder, or an image folder: anything else is a 422 now,
    not a parent job that fails at its first step (which checks again: rows change meanwhile)."""
    selection = request.app.state.targets["selection"]
    try:
        found = await selection.client.get(f"/v1/selection/datasets/{quote(dataset, safe='')}",
                                           headers=caller_headers(request, caller, scope="read"))
    except httpx.TransportError as exc:
        raise unreachable(selection) from exc
    if found.status_code == 200:
        if not found.json().get("uri"):
            raise Problem(422, f"dataset {dataset!r} has no uri (image folder) to profile and train on")
    elif found.status_code == 404:
        if not Path(dataset).expanduser().is_dir():
            raise Problem(422, f"{dataset!r} is neither a registered dataset nor an image folder")


@router.post("/adapt", status_code=202, responses={202: {"model": JobOut}})
async def adapt(body: AdaptRequest, request: Request, db: SessionDep, caller: CallerDep,
                idempotency_key: IdempotencyKeyDep = None):
    """Profile the dataset, rank the models, fine-tune the top-k memory-lean, record their results,
    and quantize the best measured one with MPQ-Diff. Child jobs are listed with `?parent_id=`."""
    await _check_dataset(request, body.dataset, caller)
    return await run_in_threadpool(accept_job, db_session=db, kind="workflow.adapt",
                                   params=body.model_dump(mode="json"), caller=caller,
                                   idempotency_key=idempotency_key)
