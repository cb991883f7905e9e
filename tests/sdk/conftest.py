"""The generated SDK, imported straight from sdk/ so a fresh clone needs no extra install."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

SDK_ROOT = Path(__file__).resolve().parents[2] / "sdk"
SDK_PROJECT = SDK_ROOT / "atelier-client"

if str(SDK_PROJECT) not in sys.path:
    sys.path.insert(0, str(SDK_PROJECT))


class GatewayTransport(httpx.BaseTransport):
    """Carries the SDK's httpx requests to the in-process gateway through its TestClient.

    The TestClient is an httpx2 client (Starlette's), whose transport httpx cannot use directly; this
    hands each request over as built (URL, headers with the SDK's auth, body) and the answer back.
    Requests run on the TestClient's event loop, next to the app's lifespan.
    """

    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.gateway.request(request.method, str(request.url), headers=request.headers.multi_items(),
                                      content=request.read())
        return httpx.Response(answer.status_code, headers=answer.headers.multi_items(), content=answer.content,
                              request=request)


def sdk_client(gateway, key: str | None):
    """An SDK client on the in-process gateway: base URL, auth header and parsing are the SDK's own."""
    from atelier_client import AuthenticatedClient, Client

    options = {"base_url": "http://testserver", "httpx_args": {"transport": GatewayTransport(gateway)},
               "raise_on_unexpected_status": True}
    if key is None:
        return Client(**options)
    return AuthenticatedClient(token=key, **options)


@pytest.fixture(scope="session")
def sdk(gateway, keys):
    """The SDK client with a write key."""
    return sdk_client(gateway, keys["write"])
