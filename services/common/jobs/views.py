"""/v1/jobs: read, list, cancel and follow jobs of every service."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from services.common.api import CallerDep
from services.common.db import SessionDep, session_scope
from services.common.errors import Problem
from services.common.jobs import service
from services.common.jobs.dispatch import get_dispatcher
from services.common.jobs.models import JobStatus
from services.common.jobs.schemas import JobOut, JobPage, StatusName

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

KEEPALIVE_S = 15.0  # well inside the 60 s read timeouts of httpx clients and common proxies


@router.get("", response_model=JobPage)
def list_jobs(db: SessionDep, caller: CallerDep,
              kind: Annotated[str | None, Query(max_length=100)] = None,
              status: StatusName | None = None,
              parent_id: Annotated[str | None, Query(max_length=32)] = None,
              cursor: Annotated[str | None, Query(max_length=500)] = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JobPage:
    rows, next_cursor = service.list_jobs(db_session=db, owner=caller.key_id, see_all=caller.is_admin,
                                          kind=kind, status=status, parent_id=parent_id, cursor=cursor,
                                          limit=limit)
    return JobPage(items=[JobOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, db: SessionDep, caller: CallerDep) -> JobOut:
    return JobOut.model_validate(service.get(db_session=db, job_id=job_id, owner=caller.key_id,
                                             see_all=caller.is_admin))


@router.post("/{job_id}/cancel", response_model=JobOut, status_code=202)
def cancel_job(job_id: str, db: SessionDep, caller: CallerDep) -> JobOut:
    job = service.get(db_session=db, job_id=job_id, owner=caller.key_id, see_all=caller.is_admin)
    was_running = job.status == JobStatus.running
    job = service.request_cancel(db_session=db, job=job)
    if was_running:
        try:
            get_dispatcher().revoke(job.id)
        except Exception:  # the cancel flag alone still stops it
            pass
    return JobOut.model_validate(job)


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}})
async def job_events(job_id: str, caller: CallerDep,
                     poll_s: Annotated[float, Query(ge=0.1, le=10.0)] = 0.5) -> StreamingResponse:
    """Progress as Server-Sent Events: one `progress` event per change, then `end`."""

    def snapshot() -> dict | None:
        with session_scope() as session:
            try:
                job = service.get(db_session=session, job_id=job_id, owner=caller.key_id, see_all=caller.is_admin)
            except Problem:
                return None
            return JobOut.model_validate(job).model_dump(mode="json")

    first = await asyncio.to_thread(snapshot)
    if first is None:
        raise Problem(404, f"job {job_id!r} does not exist")

    async def stream():
        current, last_key = first, None
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while True:
            key = (current["status"], current["progress"], current["stage"], json.dumps(current["detail"]))
            if key != last_key:
                last_key, last_sent = key, loop.time()
                yield f"event: progress\nid: {current['id']}\ndata: {json.dumps(current)}\n\n"
            elif loop.time() - last_sent >= KEEPALIVE_S:
                # A comment line: clients ignore it, and it keeps a quiet stream inside their read timeout
                # and a proxy's idle timeout while a long step reports nothing new.
                last_sent = loop.time()
                yield ": keep-alive\n\n"
            if JobStatus(current["status"]).terminal:
                yield f"event: end\ndata: {json.dumps({'status': current['status']})}\n\n"
                return
            await asyncio.sleep(poll_s)
            current = await asyncio.to_thread(snapshot) or current

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
