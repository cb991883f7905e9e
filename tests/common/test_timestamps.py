"""Timestamps read back from either backend are aware UTC datetimes (SQLite stores no zone)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from services.common.db import Base
from services.selection.models import Model


@pytest.fixture
def sqlite_session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine, tables=[Model.__table__])
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_sqlite_gives_back_aware_utc_times_and_stores_other_zones_as_utc(sqlite_session):
    plus_two = datetime(2026, 12, 7, 23, 0, tzinfo=timezone(timedelta(hours=2)))
    sqlite_session.add(Model(name="m", meta={}, features={}, created_at=plus_two))
    sqlite_session.commit()
    sqlite_session.expunge_all()
    read = sqlite_session.scalar(select(Model.created_at))
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
    assert read == plus_two and read.hour == 21
