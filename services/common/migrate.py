"""Run the Alembic history from code: `atelier db upgrade`, prestart, tests."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config

from services.common.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", (url or get_settings().resolved_database_url).replace("%", "%%"))
    return config


def upgrade(revision: str = "head", *, url: str | None = None) -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str = "base", *, url: str | None = None) -> None:
    command.downgrade(alembic_config(url), revision)


def wait_for_database(timeout_s: float = 60.0) -> None:
    """Prestart: wait until the database answers, so a fresh compose stack starts in any order."""
    from services.common.db import database_ready

    deadline = time.monotonic() + timeout_s
    while not database_ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"database not reachable after {timeout_s:.0f}s")
        time.sleep(1.0)
