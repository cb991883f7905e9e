"""API keys: stored as peppered HMAC digests, checked by the gateway, scoped read < write < admin."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.common.db import Base, new_id, utcnow
from services.common.settings import get_settings

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "atl"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lookup: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    digest: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


def _digest(key: str) -> str:
    # High-entropy keys need no slow KDF; the pepper keeps a leaked table useless on its own.
    return hmac.new(get_settings().key_pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def scope_allows(granted: str, needed: str) -> bool:
    return SCOPES.index(granted) >= SCOPES.index(needed)


def create_key(*, db_session: Session, scope: str, name: str = "") -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext, which is never stored or shown again."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    lookup = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"
    key = ApiKey(lookup=lookup, digest=_digest(plaintext), scope=scope, name=name)
    db_session.add(key)
    db_session.flush()
    return key, plaintext


def verify_key(*, db_session: Session, plaintext: str) -> ApiKey | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key = db_session.scalar(select(ApiKey).where(ApiKey.lookup == parts[1]))
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.digest, _digest(plaintext)) else None


def revoke_key(*, db_session: Session, key_id: str) -> bool:
    key = db_session.get(ApiKey, key_id)
    if key is None:
        return False
    key.revoked_at = utcnow()
    return True


def redact(text: str) -> str:
    """Mask anything that looks like an Atelier key, for logs."""
    import re

    return re.sub(rf"{KEY_PREFIX}_[0-9a-f]{{12}}_[A-Za-z0-9_\-]+", f"{KEY_PREFIX}_***", text)
