"""The gateway refuses a request body over its limit with 413 problem+json, before buffering it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from services.common.api import MULTIPART_ENVELOPE_BYTES
from services.common.settings import Settings
from tests.conftest import auth

UPLOAD_MAX = 1000
LIMIT = UPLOAD_MAX + MULTIPART_ENVELOPE_BYTES


@pytest.fixture(scope="module")
def small_gateway(database):
    from services.gateway.app import create_app

    settings = Settings(database_url=database, upload_max_bytes=UPLOAD_MAX, rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as client:
        yield client


def _results(n_bytes: int) -> bytes:
    """A JSON list of results at least n_bytes long (for models that do not exist: never stored)."""
    row = {"model": "ghost-model", "dataset": "ghost-dataset", "value": 0.5}
    return json.dumps([row] * (n_bytes // len(json.dumps(row)) + 1)).encode()


def _assert_too_large(response) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == f"the request body exceeds {LIMIT} bytes"


def test_a_body_over_the_limit_is_413_whether_its_length_is_declared_or_chunked(small_gateway, keys):
    headers = {**auth(keys["write"]), "content-type": "application/json"}
    body = _results(LIMIT + 10)
    _assert_too_large(small_gateway.post("/v1/selection/results", content=body, headers=headers))

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    _assert_too_large(small_gateway.post("/v1/selection/results", content=chunks(), headers=headers))
    # under the limit the request goes through to the service (here: a 404 for the unknown model)
    small = small_gateway.post("/v1/selection/results", content=_results(100), headers=headers)
    assert small.status_code == 404 and "ghost-model" in small.json()["detail"]
