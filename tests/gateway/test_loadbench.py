"""`atelier bench load`: a short run against its own loopback server, and the loopback-only guard."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.gateway.loadbench import LoadBenchError, ensure_loopback
from tests.conftest import requires_lleaves


# 32 clients: more than the database pool holds; a gateway that blocked its event loop on a key lookup
# deadlocked here until the pool timed out (500s and read timeouts).
@pytest.mark.parametrize("clients", [4, 32])
def test_a_short_run_reports_throughput_latency_and_no_errors(tmp_path, clients):
    out = tmp_path / "load.json"
    result = CliRunner().invoke(app, ["bench", "load", "--clients", str(clients), "--seconds", "2", "--synthetic",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["endpoint"] == "POST /v1/selection/rank" and report["clients"] == clients
    assert report["seconds"] == 2
    assert report["base_url"].startswith("http://127.0.0.1:")
    assert report["errors"] == {} and report["error_count"] == 0  # the bench server's rate limit never refuses
    assert report["requests"] == report["ok"] >= clients
    assert report["elapsed_s"] >= 2
    assert report["throughput_rps"] == pytest.approx(report["requests"] / report["elapsed_s"])
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert report["zoo"]["source"] == "synthetic" and report["zoo"]["candidates"] == report["zoo"]["models"] > 0
    assert report["machine"]["logical_cpus"] >= 1 and report["machine"]["cpu"]
    assert "throughput" in result.output and "p50 / p99 / max" in result.output  # the table


@pytest.mark.parametrize("url", ["http://example.com:8000", "http://10.0.0.5:8000", "http://127.0.0.1.nip.io",
                                 "http://0.0.0.0:8000", "ftp://127.0.0.1/"])
def test_non_loopback_targets_are_refused(url):
    with pytest.raises(LoadBenchError):
        ensure_loopback(url)
    result = CliRunner().invoke(app, ["bench", "load", "--url", url, "--key", "atl_x_y", "--seconds", "1"])
    assert result.exit_code == 2 and ("loopback" in result.output or "http(s)" in result.output)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000",
                                 "http://127.9.9.9"])
def test_loopback_targets_are_accepted(url):
    ensure_loopback(url)


def test_bounds_are_enforced():
    runner = CliRunner()
    assert runner.invoke(app, ["bench", "load", "--clients", "0"]).exit_code == 2
    assert runner.invoke(app, ["bench", "load", "--clients", "100000"]).exit_code == 2
    assert runner.invoke(app, ["bench", "load", "--seconds", "3600"]).exit_code == 2


@requires_lleaves
def test_the_gateway_latency_times_a_compiled_and_a_lightgbm_server_call_for_call(monkeypatch):
    """`bench selection --latency`'s HTTP part: two seeded servers, the first with the ranker's
    forests compiled into its cache before it starts, the second told not to compile."""
    from services.cli import _gateway_rank_latency
    from services.gateway import benchserver, loadbench

    zoo, ranker, body, _ = loadbench.prepare(None, synthetic=True)
    started = []
    real_server = benchserver.local_server

    def recording_server(home, *, env=None):
        cached = list(benchserver.Path(home).glob(".atelier/cache/forests/*.o"))
        started.append((env["ATELIER_COMPILE_FORESTS"], len(cached), env["ATELIER_RATE_LIMIT_BURST"]))
        return real_server(home, env=env)

    monkeypatch.setattr(benchserver, "local_server", recording_server)
    members = [m for m in ranker.members or [ranker] if m.model is not None]
    assert members  # there is a forest to compile
    report = _gateway_rank_latency(zoo, ranker, body["dataset"], [])
    never = benchserver.RATE_LIMIT_OUT_OF_REACH["ATELIER_RATE_LIMIT_BURST"]  # 201 quick calls a key: none refused
    assert started == [("true", len(members), never), ("false", 0, never)]
    assert report["inference"] == "compiled" and set(report["by_inference"]) == {"compiled", "lightgbm"}
    for timing in report["by_inference"].values():
        assert timing["calls"] == 200 and 0 < timing["p50_ms"] <= timing["p99_ms"]
    assert report["p50_ms"] == report["by_inference"]["compiled"]["p50_ms"]
