"""The gateway: the one public entry. Auth, forwarding, jobs, merged OpenAPI."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.api import CALLER_KEY_HEADER, CALLER_SCOPE_HEADER, MULTIPART_ENVELOPE_BYTES, BodySizeLimit, \
    Caller, health_router, instrument, operation_id
from services.common.errors import Problem, install_problem_handlers, problem_response
from services.common.jobs.views import router as jobs_router
from services.common.settings import Settings, get_settings
from services.gateway import keys
from services.gateway.dashboard import router as dashboard_router
from services.gateway.forward import ServiceTarget, build_targets, forward, service_ready
from services.gateway.ratelimit import install_rate_limit
from services.gateway.workflows.views import router as workflows_router
from services.gateway.security import PUBLIC_PATHS, authenticate

log = logging.getLogger("atelier.gateway")


class Authenticate:
    """The API key check: the caller in the request state and, for the services, in the caller
    headers (any the client sent are replaced). Plain ASGI (see common.api.RequestIdAndMetrics)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        if path in PUBLIC_PATHS or path.startswith("/dashboard"):
            await self.app(scope, receive, send)
            return
        try:
            # In a thread: the key lookup waits for a database connection, and a blocked event loop
            # cannot finish the requests that would give one back (a deadlock under load).
            caller = await asyncio.to_thread(authenticate, request)
        except Problem as problem:
            await problem_response(problem, request)(scope, receive, send)
            return
        except Exception as exc:
            from services.common.outage import is_outage

            if not is_outage(exc):
                raise
            await problem_response(Problem(503, "The key store is unavailable; retry shortly.",
                                           headers={"Retry-After": "5"}), request)(scope, receive, send)
            return
        request.state.caller = caller
        # Internal routes (jobs) read the caller from the same headers the services get.
        headers = [(k, v) for k, v in scope["headers"]
                   if k.decode().lower() not in (CALLER_KEY_HEADER.lower(), CALLER_SCOPE_HEADER.lower())]
        headers.append((CALLER_KEY_HEADER.lower().encode(), caller.key_id.encode()))
        headers.append((CALLER_SCOPE_HEADER.lower().encode(), caller.scope.encode()))
        scope["headers"] = headers
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, extra_services: dict[str, FastAPI] | None = None,
               start_embedded_worker: bool = False) -> FastAPI:
    """Build the gateway; services with no URL configured run in this process."""
    settings = settings or get_settings()
    targets = build_targets(settings, extra_services)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker = None
        if start_embedded_worker and settings.embedded:
            from services.common.jobs.dispatch import embedded_worker

            worker = embedded_worker()
            worker.start()
        yield
        if worker is not None:
            worker.stop()
        for target in targets.values():
            await target.client.aclose()

    app = FastAPI(title="Atelier", version="0.1.0", lifespan=lifespan, generate_unique_id_function=operation_id,
                  description="Adapt text-to-image diffusion models to your data: choose a model (M&C), "
                              "fine-tune it memory-lean, quantize it with MPQ-Diff.")
    app.state.targets = targets
    install_problem_handlers(app)
    install_rate_limit(app, settings)  # added before the auth layer, so it runs after it and sees the caller
    app.add_middleware(Authenticate)

    if settings.cors_origins:  # closed unless configured; outside the auth layer, as preflights carry no key
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    app.add_middleware(BodySizeLimit, max_bytes=settings.upload_max_bytes + MULTIPART_ENVELOPE_BYTES)
    instrument(app, "gateway")  # outermost: sets the request id the auth layer and forwarding use

    app.include_router(_gateway_health(targets))
    app.include_router(jobs_router)
    app.include_router(keys.router)
    app.include_router(workflows_router)
    app.include_router(dashboard_router)
    app.include_router(_forwarding_router(targets))  # last: its catch-all must not shadow the routes above
    _install_merged_openapi(app, targets)
    return app


def _gateway_health(targets: dict[str, ServiceTarget]) -> APIRouter:
    router = health_router("gateway")
    readyz_route = next(r for r in router.routes if getattr(r, "path", "") == "/readyz")
    router.routes.remove(readyz_route)

    @router.get("/readyz", name="gateway_readyz")
    async def readyz() -> JSONResponse:
        import asyncio

        from services.common.db import database_ready
        from services.common.jobs.dispatch import get_dispatcher

        checks: dict[str, bool] = {
            "database": await asyncio.to_thread(database_ready),
            "broker": await asyncio.to_thread(lambda: get_dispatcher().ready()),
        }
        for name, target in targets.items():
            checks[f"service:{name}"] = await service_ready(target)
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    return router


def _forwarding_router(targets: dict[str, ServiceTarget]) -> APIRouter:
    router = APIRouter()

    def caller_of(request: Request) -> Caller:
        return request.state.caller

    @router.api_route("/v1/{service}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                      include_in_schema=False)
    async def forward_to_service(service: str, path: str, request: Request,
                                 caller: Caller = Depends(caller_of)):
        target = targets.get(service)
        if target is None:
            raise Problem(404, f"no such API: /v1/{service}")
        return await forward(request, target, caller)

    return router


def _install_merged_openapi(app: FastAPI, targets: dict[str, ServiceTarget]) -> None:
    def merged() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = spec.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name, target in targets.items():
            service_spec = _service_spec(target)
            if service_spec is None:
                continue
            for path, item in service_spec.get("paths", {}).items():
                if path.startswith("/v1/"):
                    spec["paths"][path] = item
            for schema_name, schema in service_spec.get("components", {}).get("schemas", {}).items():
                schemas.setdefault(schema_name, schema)
        components["securitySchemes"] = {"ApiKey": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"ApiKey": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = merged  # type: ignore[method-assign]


def _service_spec(target: ServiceTarget) -> dict[str, Any] | None:
    if target.app is not None:
        return target.app.openapi()
    try:
        base = str(target.client.base_url)
        return httpx.get(f"{base}/openapi.json", timeout=5.0).json()
    except (httpx.HTTPError, ValueError):
        log.warning("could not fetch the %s service's OpenAPI; it is left out of the merged spec", target.name)
        return None
