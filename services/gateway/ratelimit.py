"""Per-key rate limiting at the gateway: one token bucket per API key.

A bucket holds up to `rate_limit_burst` tokens and refills at `rate_limit_per_minute / 60` a second;
each authenticated request takes one. With a Redis broker the buckets live in Redis (one Lua script
a request, so every gateway replica draws on the same bucket); otherwise in this process. Trouble
with Redis never fails a request: the limiter lets it through and logs a warning (fail open).
Requests without a key (health, metrics, the OpenAPI document) are never limited.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.errors import PROBLEM_MEDIA_TYPE, Problem
from services.common.settings import Settings

log = logging.getLogger("atelier.gateway.ratelimit")

RATE_LIMITED = Counter("atelier_rate_limited_total", "Requests refused with 429 by the per-key rate limit.")
FAILED_OPEN = Counter("atelier_rate_limit_failed_open_total",
                      "Requests let through unchecked because the rate-limit store was unavailable.")
STORE_RETRY_AFTER_S = 5.0  # after a Redis error, skip it this long rather than pay its timeout on every request
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0


ALLOW = Decision(True)


class Buckets(Protocol):
    remote: bool  # True: take() does network I/O and may raise

    def take(self, key_id: str) -> Decision: ...


class MemoryBuckets:
    """Buckets of this process (one gateway replica, the embedded default)."""

    remote = False

    def __init__(self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when); bounded by the keys issued
        self._lock = threading.Lock()

    def take(self, key_id: str) -> Decision:
        with self._lock:
            now = self.clock()
            tokens, then = self._state.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._state[key_id] = (tokens - 1.0, now)
                return ALLOW
            self._state[key_id] = (tokens, now)
            return Decision(False, (1.0 - tokens) / self.rate)


# Token bucket in one atomic step. Redis' own clock, so replicas with skewed clocks agree; the
# key expires once a full bucket would have refilled, so idle keys cost nothing.
_TAKE_SCRIPT = """
local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * per_ms)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + 1000)
return {allowed, wait_ms}
"""


class RedisBuckets:
    """Buckets shared by every gateway replica that uses the same Redis and key prefix."""

    remote = True

    def __init__(self, url: str, *, prefix: str, per_minute: int, burst: int, timeout_s: float = 0.25) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.prefix = f"{prefix}ratelimit:"
        self.per_ms = per_minute / 60_000.0
        self.burst = burst
        self._take = self.client.register_script(_TAKE_SCRIPT)

    def take(self, key_id: str) -> Decision:
        allowed, wait_ms = self._take(keys=[self.prefix + key_id], args=[self.burst, repr(self.per_ms)])
        return ALLOW if int(allowed) else Decision(False, int(wait_ms) / 1000.0)


class RateLimiter:
    def __init__(self, buckets: Buckets, *, per_minute: int, burst: int) -> None:
        self.buckets, self.per_minute, self.burst = buckets, per_minute, burst
        self._store_down_until = 0.0

    async def check(self, key_id: str) -> Decision:
        """The decision for one request of `key_id`; never raises."""
        if not self.buckets.remote:
            return self.buckets.take(key_id)
        if time.monotonic() < self._store_down_until:
            FAILED_OPEN.inc()
            return ALLOW
        try:
            # In a thread: a slow Redis must not stall the event loop's other requests.
            decision = await asyncio.to_thread(self.buckets.take, key_id)
        except Exception as exc:  # any store failure: let the request through rather than answer 500
            self._store_down_until = time.monotonic() + STORE_RETRY_AFTER_S
            FAILED_OPEN.inc()
            log.warning("rate-limit store unavailable (%s: %s); requests pass unlimited for the next %.0f s",
                        type(exc).__name__, exc, STORE_RETRY_AFTER_S)
            return ALLOW
        return decision


class RateLimitMiddleware:
    """Answers 429 problem+json with Retry-After once the caller's key has no token left.

    Runs inside the auth layer, which puts the checked caller in the request state."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app, self.limiter = app, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = scope.get("state", {}).get("caller") if scope["type"] == "http" else None
        if caller is None or not caller.key_id:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.check(caller.key_id)
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.inc()
        retry_after = max(1, math.ceil(decision.retry_after_s))
        problem = Problem(429, f"This key may make {self.limiter.per_minute} requests a minute, in bursts of up to "
                               f"{self.limiter.burst}; retry in {retry_after} s.",
                          headers={"Retry-After": str(retry_after)})
        response = JSONResponse(problem.to_dict(scope.get("path")), status_code=429, media_type=PROBLEM_MEDIA_TYPE,
                                headers=problem.headers)
        await response(scope, receive, send)


def build_limiter(settings: Settings) -> RateLimiter | None:
    """The limiter `settings` ask for, or None when rate limiting is off."""
    per_minute, burst = settings.rate_limit_per_minute, settings.rate_limit_burst
    if per_minute <= 0:
        return None
    url = settings.broker_url
    if url and url.startswith(REDIS_SCHEMES):
        buckets: Buckets = RedisBuckets(url, prefix=settings.broker_key_prefix, per_minute=per_minute, burst=burst)
    else:
        if url:
            log.warning("the broker is not Redis: rate-limit buckets are per gateway replica")
        buckets = MemoryBuckets(per_minute, burst)
    return RateLimiter(buckets, per_minute=per_minute, burst=burst)


def install_rate_limit(app: FastAPI, settings: Settings) -> RateLimiter | None:
    """Add the limiter as middleware; add it before the auth middleware so that it runs after it."""
    limiter = build_limiter(settings)
    if limiter is not None:
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.state.rate_limiter = limiter
    return limiter
