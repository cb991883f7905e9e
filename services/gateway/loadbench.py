"""`atelier bench load`: a bounded load test of POST /v1/selection/rank through the gateway, on loopback only.

By default it starts its own embedded server (a fresh SQLite home seeded with a zoo and a fitted
ranker, as `bench selection --latency` does) and drives it with N concurrent asyncio clients for S
seconds. The zoo is the TransferGraph image benchmark when present, else a small synthetic one.

The server runs with its per-key rate limit set far above anything the bench can send: the limiter's
per-request cost is part of what is measured, but it never refuses a call. With the default limit
(1,200 a minute per key) one key tops out at 20 requests a second and the bench would measure the
limiter, not the service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

RANK_PATH = "/v1/selection/rank"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "transfergraph-image"
MAX_CLIENTS, MAX_SECONDS = 256, 600.0
Say = Callable[[str], None]


class LoadBenchError(ValueError):
    """Bad arguments or an unusable target: the CLI shows it as a usage error."""


def ensure_loopback(url: str) -> None:
    """Refuse any target but this machine: a load test must not be pointed at someone else's server."""
    host = urlsplit(url).hostname or ""
    if urlsplit(url).scheme not in ("http", "https"):
        raise LoadBenchError(f"{url!r} is not an http(s) URL")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: not resolved, since DNS could answer anything
        loopback = False
    if not loopback:
        raise LoadBenchError(f"refusing to load-test {host!r}: only loopback targets (127.0.0.0/8, ::1, localhost)")


# ---- what is ranked


def synthetic_zoo(n_models: int = 32, n_datasets: int = 8, seed: int = 0):
    """Datasets on a line, models with a home position; quality falls with distance (as the ranker tests)."""
    from services.selection.mc.records import DatasetRow, ModelRow, ResultRow, SimilarityRow, Zoo

    rng = np.random.default_rng(seed)
    zoo = Zoo()
    homes = np.linspace(0.0, n_datasets - 1.0, n_models)
    for j in range(n_models):
        zoo.models[f"m{j}"] = ModelRow(name=f"m{j}", family=("a", "b")[j % 2], num_parameters=1e6 * (1 + j % 3),
                                       features={"accuracy": float(rng.uniform(0.7, 0.9))})
    for i in range(n_datasets):
        zoo.datasets[f"d{i}"] = DatasetRow(name=f"d{i}", size=1000.0, metadata={"number_of_classes": 10})
        for j, home in enumerate(homes):
            quality = 0.5 + 0.4 * np.exp(-((home - i) ** 2) / 2.0) + rng.normal(0, 0.005)
            zoo.results.append(ResultRow(f"m{j}", f"d{i}", "eval_accuracy", float(quality)))
    for a in range(n_datasets):
        for b in range(a + 1, n_datasets):
            zoo.similarities.append(SimilarityRow(f"d{a}", f"d{b}", float(b - a), "line"))
    return zoo


def prepare(data: Path | None, *, synthetic: bool = False) -> tuple[Any, Any, dict, dict]:
    """(zoo, fitted ranker, rank request body, description of the zoo)."""
    from services.selection.mc.graph import tables_from_zoo
    from services.selection.mc.predictor import Ranker, RankerConfig
    from services.selection.mc.records import load_benchmark_dir

    if data is not None and not data.is_dir():
        raise LoadBenchError(f"{data} is not a directory")
    data = data or DEFAULT_DATA
    fast_lgbm = ({"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 5},)
    if not synthetic and data.is_dir():
        zoo, _ = load_benchmark_dir(data)
        source = data.name
        config = RankerConfig(inner_folds=3, graph_folds=2, lgbm_grid=fast_lgbm)  # the primary, smaller
    else:
        zoo, source = synthetic_zoo(), "synthetic"
        # No GNN: the synthetic zoo is there to exercise the serving path quickly, not the ranker.
        config = RankerConfig(embedding="none", families=("model", "dataset", "evidence"), inner_folds=3,
                              lgbm_grid=fast_lgbm)
    tables = tables_from_zoo(zoo)
    target = tables.datasets[0]
    ranker = Ranker(config).fit(tables, hide=[target])
    body = {"dataset": target, "k": 10}
    about = {"source": source, "models": len(zoo.models), "datasets": len(zoo.datasets), "target": target,
             "candidates": len(tables.models), "k": 10}
    return zoo, ranker, body, about


def bench_server(zoo, ranker):
    """benchserver.seeded_server, with the rate limit set out of reach (see the module docstring)."""
    from services.gateway.benchserver import RATE_LIMIT_OUT_OF_REACH, seeded_server

    return seeded_server(zoo, ranker, env={**RATE_LIMIT_OUT_OF_REACH, "HF_HUB_OFFLINE": "1"})


# ---- the load


async def drive(base: str, key: str, body: dict, *, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` workers each sending the request back to back until `seconds` have passed."""
    latencies_ms: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60.0,
                                 limits=limits) as client:
        warm = await client.post(RANK_PATH, json=body)  # loads the graph into the server's cache: not counted
        if warm.status_code != 200:
            raise LoadBenchError(f"the warm-up call failed: {warm.status_code} {warm.text[:300]}")
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post(RANK_PATH, json=body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                if status == "200":
                    latencies_ms.append((time.perf_counter() - started) * 1000)
                statuses[status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    requests = sum(statuses.values())
    lat = np.asarray(latencies_ms) if latencies_ms else np.asarray([np.nan])
    errors = {status: n for status, n in sorted(statuses.items()) if status != "200"}
    return {
        "requests": requests, "ok": statuses.get("200", 0), "elapsed_s": elapsed,
        "throughput_rps": requests / elapsed if elapsed > 0 else 0.0,
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                       "max": float(np.max(lat)), "mean": float(np.mean(lat))},
        "errors": errors, "error_count": sum(errors.values()),
    }


def machine() -> dict[str, Any]:
    import psutil

    from services.common.hardware import cpu_model

    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(), "load_average": [round(x, 2) for x in psutil.getloadavg()],
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "gpu": gpu,
            "note": "client and server share this machine; rank runs on the CPU"}


def table(report: dict[str, Any]) -> str:
    lat, run = report["latency_ms"], report
    rows = [
        ("target", f"POST {RANK_PATH} ({report['zoo']['candidates']} candidates, {report['zoo']['source']})"),
        ("clients x seconds", f"{report['clients']} x {report['seconds']:g}"),
        ("requests", f"{run['requests']} ({run['ok']} ok)"),
        ("throughput", f"{run['throughput_rps']:.1f} req/s"),
        ("latency p50 / p99 / max", f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms"),
        ("errors", ", ".join(f"{s}: {n}" for s, n in run["errors"].items()) or "none"),
        ("machine", f"{report['machine']['cpu']}, {report['machine']['logical_cpus']} CPUs, "
                    f"GPU {report['machine']['gpu'] or 'none'}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run_load_bench(*, clients: int = 32, seconds: float = 30.0, out: Path | None = None, data: Path | None = None,
                   synthetic: bool = False, url: str | None = None, key: str | None = None,
                   say: Say = print) -> dict[str, Any]:
    """Run the load test and return the report (also printed as a table and as JSON, and written to `out`)."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise LoadBenchError(f"clients must be between 1 and {MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise LoadBenchError(f"seconds must be more than 0 and at most {MAX_SECONDS:g}")
    if url is not None:
        ensure_loopback(url)
        if not key:
            raise LoadBenchError("--url needs --key (a read key of that server)")

    if url is None:
        say("fitting a ranker for the bench server ...")
        zoo, ranker, body, about = prepare(data, synthetic=synthetic)
        say(f"starting a loopback server seeded with {about['models']} models x {about['datasets']} datasets ...")
        with bench_server(zoo, ranker) as (base, admin_key):
            result = asyncio.run(drive(base, admin_key, body, clients=clients, seconds=seconds))
    else:
        base = url.rstrip("/")
        listed = httpx.get(f"{base}/v1/selection/datasets", params={"limit": 1},
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)
        if listed.status_code != 200:
            raise LoadBenchError(f"{base} refused to list datasets: {listed.status_code} {listed.text[:300]}")
        datasets = listed.json()
        if not datasets:
            raise LoadBenchError(f"{base} has no dataset to rank for")
        body = {"dataset": datasets[0]["name"], "k": 10}
        about = {"source": base, "models": None, "datasets": None, "target": body["dataset"], "candidates": "all",
                 "k": 10}
        result = asyncio.run(drive(base, key, body, clients=clients, seconds=seconds))

    report = {"benchmark": "load", "endpoint": f"POST {RANK_PATH}", "base_url": base, "clients": clients,
              "seconds": seconds, **result, "zoo": about,
              "rate_limit": "server limit set out of reach (10^9 a minute): measured, never refusing"
              if url is None else "as configured on the target", "machine": machine()}
    say(table(report))
    text = json.dumps(report, indent=2)
    say(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return report
