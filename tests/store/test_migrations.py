"""Alembic migrations produce exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from mloop.store.sql import engine as engine_module
from mloop.store.sql.engine import HEAD_REVISION, current_revision, make_engine, normalise_uri
from mloop.store.sql.schema import SETTING_KEY_LENGTH, metadata
from mloop.store.sql.store import SqlStore

# Expression indexes: Alembic compares them on PostgreSQL; SQLite's reflection skips them (with a warning), so
# their definitions are checked by _index_sql as well.
EXPRESSION_INDEXES = {
    "ix_params_key_value": ("params", "substr(value, 1, 200)"),
    "ix_tags_key_value": ("tags", "substr(value, 1, 200)"),
}


def _diff(uri: str) -> list[object]:
    engine = create_engine(normalise_uri(uri))
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return list(diff)


def _index_sql(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}).scalar_one()
        else:
            sql = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name}).scalar_one()
        conn.rollback()
    return str(sql)


def _upgrade(uri: str, revision: str) -> None:
    """Build the schema of an older ``revision`` (as a store of that release would have it)."""
    engine = make_engine(uri)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(engine_module.__file__).parent / "migrations"))
    with engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_migrated_schema_matches_code(store_uri: str) -> None:
    store = SqlStore(store_uri)
    assert current_revision(store.engine) == HEAD_REVISION
    for name, (table, expression) in EXPRESSION_INDEXES.items():
        assert f"{table}" in _index_sql(store.engine, name) and expression in _index_sql(store.engine, name)
    store.close()
    assert _diff(store_uri) == []


def test_upgrade_from_0003_keeps_data_and_lifts_the_limits(store_uri: str) -> None:
    """0004: params/tags indexed on (key, value prefix), setting keys 400 wide; rows written at 0003 stay."""
    _upgrade(store_uri, "0003")
    old = make_engine(store_uri)
    with old.connect() as conn, conn.begin():
        conn.execute(text("INSERT INTO experiments VALUES ('e1', 'old', 1, :f)"), {"f": False})
        conn.execute(
            text("INSERT INTO runs (id, experiment_id, name, status, start_time, actor, deleted) "
                 "VALUES ('r1', 'e1', 'old-run', 'FINISHED', 1, 'me', :f)"),
            {"f": False},
        )  # fmt: skip
        conn.execute(text("INSERT INTO params VALUES ('r1', 'model', 'rf')"))
        conn.execute(text("INSERT INTO tags VALUES ('r1', 'team', 'growth')"))
        conn.execute(text("INSERT INTO settings VALUES ('policy:m:prod', 'min_metric(''acc'', 0.9)')"))
    with old.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0003"
        conn.rollback()
    assert "substr" not in _index_sql(old, "ix_params_key_value")
    old.dispose()

    store = SqlStore(store_uri)  # opening migrates
    try:
        assert current_revision(store.engine) == HEAD_REVISION
        for name, (_, expression) in EXPRESSION_INDEXES.items():
            assert expression in _index_sql(store.engine, name)
        run = store.get_run("r1")
        assert run.params == {"model": "rf"} and run.tags == {"team": "growth"}
        assert store.get_setting("policy:m:prod") == "min_metric('acc', 0.9)"
        assert [r.id for r in store.search_runs(filter="params.model = 'rf' and tags.team = 'growth'").items] == ["r1"]

        long_value = base64.b64encode(os.urandom(6_000)).decode()  # does not compress
        store.log_batch("r1", params={"blob": long_value}, tags={"note": long_value})
        assert [r.id for r in store.search_runs(filter=f"params.blob = '{long_value}'").items] == ["r1"]
        key = "policy:" + "m" * 250 + ":" + "a" * 100
        store.set_setting(key, "x", actor="tester")
        store.set_setting("k" * SETTING_KEY_LENGTH, "y", actor="tester")
        assert store.get_setting(key) == "x" and store.get_setting("k" * SETTING_KEY_LENGTH) == "y"
    finally:
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
