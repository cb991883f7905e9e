"""The one Alembic history applies and reverts on PostgreSQL, and applies on SQLite."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from tests.conftest import PG_ADMIN_URL, RUN_ID


def _fresh_pg(name: str) -> str:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_postgres_up_down_up():
    from services.common.migrate import downgrade, upgrade
    from services.common.models_registry import import_all_models

    name = f"atelier_migrations_test_{RUN_ID}"
    url = _fresh_pg(name)
    upgrade("head", url=url)
    expected = set(import_all_models().tables)
    assert _tables(url) == expected
    downgrade("base", url=url)
    assert _tables(url) == set()
    upgrade("head", url=url)
    assert _tables(url) == expected
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    engine.dispose()


def test_sqlite_upgrade(tmp_path):
    from services.common.migrate import upgrade
    from services.common.models_registry import import_all_models

    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade("head", url=url)
    assert _tables(url) == set(import_all_models().tables)


def test_models_match_migrations(database):
    """Autogenerate finds nothing to do: the ORM and the history agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.common.models_registry import import_all_models

    engine = create_engine(database)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), import_all_models())
    engine.dispose()
    assert diff == []
