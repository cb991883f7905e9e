"""Forwarding to the services over httpx: by URL, or in-process through ASGITransport.

Both modes are the same code path: only the transport under the client differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from services.common.api import CALLER_KEY_HEADER, CALLER_SCOPE_HEADER, REQUEST_ID_HEADER, Caller
from services.common.clients import APP_FACTORIES, load_app
from services.common.errors import Problem
from services.common.settings import SERVICE_NAMES, Settings
PASSED_REQUEST_HEADERS = ("content-type", "accept", "idempotency-key", "content-length")
DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class ServiceTarget:
    name: str
    client: httpx.AsyncClient
    app: FastAPI | None  # set when the service runs in this process

    @property
    def embedded(self) -> bool:
        return self.app is not None


def build_targets(settings: Settings, extra_apps: dict[str, FastAPI] | None = None,
                  timeout_s: float = 300.0) -> dict[str, ServiceTarget]:
    targets: dict[str, ServiceTarget] = {}
    timeout = httpx.Timeout(timeout_s, connect=5.0)
    for name in SERVICE_NAMES:
        url = settings.service_url(name)
        if url:
            targets[name] = ServiceTarget(name, httpx.AsyncClient(base_url=url, timeout=timeout), None)
        else:
            app = load_app(APP_FACTORIES[name])
            targets[name] = ServiceTarget(name, _in_process_client(app, name, timeout), app)
    plugins = {name: load_app(path) for name, path in settings.extra_services.items()}
    for name, app in (plugins | (extra_apps or {})).items():
        targets[name] = ServiceTarget(name, _in_process_client(app, name, timeout), app)
    return targets


def _in_process_client(app: FastAPI, name: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.internal",
                             timeout=timeout)


def caller_headers(request: Request, caller: Caller, *, scope: str | None = None) -> dict[str, str]:
    """What a service trusts from the gateway: the request id, the checked caller's key and its
    scope (or a narrower one, for a call the gateway makes on the caller's behalf)."""
    headers = {REQUEST_ID_HEADER: request.state.request_id, CALLER_SCOPE_HEADER: scope or caller.scope}
    if caller.key_id:
        headers[CALLER_KEY_HEADER] = caller.key_id
    return headers


def unreachable(target: ServiceTarget) -> Problem:
    return Problem(503, f"the {target.name} service is unreachable; retry shortly", headers={"Retry-After": "5"})


async def forward(request: Request, target: ServiceTarget, caller: Caller) -> StreamingResponse:
    headers = {k: v for k, v in request.headers.items() if k.lower() in PASSED_REQUEST_HEADERS}
    headers.update(caller_headers(request, caller))
    # Forward the path as the client sent it (still percent-encoded): decoding it first would turn
    # %0F and friends into control characters that are not a valid URL.
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    try:
        outgoing = target.client.build_request(
            request.method, raw_path.decode("latin-1"), params=request.query_params.multi_items(),
            headers=headers, content=request.stream())
    except httpx.InvalidURL as exc:
        raise Problem(400, f"malformed request URL: {exc}") from exc
    try:
        upstream = await target.client.send(outgoing, stream=True)
    except httpx.TransportError as exc:
        raise unreachable(target) from exc
    response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS}
    return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=response_headers,
                             background=BackgroundTask(upstream.aclose))


async def service_ready(target: ServiceTarget) -> bool:
    try:
        response = await target.client.get("/readyz", timeout=5.0)
        return response.status_code == 200
    except httpx.HTTPError:
        return False
