"""Alembic migrations produce exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from mloop.store.sql.engine import HEAD_REVISION, current_revision, normalise_uri
from mloop.store.sql.schema import metadata
from mloop.store.sql.store import SqlStore


def _diff(uri: str) -> list[object]:
    engine = create_engine(normalise_uri(uri))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return list(diff)


def test_migrated_schema_matches_code(store_uri: str) -> None:
    store = SqlStore(store_uri)
    assert current_revision(store.engine) == HEAD_REVISION
    store.close()
    assert _diff(store_uri) == []


def test_sqlite_is_in_wal_mode(sqlite_uri: str) -> None:
    store = SqlStore(sqlite_uri)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.close()


def test_reopening_does_not_migrate_again(sqlite_uri: str) -> None:
    SqlStore(sqlite_uri).close()
    store = SqlStore(sqlite_uri)
    store.set_setting("x", "1", actor="tester")
    store.close()
    assert SqlStore(sqlite_uri).get_setting("x") == "1"
