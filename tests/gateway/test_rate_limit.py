"""Per-key rate limiting at the gateway: token buckets in Redis (shared by replicas) or in process."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.common.settings import Settings
from services.gateway.ratelimit import MemoryBuckets
from tests.conftest import REDIS_URL, auth

PER_MINUTE, BURST = 30, 3  # a token every 2 s, three at once: quick to exhaust, slow enough to time on a busy CI box


def new_key(scope: str = "read") -> str:
    from services.common.auth import create_key
    from services.common.db import session_scope

    with session_scope() as session:
        return create_key(db_session=session, scope=scope, name="rate-limit-test")[1]


def gateway_with(database: str, **overrides) -> TestClient:
    from services.gateway.app import create_app

    settings = Settings(**{"database_url": database, "rate_limit_per_minute": PER_MINUTE,
                           "rate_limit_burst": BURST, **overrides})
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def redis_gateways(database):
    """Two gateway replicas on the same Redis and key prefix (the test environment's)."""
    with gateway_with(database, broker_url=REDIS_URL) as one, gateway_with(database, broker_url=REDIS_URL) as two:
        yield one, two


@pytest.fixture(scope="module")
def memory_gateway(database):
    with gateway_with(database, broker_url=None) as client:
        yield client


def assert_rate_limited(response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 429 and body["title"] == "Too Many Requests" and "retry" in body["detail"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60 / PER_MINUTE + 1
    return retry_after


@pytest.mark.parametrize("backend", ["redis", "memory"])
def test_limit_per_key_with_retry_after_and_refill(backend, request):
    client = request.getfixturevalue("redis_gateways")[0] if backend == "redis" else request.getfixturevalue(
        "memory_gateway")
    key, other = auth(new_key()), auth(new_key())
    for _ in range(BURST):
        assert client.get("/v1/jobs", headers=key).status_code == 200
    assert_rate_limited(client.get("/v1/jobs", headers=key))
    retry_after = assert_rate_limited(client.get("/v1/selection/models", headers=key))  # forwarded routes count too
    denied_at = time.monotonic()

    for _ in range(BURST):  # another key has its own bucket
        assert client.get("/v1/jobs", headers=other).status_code == 200

    time.sleep(max(0.0, denied_at + retry_after + 0.05 - time.monotonic()))  # Retry-After is enough
    assert client.get("/v1/jobs", headers=key).status_code == 200
    assert_rate_limited(client.get("/v1/jobs", headers=key))  # refilled by the rate, not reset to a full bucket


def test_replicas_share_the_redis_bucket(redis_gateways):
    one, two = redis_gateways
    key = auth(new_key())
    for _ in range(BURST):
        assert one.get("/v1/jobs", headers=key).status_code == 200
    assert_rate_limited(two.get("/v1/jobs", headers=key))


def test_public_paths_and_refused_keys_are_not_limited(redis_gateways):
    client = redis_gateways[0]
    key = auth(new_key())
    for _ in range(BURST + 1):
        client.get("/v1/jobs", headers=key)
    assert_rate_limited(client.get("/v1/jobs", headers=key))
    for path in ("/healthz", "/metrics"):
        for _ in range(BURST + 2):
            assert client.get(path, headers=key).status_code == 200
            assert client.get(path).status_code == 200
    for _ in range(BURST + 2):  # no key, or a bad one: 401 every time, never 429
        assert client.get("/v1/jobs").status_code == 401
        assert client.get("/v1/jobs", headers=auth("atl_000000000000_unknown")).status_code == 401


def test_zero_turns_rate_limiting_off(database):
    with gateway_with(database, broker_url=REDIS_URL, rate_limit_per_minute=0) as client:
        key = auth(new_key())
        assert [client.get("/v1/jobs", headers=key).status_code for _ in range(BURST * 4)] == [200] * (BURST * 4)


def test_redis_down_fails_open_with_a_warning(database, caplog):
    caplog.set_level(logging.WARNING, logger="atelier.gateway.ratelimit")
    with gateway_with(database, broker_url="redis://127.0.0.1:1/0") as client:  # nothing listens on port 1
        key = auth(new_key())
        statuses = [client.get("/v1/jobs", headers=key).status_code for _ in range(BURST * 2)]
    assert statuses == [200] * (BURST * 2)
    warnings = [r for r in caplog.records if r.name == "atelier.gateway.ratelimit" and r.levelno == logging.WARNING]
    assert warnings and "unavailable" in warnings[0].getMessage()


def test_memory_bucket_refills_at_the_configured_rate():
    now = [100.0]
    buckets = MemoryBuckets(per_minute=60, burst=2, clock=lambda: now[0])
    assert buckets.take("k").allowed and buckets.take("k").allowed
    denied = buckets.take("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(1.0)
    now[0] += 0.5
    assert buckets.take("k").retry_after_s == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("k").allowed and not buckets.take("k").allowed
    now[0] += 3600  # a long idle refills to the burst, no further
    assert [buckets.take("k").allowed for _ in range(3)] == [True, True, False]
    assert buckets.take("other").allowed


def test_settings_reject_a_meaningless_limit():
    with pytest.raises(ValidationError):
        Settings(rate_limit_burst=0)
    with pytest.raises(ValidationError):
        Settings(rate_limit_per_minute=-1)
