"""/v1/keys: admin-only management of API keys (plaintext shown once, at creation)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from services.common import auth
from services.common.db import SessionDep
from services.common.errors import not_found
from services.common.schemas import RequestModel

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(RequestModel):
    scope: Literal["read", "write", "admin"]
    name: str = Field("", max_length=200)


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The plaintext key. It is not stored and is shown only now.")


@router.post("", response_model=KeyCreated, status_code=201)
def create_key(body: KeyCreate, db: SessionDep) -> KeyCreated:
    key, plaintext = auth.create_key(db_session=db, scope=body.scope, name=body.name)
    db.commit()
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=plaintext)


@router.get("", response_model=list[KeyOut])
def list_keys(db: SessionDep) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in db.scalars(select(auth.ApiKey).order_by(auth.ApiKey.created_at))]


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, db: SessionDep) -> None:
    if not auth.revoke_key(db_session=db, key_id=key_id):
        raise not_found("key", key_id)
    db.commit()
