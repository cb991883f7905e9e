"""The gateway's key check: who is calling, and may they do this."""

from __future__ import annotations

from fastapi import Request

from services.common import auth
from services.common.api import Caller
from services.common.db import session_scope
from services.common.errors import Problem

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


# POSTs that only compute an answer (a body too rich for a query string) and change nothing.
READ_ONLY_POSTS = {"/v1/selection/rank"}


def required_scope(method: str, path: str) -> str:
    if path.startswith("/v1/keys"):
        return "admin"
    return "read" if method in READ_METHODS or (method == "POST" and path in READ_ONLY_POSTS) else "write"


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def authenticate(request: Request) -> Caller:
    plaintext = presented_key(request)
    if plaintext is None:
        raise Problem(401, "An API key is required: send `Authorization: Bearer <key>`.",
                      headers={"WWW-Authenticate": "Bearer"})
    with session_scope() as session:
        key = auth.verify_key(db_session=session, plaintext=plaintext)
        if key is None:
            raise Problem(401, "The API key is not valid or was revoked.", headers={"WWW-Authenticate": "Bearer"})
        caller = Caller(key_id=key.id, scope=key.scope)
    needed = required_scope(request.method, request.url.path)
    if not auth.scope_allows(caller.scope, needed):
        raise Problem(403, f"This key has scope {caller.scope!r}; this call needs {needed!r}.")
    return caller
