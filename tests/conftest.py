"""Shared fixtures: a fresh PostgreSQL database, Redis, a real Celery worker, the gateway.

Environment is set before any `services` import, since settings are read once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# compiled LightGBM forests need lleaves, installed only where llvmlite 0.44 has wheels (Python < 3.14)
requires_lleaves = pytest.mark.skipif(importlib.util.find_spec("lleaves") is None,
                                      reason="lleaves is not installed here: LightGBM predicts")
PG_ADMIN_URL = os.environ.get("ATELIER_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Unique per run, so concurrent runs (a developer and CI, or two developers) never collide.
RUN_ID = f"{os.getpid()}"
TEST_DB = os.environ.get("ATELIER_TEST_DB", f"atelier_test_{RUN_ID}")
PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{TEST_DB}"
REDIS_URL = os.environ.get("ATELIER_TEST_REDIS", "redis://127.0.0.1:6379/15")
TEST_HOME = Path(tempfile.mkdtemp(prefix="atelier-test-"))
PLUGIN_ENV = {
    "ATELIER_EXTRA_SERVICES": json.dumps({"testsvc": "tests.support.testsvc:create_app"}),
    "ATELIER_EXTRA_TASK_MODULES": json.dumps(["tests.support.testsvc"]),
}
TEST_ENV = {
    "ATELIER_DATABASE_URL": PG_URL,
    "ATELIER_BROKER_URL": REDIS_URL,
    "ATELIER_BROKER_KEY_PREFIX": f"atelier-test-{RUN_ID}:",
    "ATELIER_HOME": str(TEST_HOME),
    "ATELIER_JOB_MAX_ATTEMPTS": "3",
    # One shared key drives the whole suite; tests/gateway/test_rate_limit.py builds limited gateways itself.
    "ATELIER_RATE_LIMIT_PER_MINUTE": "0",
    "HF_HUB_OFFLINE": "1",
    **PLUGIN_ENV,
}
os.environ.update(TEST_ENV)
# Under pytest-xdist (`make test` runs one process per core) each process, and the Celery workers it
# starts, gets its share of the cores: torch's default of a thread per core in every process
# oversubscribes them (measured: 2 processes on 2 cores took 226 s with the default, 191 s with this).
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _XDIST_WORKERS > 1:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _cores // _XDIST_WORKERS)))


def _recreate_database() -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{TEST_DB}"'))
    engine.dispose()


def _drop_database() -> None:
    from sqlalchemy import create_engine, text

    from services.common.db import get_engine

    get_engine.cache_clear()
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
    engine.dispose()


def _drop_broker_keys() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{TEST_ENV['ATELIER_BROKER_KEY_PREFIX']}*"):
        client.delete(key)


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run (only tests that need one ask)."""
    _recreate_database()
    from services.common.migrate import upgrade

    upgrade("head")
    yield PG_URL
    _drop_broker_keys()
    _drop_database()


@pytest.fixture
def db_session(database):
    """A session whose work is rolled back after the test (Dispatch-style nested transaction)."""
    from sqlalchemy.orm import Session

    from services.common.db import get_engine

    connection = get_engine(database).connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


class WorkerProcess:
    def __init__(self, queues: str = "cpu,gpu", pool: str = "prefork", extra_env: dict | None = None) -> None:
        self.log_path = TEST_HOME / f"worker-{time.monotonic_ns()}.log"
        env = {**os.environ, **(extra_env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker", f"--queues={queues}", f"--pool={pool}",
             "--concurrency=1", "--loglevel=INFO"],
            cwd=REPO, env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT)
        self.wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def celery_worker(database) -> Iterator[WorkerProcess]:
    worker = WorkerProcess()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def gateway_app(database):
    from services.gateway.app import create_app

    return create_app()


@pytest.fixture(scope="session")
def gateway(gateway_app):
    from fastapi.testclient import TestClient

    with TestClient(gateway_app) as client:
        yield client


def _new_key(scope: str) -> str:
    from services.common.auth import create_key
    from services.common.db import session_scope

    with session_scope() as session:
        _, plaintext = create_key(db_session=session, scope=scope, name=f"test-{scope}")
    return plaintext


@pytest.fixture(scope="session")
def keys(database) -> dict[str, str]:
    return {scope: _new_key(scope) for scope in ("read", "write", "admin")}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class AuthedClient:
    """The shared gateway client with one key's header on every request."""

    def __init__(self, client, key: str) -> None:
        self.client, self.key = client, key

    def request(self, method: str, url: str, **kwargs):
        headers = {**auth(self.key), **(kwargs.pop("headers", None) or {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def put(self, url, **kw):
        return self.request("PUT", url, **kw)

    def patch(self, url, **kw):
        return self.request("PATCH", url, **kw)

    def delete(self, url, **kw):
        return self.request("DELETE", url, **kw)

    def stream(self, method: str, url: str, **kwargs):
        headers = {**auth(self.key), **(kwargs.pop("headers", None) or {})}
        return self.client.stream(method, url, headers=headers, **kwargs)


@pytest.fixture(scope="session")
def api(gateway, keys) -> AuthedClient:
    """The gateway client, authenticated with a write key."""
    return AuthedClient(gateway, keys["write"])


@pytest.fixture(scope="session")
def admin_api(gateway, keys) -> AuthedClient:
    return AuthedClient(gateway, keys["admin"])


def wait_for_job(client, job_id: str, *, until=("succeeded", "failed", "cancelled"), timeout: float = 120.0,
                 headers: dict | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers or {}).json()
        if job.get("status") in until:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {job.get('status')}: {job}")
