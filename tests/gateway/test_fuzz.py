"""Schemathesis against the gateway's merged OpenAPI: ≥1,000 generated cases, zero 5xx, every error problem+json.

The target is a live `atelier serve` on loopback with its own SQLite home and no job worker, so valid
generated jobs stay queued instead of running (and nothing touches the suite's PostgreSQL database).
Generation is derandomized: CI runs the same cases every time. Both schema-valid (positive) and
schema-violating (negative) inputs are sent.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from services.gateway.benchserver import local_server  # noqa: E402

MIN_CASES = 1000
# Streams until the job ends: fuzzed ids never exist (404), but a valid one would hang a case.
# The readiness probe answers 503 by design here: this server deliberately runs no job worker.
SKIP = {("GET", "/v1/jobs/{job_id}/events"), ("GET", "/readyz")}


def _header(headers, name: str) -> str:
    """Schemathesis responses keep each header as a list of values."""
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return ""


@pytest.fixture(scope="module")
def live_gateway():
    home = Path(tempfile.mkdtemp(prefix="atelier-fuzz-"))
    env = {"ATELIER_EMBEDDED_WORKER_THREADS": "0", "ATELIER_RATE_LIMIT_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1"}
    with local_server(home, env=env) as (base, key, _):
        yield base, key


def test_fuzz_gateway_no_5xx_and_problem_json(live_gateway):
    base, key = live_gateway
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIP]
    assert len(operations) >= 20, [op.label for op in operations]
    per_mode = math.ceil(MIN_CASES * 1.1 / (2 * len(operations)))
    headers = {"Authorization": f"Bearer {key}"}
    counts: Counter = Counter()
    failures: list[str] = []

    for op in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=per_mode, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                response = case.call(base_url=base, headers=headers, timeout=60)
                counts["cases"] += 1
                counts[response.status_code // 100] += 1
                where = f"{case.method} {case.formatted_path} ({mode.value}) -> {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{where}: {response.text[:300]}")
                elif response.status_code >= 400:
                    ctype = _header(response.headers, "content-type")
                    body = response.json() if ctype.startswith("application/problem+json") else None
                    if body is None or body.get("status") != response.status_code or not body.get("title"):
                        failures.append(f"{where}: not problem+json ({ctype}): {response.text[:200]}")

            run()

    print(f"fuzz: {counts['cases']} cases over {len(operations)} operations; by class: "
          f"{ {f'{k}xx': v for k, v in counts.items() if k != 'cases'} }")
    assert not failures, "\n".join(failures[:20])
    assert counts["cases"] >= MIN_CASES
    assert counts[5] == 0
