"""The gateway's security surface: every route is behind a key, scopes hold, keys are stored hashed,
secrets never reach a log, passwords are masked when settings are printed, CORS is closed by default."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.gateway.security import PUBLIC_PATHS
from tests.conftest import auth

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
READ_ONLY_POSTS = {("POST", "/v1/selection/rank")}  # a POST only for its body; it changes nothing
PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def _own_routes(routes, prefix: str = ""):
    """(method, path template) of the app's own routes, through included routers of any FastAPI version."""
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:  # FastAPI >= 0.16x keeps included routers as nodes
            yield from _own_routes(route.original_router.routes, prefix + context.prefix)
        elif getattr(route, "methods", None):
            for method in route.methods - {"HEAD"}:
                yield method, prefix + route.path


def every_route(app) -> set[tuple[str, str]]:
    """Concrete (method, path) pairs: the gateway's own routes plus every path of the merged OpenAPI
    (the forwarded services'), path parameters filled with dummy values."""
    templates = set(_own_routes(app.routes))
    for path, item in app.openapi()["paths"].items():
        templates |= {(method.upper(), path) for method in item if method.upper() not in ("HEAD", "OPTIONS")}
    concrete = set()
    for method, template in templates:
        if "{service}" in template:  # the forwarding catch-all: one unknown path under every service
            for service in app.state.targets:
                concrete.add((method, template.replace("{service}", service).replace("{path:path}", "no/such")))
        else:
            concrete.add((method, PATH_PARAM.sub(lambda m: f"dummy-{m.group(1)}", template)))
    return concrete


@pytest.fixture(scope="module")
def routes(gateway_app) -> set[tuple[str, str]]:
    found = every_route(gateway_app)
    # The enumeration must see the forwarded services, or the checks below would pass vacuously.
    for expected in [("POST", "/v1/selection/rank"), ("POST", "/v1/training/jobs"), ("POST", "/v1/quantization/jobs"),
                     ("DELETE", "/v1/keys/dummy-key_id"), ("POST", "/v1/jobs/dummy-job_id/cancel"),
                     ("POST", "/v1/testsvc/jobs"), ("GET", "/v1/selection/no/such")]:
        assert expected in found
    return found


# Fixed here rather than read from security.PUBLIC_PATHS, so that widening that set fails these tests.
EXPECTED_PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def is_public(path: str) -> bool:
    return path in EXPECTED_PUBLIC or path.startswith("/dashboard")


def test_public_paths_are_only_health_metrics_and_docs():
    assert PUBLIC_PATHS <= EXPECTED_PUBLIC


@pytest.mark.parametrize("presented", [
    None,
    {"Authorization": "Bearer garbage"},
    {"Authorization": "Bearer atl_000000000000_unknown-secret"},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"X-API-Key": "atl_zzz_nope"},
    {"Authorization": "Bearer "},
], ids=["no-key", "malformed", "unknown", "basic-auth", "bad-x-api-key", "empty-bearer"])
def test_every_non_public_route_needs_a_valid_key(gateway, routes, presented):
    checked = 0
    for method, path in sorted(routes):
        if is_public(path):
            continue
        response = gateway.request(method, path, headers=presented or {}, json={})
        body = is_problem(response, 401)
        assert "key" in body["detail"].lower()
        assert response.headers.get("www-authenticate") == "Bearer"
        checked += 1
    assert checked >= 30


def test_public_routes_answer_without_a_key(gateway, routes):
    public = [(m, p) for m, p in routes if is_public(p)]
    assert {p for _, p in public} >= {"/healthz", "/metrics", "/openapi.json"}
    for method, path in public:
        assert gateway.request(method, path).status_code != 401, path


def test_state_changing_routes_refuse_a_read_key(gateway, routes, keys):
    changing = [(m, p) for m, p in sorted(routes)
                if m in STATE_CHANGING and (m, p) not in READ_ONLY_POSTS and not is_public(p)]
    assert len(changing) >= 20
    for method, path in changing:
        body = is_problem(gateway.request(method, path, headers=auth(keys["read"]), json={}), 403)
        assert "'read'" in body["detail"]


def test_admin_routes_refuse_write_and_read_keys(gateway, routes, keys):
    admin = [(m, p) for m, p in sorted(routes) if p.startswith("/v1/keys")]
    assert {m for m, _ in admin} == {"GET", "POST", "DELETE"}
    for method, path in admin:
        for scope in ("read", "write"):
            body = is_problem(gateway.request(method, path, headers=auth(keys[scope]), json={"scope": "admin"}), 403)
            assert "'admin'" in body["detail"]
    assert gateway.get("/v1/keys", headers=auth(keys["admin"])).status_code == 200


def test_spoofed_caller_headers_are_ignored(gateway, keys):
    """The gateway sets X-Atelier-Key-Id / X-Atelier-Scope from the checked key; a client's own are dropped."""
    from services.common.db import session_scope
    from services.common.jobs import service as jobs
    from services.common.jobs.models import Job

    with session_scope() as session:
        victim = jobs.create(db_session=session, kind="testsvc.sleep", params={"steps": 1}, owner="victim-key-id")[0]
        victim_id = victim.id
    try:
        spoof = {**auth(keys["read"]), "X-Atelier-Key-Id": "victim-key-id", "X-Atelier-Scope": "admin"}
        assert gateway.get(f"/v1/jobs/{victim_id}", headers=spoof).status_code == 404
        listed = gateway.get("/v1/jobs", headers=spoof, params={"limit": 200}).json()["items"]
        assert victim_id not in {job["id"] for job in listed}
        is_problem(gateway.get("/v1/keys", headers=spoof), 403)
        is_problem(gateway.post("/v1/testsvc/jobs", headers=spoof, json={"steps": 1}), 403)
    finally:
        with session_scope() as session:
            session.delete(session.get(Job, victim_id))


def test_keys_are_stored_hashed(gateway, keys, db_session):
    from services.common.auth import ApiKey

    created = gateway.post("/v1/keys", json={"scope": "read", "name": "hash-check"}, headers=auth(keys["admin"]))
    assert created.status_code == 201
    plaintext = created.json()["key"]
    _, lookup, secret = plaintext.split("_", 2)
    row = db_session.scalar(select(ApiKey).where(ApiKey.id == created.json()["id"]))
    stored = " ".join(str(getattr(row, column.key)) for column in ApiKey.__table__.columns)
    assert secret not in stored and plaintext not in stored
    assert row.lookup == lookup and re.fullmatch(r"[0-9a-f]{64}", row.digest)
    assert gateway.get("/v1/jobs", headers=auth(plaintext)).status_code == 200  # the digest still verifies it
    assert secret not in gateway.get("/v1/keys", headers=auth(keys["admin"])).text


def test_secrets_are_never_logged(gateway, keys, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # SQL, its parameters and result rows too
    created = gateway.post("/v1/keys", json={"scope": "write", "name": "log-check"}, headers=auth(keys["admin"]))
    plaintext = created.json()["key"]
    _, lookup, secret = plaintext.split("_", 2)
    wrong_secret = "Wr0ngSecretThatMustNotBeLoggedEither"
    assert gateway.get("/v1/jobs", headers=auth(plaintext)).status_code == 200
    assert gateway.get("/v1/selection/models", headers=auth(plaintext)).status_code == 200  # forwarded
    assert gateway.get("/v1/keys", headers=auth(plaintext)).status_code == 403
    assert gateway.get("/v1/jobs", headers=auth(f"atl_{lookup}_{wrong_secret}")).status_code == 401
    assert gateway.get("/v1/jobs", headers={"X-API-Key": plaintext}).status_code == 200

    logged = caplog.text + "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    assert lookup in logged, "the capture must cover the key lookups, or it proves nothing"
    for needle in (secret, wrong_secret, keys["admin"].split("_", 2)[2]):
        assert needle not in logged


def test_serve_prints_settings_with_passwords_masked(monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from services import cli
    from services.common.settings import Settings

    settings = Settings(database_url="postgresql+psycopg://atelier:db-pa55word@db.internal:5432/atelier",
                        broker_url="redis://:broker-pa55word@redis.internal:6379/0")
    monkeypatch.setattr("services.common.settings.get_settings", lambda: settings)
    monkeypatch.setattr("services.gateway.app.create_app", lambda *args, **kwargs: None)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    result = CliRunner().invoke(cli.app, ["serve", "--no-migrate"])
    assert result.exit_code == 0, result.output
    assert "db.internal:5432" in result.output and "redis.internal:6379" in result.output
    assert "pa55word" not in result.output
    assert "pa55word" not in cli._safe_url(settings)


@pytest.fixture(scope="module")
def cors_gateway(database):
    from services.common.settings import Settings
    from services.gateway.app import create_app

    with TestClient(create_app(Settings(database_url=database, cors_origins=["https://ui.example"]))) as client:
        yield client


def preflight(client, origin: str, path: str = "/v1/jobs"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                         "Access-Control-Request-Headers": "authorization"})


def test_cors_is_closed_by_default(gateway, keys):
    assert "access-control-allow-origin" not in preflight(gateway, "https://ui.example").headers
    response = gateway.get("/v1/jobs", headers={**auth(keys["read"]), "Origin": "https://ui.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origin(cors_gateway, keys):
    allowed = preflight(cors_gateway, "https://ui.example")
    assert allowed.status_code == 200  # a preflight carries no key: it must not be refused by the auth layer
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    assert "access-control-allow-origin" not in preflight(cors_gateway, "https://evil.example").headers

    read = auth(keys["read"])
    ok = cors_gateway.get("/v1/jobs", headers={**read, "Origin": "https://ui.example"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://ui.example"
    other = cors_gateway.get("/v1/jobs", headers={**read, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    # An error a browser must be able to read (no key) still carries the header for the allowed origin.
    refused = cors_gateway.get("/v1/jobs", headers={"Origin": "https://ui.example"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "https://ui.example"


def test_a_read_key_may_rank(gateway, keys):
    # ranking changes nothing: a read key gets past auth (then 404/422 for the made-up dataset, never 403)
    response = gateway.post("/v1/selection/rank", headers=auth(keys["read"]), json={"dataset": "no-such-dataset"})
    assert response.status_code not in (401, 403), response.text
