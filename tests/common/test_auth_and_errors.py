"""Keys, scopes and problem+json at the gateway."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import auth


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_no_key_is_401(gateway):
    body = is_problem(gateway.get("/v1/jobs"), 401)
    assert "API key" in body["detail"]
    assert is_problem(gateway.post("/v1/testsvc/jobs", json={}), 401)


def test_bad_key_is_401(gateway):
    is_problem(gateway.get("/v1/jobs", headers=auth("atl_000000000000_nope")), 401)
    is_problem(gateway.get("/v1/jobs", headers=auth("garbage")), 401)


def test_wrong_scope_is_403(gateway, keys):
    read = auth(keys["read"])
    assert gateway.get("/v1/jobs", headers=read).status_code == 200
    is_problem(gateway.post("/v1/testsvc/jobs", json={"steps": 1}, headers=read), 403)
    is_problem(gateway.get("/v1/keys", headers=auth(keys["write"])), 403)


def test_health_is_public(gateway):
    assert gateway.get("/healthz").json()["status"] == "ok"
    assert gateway.get("/metrics").status_code == 200


def test_keys_are_stored_hashed_and_revocable(gateway, keys, db_session):
    from services.common.auth import ApiKey

    created = gateway.post("/v1/keys", json={"scope": "read", "name": "ci"}, headers=auth(keys["admin"]))
    assert created.status_code == 201
    plaintext = created.json()["key"]
    stored = db_session.scalars(select(ApiKey)).all()
    assert all(plaintext not in (k.digest, k.lookup) and len(k.digest) == 64 for k in stored)
    assert gateway.get("/v1/jobs", headers=auth(plaintext)).status_code == 200
    assert gateway.delete(f"/v1/keys/{created.json()['id']}", headers=auth(keys["admin"])).status_code == 204
    is_problem(gateway.get("/v1/jobs", headers=auth(plaintext)), 401)
    listed = gateway.get("/v1/keys", headers=auth(keys["admin"])).json()
    assert all("key" not in item for item in listed)


def test_malformed_json_is_422_problem(api):
    response = api.post("/v1/testsvc/jobs", content=b"{not json", headers={"content-type": "application/json"})
    body = is_problem(response, 422)
    assert body["errors"]


def test_wrong_types_are_422_problem(api):
    body = is_problem(api.post("/v1/testsvc/jobs", json={"steps": "many"}), 422)
    assert body["errors"][0]["loc"][-1] == "steps"
    is_problem(api.post("/v1/testsvc/jobs", json={"steps": -1}), 422)


def test_unknown_routes_are_404_problem(api):
    is_problem(api.get("/v1/nosuchservice/x"), 404)
    is_problem(api.get("/v1/jobs/doesnotexist"), 404)


def test_request_id_is_passed_on(api):
    response = api.get("/v1/testsvc/nothing-here", headers={"X-Request-ID": "req-123"})
    assert response.headers["x-request-id"] == "req-123"


def test_each_response_carries_one_request_id_and_every_layer_counts_it_by_route_and_status(api):
    from prometheus_client import REGISTRY

    def count(service: str, route: str) -> float:
        labels = {"service": service, "method": "GET", "route": route, "status": "404"}
        return REGISTRY.get_sample_value("atelier_http_requests_total", labels) or 0.0

    layers = (("gateway", "/v1/{service}/{path:path}"), ("testsvc", "unmatched"))
    before = [count(*layer) for layer in layers]
    response = api.get("/v1/testsvc/nothing-here")
    ids = response.headers.get_list("x-request-id")
    assert response.status_code == 404 and len(ids) == 1 and len(ids[0]) == 32  # made here, not doubled on the way out
    assert [count(*layer) for layer in layers] == [b + 1 for b in before]


def test_merged_openapi_has_stable_operation_ids(gateway):
    spec = gateway.get("/openapi.json").json()
    ops = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert "jobs-get_job" in ops and "jobs-cancel_job" in ops
    assert "testsvc-submit_sleep_job" in ops
    assert "/v1/testsvc/jobs" in spec["paths"]
