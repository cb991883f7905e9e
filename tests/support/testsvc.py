"""A small service the tests define: its jobs sleep, crash or fail on purpose.

Mounted through the plug-in settings (ATELIER_EXTRA_SERVICES / ATELIER_EXTRA_TASK_MODULES),
exactly as a third-party service would be.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from services.common.api import CallerDep, IdempotencyKeyDep, accept_job, create_service_app
from services.common.db import SessionDep
from services.common.jobs.registry import job_kind
from services.common.jobs.runner import JobContext, JobInputError


class SleepRequest(BaseModel):
    steps: Annotated[int, Field(ge=1, le=10_000)] = 5
    step_seconds: Annotated[float, Field(ge=0.0, le=5.0)] = 0.05
    marker: str | None = Field(None, description="File to which each completed run appends a line.")
    fail: bool = False
    crash: bool = Field(False, description="SIGKILL the worker process on every attempt.")


router = APIRouter(prefix="/v1/testsvc", tags=["testsvc"])


@router.post("/jobs", status_code=202)
def submit_sleep_job(body: SleepRequest, db: SessionDep, caller: CallerDep,
                     idempotency_key: IdempotencyKeyDep = None):
    return accept_job(db_session=db, kind="testsvc.sleep", params=body.model_dump(), caller=caller,
                      idempotency_key=idempotency_key)


def create_app() -> FastAPI:
    return create_service_app("testsvc", [router], title="Test service")


@job_kind("testsvc.sleep", queue="cpu")
def run_sleep(ctx: JobContext) -> dict[str, Any]:
    params = SleepRequest.model_validate(ctx.params)
    if params.crash:
        os.kill(os.getpid(), signal.SIGKILL)
    if params.fail:
        raise JobInputError("asked to fail")
    for step in range(params.steps):
        ctx.progress(step / params.steps, f"step {step + 1}/{params.steps}", step=step + 1, pid=os.getpid())
        time.sleep(params.step_seconds)
    if params.marker:
        with Path(params.marker).open("a") as f:
            f.write(f"{ctx.job_id} attempt={ctx.attempt}\n")
    return {"steps": params.steps, "attempt": ctx.attempt}
