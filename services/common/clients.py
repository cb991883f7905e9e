"""Calling a service from a worker or another service: by URL, or in-process over ASGI.

The same rule as the gateway's: a service with a URL is remote; one without runs here.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import httpx
from fastapi import FastAPI

from services.common.api import CALLER_KEY_HEADER, CALLER_SCOPE_HEADER, PARENT_JOB_HEADER
from services.common.settings import SERVICE_NAMES, get_settings

APP_FACTORIES = {name: f"services.{name}.app:create_app" for name in SERVICE_NAMES}


def load_app(factory_path: str) -> FastAPI:
    module, _, attr = factory_path.partition(":")
    factory: Callable[[], FastAPI] = getattr(importlib.import_module(module), attr)
    return factory()


@lru_cache
def _local_app(name: str) -> FastAPI:
    return load_app(APP_FACTORIES[name])


def call_service(name: str, method: str, path: str, *, owner: str | None = None, scope: str = "write",
                 parent_job: str | None = None, idempotency_key: str | None = None, timeout_s: float = 120.0,
                 **kwargs: Any) -> httpx.Response:
    """A synchronous request to a service, on behalf of a job's owner (for worker code)."""
    headers = {CALLER_SCOPE_HEADER: scope}
    for header, value in ((CALLER_KEY_HEADER, owner), (PARENT_JOB_HEADER, parent_job),
                          ("Idempotency-Key", idempotency_key)):
        if value:
            headers[header] = value
    url = get_settings().service_url(name)
    if url:
        with httpx.Client(base_url=url, timeout=timeout_s) as client:
            return client.request(method, path, headers=headers, **kwargs)

    async def in_process() -> httpx.Response:
        transport = httpx.ASGITransport(app=_local_app(name))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}.internal",
                                     timeout=timeout_s) as client:
            response = await client.request(method, path, headers=headers, **kwargs)
            await response.aread()
            return response

    return asyncio.run(in_process())
