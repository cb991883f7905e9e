"""What every service app shares: the factory, caller identity, health, metrics, job acceptance."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.orm import Session
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import Problem, install_problem_handlers, problem_response

log = logging.getLogger("atelier.api")

REQUESTS = Counter("atelier_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("atelier_http_request_seconds", "HTTP request latency", ["service", "method", "route"])
JOBS = Gauge("atelier_jobs", "Jobs in the jobs table, by kind and status (read at scrape time)", ["kind", "status"])
REQUEST_ID_HEADER = "X-Request-ID"
CALLER_KEY_HEADER = "X-Atelier-Key-Id"
CALLER_SCOPE_HEADER = "X-Atelier-Scope"
PARENT_JOB_HEADER = "X-Atelier-Parent-Job"


def operation_id(route: APIRoute) -> str:
    """Stable `<tag>-<name>` ids, so generated clients read well."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


@dataclass(frozen=True)
class Caller:
    key_id: str | None
    scope: str
    parent_job: str | None = None  # set when a workflow job submits this request

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def get_caller(
    key_id: Annotated[str | None, Header(alias=CALLER_KEY_HEADER, include_in_schema=False)] = None,
    scope: Annotated[str | None, Header(alias=CALLER_SCOPE_HEADER, include_in_schema=False)] = None,
    parent_job: Annotated[str | None, Header(alias=PARENT_JOB_HEADER, include_in_schema=False)] = None,
) -> Caller:
    # Set by the gateway after it checked the key (it passes no client-set X-Atelier-* header on),
    # or by a worker calling a service; services are reachable only through those.
    return Caller(key_id=key_id, scope=scope or "admin", parent_job=parent_job)


CallerDep = Annotated[Caller, Depends(get_caller)]
IdempotencyKeyDep = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def accept_job(*, db_session: Session, kind: str, params: dict[str, Any], caller: Caller,
               idempotency_key: str | None = None, parent_id: str | None = None) -> JSONResponse:
    """Create (or replay) a job, hand it to a worker and answer 202 with its Location."""
    from services.common.jobs import service as jobs
    from services.common.jobs.dispatch import get_dispatcher
    from services.common.jobs.schemas import JobOut
    from services.common.outage import is_outage

    job, created = jobs.create(db_session=db_session, kind=kind, params=params, owner=caller.key_id,
                               idempotency_key=idempotency_key, parent_id=parent_id or caller.parent_job)
    if created:
        try:
            get_dispatcher().submit(job)
        except Exception as exc:
            if not is_outage(exc):
                raise
            jobs.delete_unsent(db_session=db_session, job=job)
            raise Problem(503, "The job queue is unavailable; nothing was queued. Retry shortly.",
                          headers={"Retry-After": "5"}) from exc
    body = JobOut.model_validate(job).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


def health_router(service: str, *, extra_checks: dict[str, Any] | None = None) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", name=f"{service}_healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz", name=f"{service}_readyz")
    def readyz() -> JSONResponse:
        from services.common.db import database_ready
        from services.common.jobs.dispatch import get_dispatcher

        checks = {"database": database_ready(), "broker": get_dispatcher().ready()}
        for name, check in (extra_checks or {}).items():
            checks[name] = bool(check())
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @router.get("/metrics", name=f"{service}_metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        _read_job_counts()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def _read_job_counts() -> None:
    """Job counts for dashboards: every known kind and status (zeros included, so series exist)."""
    from sqlalchemy import func, select

    from services.common.db import session_scope
    from services.common.jobs.models import Job, JobStatus
    from services.common.jobs.registry import all_kinds, load_task_modules
    from services.common.outage import is_outage

    load_task_modules()  # idempotent; makes every kind known even before its first job
    try:
        with session_scope() as session:
            rows = session.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)).all()
    except Exception as exc:  # a scrape during an outage still answers, with the last counts
        if is_outage(exc):
            return
        raise
    counts = {(kind, str(status)): n for kind, status, n in rows}
    kinds = {k.name for k in all_kinds()} | {kind for kind, _ in counts}
    for kind in kinds:
        for status in JobStatus:
            JOBS.labels(kind=kind, status=str(status)).set(counts.get((kind, str(status)), 0))


def create_service_app(name: str, routers: list[APIRouter], *, title: str, version: str = "0.1.0",
                       description: str = "") -> FastAPI:
    app = FastAPI(title=title, version=version, description=description,
                  generate_unique_id_function=operation_id)
    install_problem_handlers(app)
    instrument(app, name)
    app.include_router(health_router(name))
    for router in routers:
        app.include_router(router)
    return app


def instrument(app: FastAPI, service: str) -> None:
    app.add_middleware(RequestIdAndMetrics, service=service)


# room for the multipart envelope around an upload of the largest accepted size
MULTIPART_ENVELOPE_BYTES = 1024 * 1024


class BodyTooLarge(Problem):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body exceeds {max_bytes} bytes", title="Content Too Large")


class BodySizeLimit:
    """Refuses a request body larger than `max_bytes` with 413 before it is buffered anywhere: at
    once from its Content-Length, else (a chunked body) as soon as the bytes read pass the limit.
    JSON bodies are parsed whole in memory, so without this one request could hold gigabytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def refuse() -> None:
            await problem_response(BodyTooLarge(self.max_bytes), Request(scope))(scope, receive, send)

        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await refuse()
            return
        read, exceeded, started, replaced = 0, False, False, False

        async def counted() -> Message:
            nonlocal read, exceeded
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def answer(message: Message) -> None:
            # whatever the app makes of the interrupted read (FastAPI: a 400 parse error), the client
            # is told why: the 413 goes out in place of the app's own answer
            nonlocal started, replaced
            if message["type"] == "http.response.start" and exceeded and not started:
                started = replaced = True
                await refuse()
                return
            if replaced:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except BodyTooLarge:
            if not started:
                await refuse()


class RequestIdAndMetrics:
    """Request id (the caller's or a new one, in the request state and the response headers) and
    Prometheus metrics. Plain ASGI rather than `@app.middleware("http")`: Starlette's
    BaseHTTPMiddleware adds a task group and a body stream per request (~0.25 ms a layer here, and a
    forwarded call crosses three such layers)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            LATENCY.labels(self.service, scope["method"], path).observe(time.perf_counter() - started)
