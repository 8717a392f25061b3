"""Limits of the SQL store, the same on SQLite and PostgreSQL: long param and tag values, long setting keys
(policies of long model names), database limits mapped to typed errors, and the SQLite search fast path under a
lock held by another connection."""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, text

from mloop.errors import InvalidInput, StoreUnavailable
from mloop.store.query import parse_filter
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.search import compile_filter
from mloop.store.sql.store import SqlStore

ME = "tester"


def _noise(chars: int) -> str:
    """Text that does not compress (PostgreSQL compresses index entries before checking their size)."""
    return base64.b64encode(os.urandom(chars)).decode()[:chars]


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


# long param and tag values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chars", [3_000, 10_000, 100_000])
def test_long_param_and_tag_values_are_stored_and_found(store: SqlStore, chars: int) -> None:
    exp = store.create_experiment("long", actor=ME)
    p1, t1, p2, t2, p3 = (_noise(chars) for _ in range(5))
    a = store.create_run(exp.id, name="a", actor=ME, params={"blob": p1}, tags={"note": t1})
    b = store.create_run(exp.id, name="b", actor=ME)
    store.log_batch(b.id, params={"blob": p2}, tags={"note": t2})
    c = store.create_run(exp.id, name="c", actor=ME)
    store.end_run(c.id, "FINISHED", actor=ME, params={"blob": p3}, tags={"note": t2})
    store.log_batch(a.id, tags={"note": t2})  # tags change: the upsert path
    store.log_batch(a.id, tags={"note": t1})

    got = store.get_run(a.id)
    assert got.params == {"blob": p1} and got.tags == {"note": t1}

    def names(flt: str) -> list[str]:
        return sorted(r.name for r in store.search_runs(experiment_ids=[exp.id], filter=flt).items)

    assert names(f"params.blob = '{p1}'") == ["a"]
    assert names(f"params.blob = '{p2}'") == ["b"]
    assert names(f"tags.note = '{t2}'") == ["b", "c"]
    assert names(f"params.blob IN ('{p1}', '{p3}')") == ["a", "c"]
    assert names(f"params.blob != '{p1}'") == ["b", "c"]
    assert names(f"params.blob NOT IN ('{p1}', '{p3}')") == ["b"]
    assert names(f"params.blob LIKE '{p2[:50]}%'") == ["b"]
    assert names(f"tags.note LIKE '%{t1[-50:]}'") == ["a"]


def test_values_sharing_the_indexed_prefix_are_told_apart(store: SqlStore) -> None:
    """The index holds the first characters only; equality still compares whole values."""
    exp = store.create_experiment("prefix", actor=ME)
    head = _noise(t.VALUE_INDEX_PREFIX)
    values = {
        "short": head[:100],
        "exact": head,
        "longer": head + "x",
        "other": head + "y" + _noise(5_000),
        "empty": "",
    }
    for name, value in values.items():
        store.create_run(exp.id, name=name, actor=ME, params={"p": value}, tags={"t": value})
    for name, value in values.items():
        for field in ("params.p", "tags.t"):
            found = store.search_runs(experiment_ids=[exp.id], filter=f"{field} = '{value}'").items
            assert [r.name for r in found] == [name]

    def names(flt: str) -> list[str]:
        return sorted(r.name for r in store.search_runs(experiment_ids=[exp.id], filter=flt).items)

    assert names(f"params.p IN ('{head}', '{head}x')") == ["exact", "longer"]
    assert names(f"params.p IN ('{head[:100]}', '{head}x', 'nothing')") == ["longer", "short"]
    assert names(f"params.p IN ('{head}', '{head}')") == ["exact"]
    assert names(f"params.p LIKE '{head}%'") == ["exact", "longer", "other"]
    assert names(f"params.p LIKE '{head[:50]}%'") == ["exact", "longer", "other", "short"]
    assert names(f"params.p LIKE '{head[:150]}_%'") == ["exact", "longer", "other"]
    assert names(f"params.p LIKE '{head}x%'") == ["longer"]
    assert names(f"tags.t LIKE '{head}%'") == ["exact", "longer", "other"]


def _plan(store: SqlStore, flt: str, table: Any) -> str:
    """The query plan of the sub-query a filter on ``table`` compiles to."""
    sub = compile_filter(parse_filter(flt)).right.element  # runs.id IN (SELECT run_id FROM ... WHERE ...)
    compiled = sub.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})

    def explain(conn: Connection) -> str:
        if store.dialect == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            return "\n".join(str(r[-1]) for r in rows)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a small table would be scanned otherwise
        return "\n".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {compiled}").all())

    return run_in_transaction(store.engine, explain, write=False)


@pytest.mark.parametrize("entity", ["params", "tags"])
def test_param_and_tag_filters_use_the_key_value_index(store: SqlStore, entity: str) -> None:
    exp = store.create_experiment("plans", actor=ME)
    for i in range(50):
        store.create_run(exp.id, name=f"r{i}", actor=ME, params={"model": f"m{i % 3}"}, tags={"model": f"m{i % 3}"})
    index = f"ix_{entity}_key_value"
    for flt in (f"{entity}.model = 'm1'", f"{entity}.model IN ('m1', 'm2')"):
        plan = _plan(store, flt, entity)
        assert index in plan, plan
        if store.dialect == "sqlite":  # both columns of the index are searched, not just the key
            assert "key=? AND <expr>=?" in plan or "key=? AND <expr>>?" in plan, plan
        else:
            assert "substr" in plan and "Index Cond" in plan, plan
    for flt in (f"{entity}.model LIKE 'm%'", f"{entity}.model != 'm1'"):
        assert index in _plan(store, flt, entity)  # at least the key part of the index


# database limits ---------------------------------------------------------------------------------------------


def test_a_database_limit_is_invalid_input_not_store_unavailable(store: SqlStore) -> None:
    """PostgreSQL's SQLSTATE class 54 (program limit exceeded) and SQLite's limits name the limit."""
    if store.dialect == "postgresql":
        sql = "SELECT concat(" + ", ".join(["'a'"] * 120) + ")"  # more than 100 arguments: 54023
    else:
        sql = "SELECT max(" + ", ".join(["1"] * 200) + ")"  # more than 127 arguments
    with pytest.raises(InvalidInput, match="limit") as info:
        run_in_transaction(store.engine, lambda conn: conn.exec_driver_sql(sql).all(), write=False)
    assert "argument" in str(info.value)


def test_postgres_index_row_too_big_is_invalid_input(postgres_uri: str) -> None:
    store = SqlStore(postgres_uri)
    try:
        run_in_transaction(store.engine, lambda c: c.exec_driver_sql("CREATE TABLE big (v text PRIMARY KEY)"))
        value = _noise(10_000)
        with pytest.raises(InvalidInput, match="index row"):
            run_in_transaction(store.engine, lambda c: c.execute(text("INSERT INTO big VALUES (:v)"), {"v": value}))
    finally:
        store.close()


# setting keys: policies of long model names -------------------------------------------------------------------


def test_policy_keys_of_the_longest_names_fit(store: SqlStore) -> None:
    key = f"policy:{'m' * 250}:{'a' * 100}"  # model names up to 250 characters, aliases up to 100
    store.set_setting(key, "min_metric('acc', 0.9)", actor=ME)
    assert store.get_setting(key) == "min_metric('acc', 0.9)"
    store.set_setting(key, "min_metric('acc', 0.95)", actor=ME)
    assert store.get_setting(key) == "min_metric('acc', 0.95)"
    wide = "k" * t.SETTING_KEY_LENGTH
    store.set_setting(wide, "v", actor=ME)
    assert store.get_setting(wide) == "v"
    with pytest.raises(InvalidInput, match=f"it has {t.SETTING_KEY_LENGTH + 1} characters; use at most"):
        store.set_setting(wide + "k", "v", actor=ME)
    assert store.get_setting(wide + "k") is None


def test_set_policy_for_a_long_model_name(tmp_path: Path) -> None:
    import mloop
    from mloop.registry.promote import policy_source, set_policy
    from mloop.tracking.client import Client

    client = Client(workspace=mloop.init_workspace(tmp_path / "ws"))
    try:
        name, alias = "n" * 250, "a" * 100
        set_policy(client, name, alias, "min_metric('acc', 0.9)")
        assert policy_source(client, name, alias) == ("min_metric('acc', 0.9)", "metadata store (mloop models policy)")
    finally:
        client.close()


# the SQLite search fast path under a lock ----------------------------------------------------------------------
# Under WAL a write lock does not stop readers, and a reader blocked by a lock (an EXCLUSIVE-mode connection, WAL
# recovery, a file system without WAL) waits busy_timeout (30 s) before SQLite raises "database is locked". The
# real lock below is therefore waited for inside SQLite; the driver's error itself, as it comes after the wait,
# is injected by a connection factory, so the store's own retries and mapping are what is tested.


def _populated(uri: str) -> SqlStore:
    store = SqlStore(uri)
    exp = store.create_experiment("locked", actor=ME)
    for i in range(3):
        store.create_run(exp.id, name=f"r{i}", actor=ME, params={"model": "rf"})
    return store


def test_sqlite_search_waits_for_an_exclusive_lock_to_go(sqlite_uri: str) -> None:
    store = _populated(sqlite_uri)
    store.engine.dispose()  # an EXCLUSIVE lock needs every other connection closed
    holder = sqlite3.connect(sqlite_uri.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE experiments SET deleted = deleted")
    holder.execute("COMMIT")  # the EXCLUSIVE locking mode keeps the lock after the commit; readers wait for it

    def release() -> None:
        try:
            time.sleep(0.5)
            holder.execute("PRAGMA locking_mode=NORMAL")
            holder.execute("SELECT count(*) FROM experiments").fetchall()  # the next access lets the lock go
        finally:
            holder.close()  # closing lets it go in any case

    thread = threading.Thread(target=release)
    started = time.monotonic()
    thread.start()
    try:
        page = store.search_runs(filter="params.model = 'rf'")
        assert time.monotonic() - started >= 0.4
        assert sorted(r.name for r in page.items) == ["r0", "r1", "r2"]
    finally:
        thread.join()
        store.close()


@pytest.fixture
def lockable_sqlite(sqlite_uri: str) -> Iterator[tuple[SqlStore, threading.Event]]:
    """A SQLite store whose driver connections raise "database is locked" from ``execute`` while the event is
    set, as sqlite3 does once busy_timeout runs out (SQLAlchemy's own statements use cursors, so only the
    search fast path, which calls the driver connection's ``execute``, meets the lock)."""
    locked = threading.Event()

    class LockedConnection(sqlite3.Connection):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            if locked.is_set():
                raise sqlite3.OperationalError("database is locked")
            return super().execute(sql, parameters)

    store = _populated(sqlite_uri)

    @event.listens_for(store.engine, "do_connect")
    def _factory(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["factory"] = LockedConnection

    store.engine.dispose()  # connections made from now on are LockedConnections
    yield store, locked
    store.close()


@pytest.mark.parametrize("flt", ["", "params.model = 'rf'"])
def test_sqlite_search_fast_path_retries_a_lock(lockable_sqlite: tuple[SqlStore, threading.Event], flt: str) -> None:
    store, locked = lockable_sqlite
    locked.set()
    timer = threading.Timer(0.3, locked.clear)
    timer.start()
    try:
        started = time.monotonic()
        page = store.search_runs(filter=flt)  # refused at first, retried until the lock goes
        assert time.monotonic() - started >= 0.3
        assert sorted(r.name for r in page.items) == ["r0", "r1", "r2"]
    finally:
        timer.join()


def test_sqlite_search_fast_path_under_a_lock_that_stays_is_store_unavailable(
    lockable_sqlite: tuple[SqlStore, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.store.sql import engine

    monkeypatch.setattr(engine, "_LOCK_RETRIES", 3)
    store, locked = lockable_sqlite
    locked.set()
    with pytest.raises(StoreUnavailable, match="stayed locked by another connection through 3 attempts"):
        store.search_runs(filter="params.model = 'rf'")
    locked.clear()
    assert len(store.search_runs(filter="params.model = 'rf'").items) == 3
