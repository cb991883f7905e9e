"""A live embedded Atelier on loopback, seeded with a zoo: for latency and load benchmarks."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session


# a bench server's rate limit: on (its cost is part of what is measured) but never reached
RATE_LIMIT_OUT_OF_REACH = {"ATELIER_RATE_LIMIT_PER_MINUTE": str(10**9), "ATELIER_RATE_LIMIT_BURST": str(10**9)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(home: Path, *, env: dict[str, str] | None = None) -> Iterator[tuple[str, str, Path]]:
    """Run `atelier serve --admin-key` on a free loopback port with `home` as its working folder.

    Yields (base_url, admin_key, home); ATELIER_* variables of this process are not passed on."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    child_env.update({"PYTHONPATH": str(Path(__file__).resolve().parents[2]), **(env or {})})
    port = _free_port()
    log = home / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--port", str(port), "--admin-key"],
                            env=child_env, cwd=home, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        key = re.search(r"(atl_\S+)", log.read_text()).group(1)
        yield base, key, home
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def seeded_server(zoo, ranker, *, env: dict[str, str] | None = None,
                  compile_forests: bool = True) -> Iterator[tuple[str, str]]:
    """Yield (base_url, admin_key) of an embedded server on a fresh SQLite home holding `zoo` and `ranker`;
    `env` adds environment variables (settings) for the server process; the home is removed afterwards.
    With `compile_forests` the ranker's LightGBM models are compiled into the server's cache before it
    starts (what it would do after its first rank), so it serves them compiled at once; without, it
    ranks with LightGBM's own predict."""
    from services.common.migrate import upgrade
    from services.selection import service

    home = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    url = f"sqlite:///{home / '.atelier' / 'atelier.db'}"
    (home / ".atelier").mkdir()
    upgrade("head", url=url)
    engine = create_engine(url)
    with Session(engine) as session:
        service.store_zoo(db_session=session, zoo=zoo)
        service.store_version(db_session=session, zoo=zoo, ranker=ranker, config={"source": "bench"})
    engine.dispose()
    if compile_forests:
        from services.selection.mc.predictor import Ranker

        Ranker.from_bytes(ranker.to_bytes()).compile_forests(cache_dir=service.forest_cache_dir(home / ".atelier"))
    env = {**(env or {}), "ATELIER_COMPILE_FORESTS": str(compile_forests).lower()}
    try:
        with local_server(home, env=env) as (base, key, _):
            yield base, key
    finally:
        shutil.rmtree(home, ignore_errors=True)


def rank_latency_over_http(servers: dict[str, tuple[str, str]], body: dict, *, calls: int = 200) -> dict:
    """Sequential p50/p99 of POST /v1/selection/rank through the gateway of each named server
    (base_url, key): call for call in turn, so that every server meets the same machine."""
    import numpy as np

    clients = {name: httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
               for name, (base, key) in servers.items()}
    times: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for client in clients.values():
            client.post("/v1/selection/rank", json=body).raise_for_status()  # loads the graph
        for _ in range(calls):
            for name, client in clients.items():
                started = time.perf_counter()
                client.post("/v1/selection/rank", json=body).raise_for_status()
                times[name].append((time.perf_counter() - started) * 1000)
    finally:
        for client in clients.values():
            client.close()
    return {name: {"calls": calls, "candidates": len(body.get("candidates") or []) or None,
                   "p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))}
            for name, t in times.items()}
