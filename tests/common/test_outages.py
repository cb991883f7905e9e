"""Stop and restart Redis, then PostgreSQL, while requests arrive: clean 503s, then recovery without a restart.

The outages hit private instances started for this test (a redis-server and a throwaway PostgreSQL
cluster on free ports), never the shared services the rest of the suite uses. The gateway under test
is a real `atelier serve` process in Celery mode pointed at them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").exists() else None
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None or PG_BIN is None,
                       reason="needs redis-server and PostgreSQL server binaries"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; drop to the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivateRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _connects(self.port))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="atelier-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
                       check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"),
                                     "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"]),
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       check=False, stdout=subprocess.DEVNULL)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(ok, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise TimeoutError("service did not come up")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def private_stack():
    from services.gateway.benchserver import local_server

    redis, pg = PrivateRedis(), PrivatePostgres()
    redis.start()
    pg.start()
    home = Path(tempfile.mkdtemp(prefix="atelier-outage-"))
    env = {"ATELIER_DATABASE_URL": pg.url, "ATELIER_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
           "ATELIER_RATE_LIMIT_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1"}
    try:
        with local_server(home, env=env) as (base, key, _):
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
                yield client, redis, pg
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(pg.dir, ignore_errors=True)


def _is_problem(response: httpx.Response, status: int) -> bool:
    return (response.status_code == status
            and response.headers.get("content-type", "").startswith("application/problem+json")
            and response.json().get("status") == status)


def _count_jobs(client) -> int:
    return len(client.get("/v1/jobs", params={"limit": 200}).json()["items"])


def test_redis_outage_gives_503_for_queueing_and_recovers(private_stack):
    client, redis, _ = private_stack
    assert client.post("/v1/selection/models", json={"name": "outage-model"}).status_code == 201
    # rows a fit can train on, so that the fit request is valid and only the broker stands in its way
    assert client.post("/v1/selection/models", json={"name": "outage-model-2"}).status_code == 201
    for dataset in ("outage-d1", "outage-d2"):
        assert client.post("/v1/selection/datasets", json={"name": dataset}).status_code == 201
    rows = [{"model": m, "dataset": d, "value": v} for m, v in (("outage-model", 0.5), ("outage-model-2", 0.7))
            for d in ("outage-d1", "outage-d2")]
    assert client.post("/v1/selection/results", json=rows).status_code == 201
    before = _count_jobs(client)
    redis.stop()
    try:
        for _ in range(3):  # requests keep arriving while the broker is down
            assert client.get("/v1/selection/models").status_code == 200  # the database is enough for reads
            refused = client.post("/v1/selection/fit", json={})
            assert _is_problem(refused, 503), refused.text
            assert refused.headers.get("Retry-After")
        assert _count_jobs(client) == before, "a refused job must not be left behind half-created"
    finally:
        redis.start()
    accepted = client.post("/v1/selection/fit", json={})
    assert accepted.status_code == 202, accepted.text
    assert _count_jobs(client) == before + 1


def test_postgres_outage_gives_503_and_recovers(private_stack):
    client, _, pg = private_stack
    pg.stop()
    try:
        for path in ("/v1/selection/models", "/v1/jobs"):
            response = client.get(path)
            assert _is_problem(response, 503), (path, response.status_code, response.text)
            assert response.headers.get("Retry-After")
        assert client.get("/healthz").status_code == 200  # liveness stays up: nothing to restart
    finally:
        pg.start()
    deadline = time.monotonic() + 30
    while True:  # the pool reconnects on its own; no server restart
        response = client.get("/v1/selection/models")
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 200, response.text
    assert any(m["name"] == "outage-model" for m in response.json())
