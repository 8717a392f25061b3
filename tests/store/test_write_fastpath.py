"""The SQLite fast path of the run writes (``mloop.store.sql.fastpath``) writes what the SQLAlchemy path writes.

The same script of run writes (successful and refused ones) runs against two SQLite stores: one as shipped (SQL text
on the driver) and one with the fast path switched off (the portable SQLAlchemy Core statements PostgreSQL uses).
Ids and clocks are made deterministic; then every row of the run tables and the event log, with each value's
SQLite storage type, and every outcome (including the typed errors' messages) must be identical.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mloop.entities import Metric, RunStatus
from mloop.errors import MloopError
from mloop.store import open_store
from mloop.store.direct import DirectSqliteStore
from mloop.store.sql import fastpath
from mloop.store.sql.store import SqlStore

ME = "tester"
MISSING = "f" * 32
TABLES = ("experiments", "runs", "params", "tags", "metrics", "latest_metrics", "events")


def _script(store: Any) -> list[str]:
    outcomes: list[str] = []

    def attempt(write: Any) -> None:
        try:
            write()
            outcomes.append("ok")
        except MloopError as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")

    exp = store.create_experiment("e", actor=ME).id
    parent = store.create_run(exp, name="parent", actor=ME, params={"lr": "0.1", "n": "3"}, tags={"t": "a"},
                              environment_digest="sha256:" + "e" * 64, start_time=1000).id  # fmt: skip
    child = store.create_run(exp, name=" child ", actor=ME, parent_id=parent, start_time=1001).id
    attempt(lambda: store.create_run(exp, name="orphan", actor=ME, parent_id=MISSING))
    attempt(lambda: store.create_run("0" * 32, name="no experiment", actor=ME))
    metrics = [Metric("loss", 1.0, 0, 5), Metric("loss", 0.5, 1, 6), Metric("loss", 0.7, 1, 4),
               Metric("acc", math.nan, 0, 7), Metric("big", math.inf, 2, 8),
               Metric("small", -math.inf, 0, 1), Metric("whole", 3, 0, 1)]  # fmt: skip
    store.log_batch(child, metrics=metrics, params={"p": "1"}, tags={"t": "x"})
    store.log_batch(child, params={"p": "1", "q": "2"}, tags={"t": "y"})  # the same param again is fine
    # a changed param: Conflict, and nothing of the batch is written
    attempt(lambda: store.log_batch(child, metrics=[Metric("loss", 9.0, 9, 9)], params={"r": "4", "q": "3"}))
    attempt(lambda: store.log_batch(MISSING, metrics=[Metric("m", 1.0)]))
    attempt(lambda: store.log_batch(child, metrics=[Metric("m", 1.0, 2**70, 0)]))  # out of range for the driver
    attempt(lambda: store.log_batch(child, params={"k" * 300: "1"}))
    store.log_batch(child, metrics=[Metric("loss", 0.1, 0, 3), Metric("loss", 0.6, 1, 6)])  # older; a tie wins
    store.end_run(child, RunStatus.FAILED, actor=ME, end_time=2000, metrics=[Metric("loss", 0.2, 2, 10)],
                  params={"z": "26"}, tags={"t": "z", "u": "1"})  # fmt: skip
    attempt(lambda: store.end_run(parent, RunStatus.FINISHED, actor=ME, end_time=2001, params={"lr": "0.2"}))
    store.end_run(parent, RunStatus.FINISHED, actor=ME, end_time=2002, params={"lr": "0.1", "m": "x"})
    attempt(lambda: store.end_run(MISSING, RunStatus.KILLED, actor=ME))
    store.delete_run(child, actor=ME)
    store.restore_run(child, actor=ME)
    store.append_event("custom.thing", "x:1", actor=ME, payload={"b": 2, "a": [1, "é"]})
    return outcomes


def _rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the run tables and the events, in insertion order, each value with its storage type."""
    conn = sqlite3.connect(db)
    try:
        out = {}
        for table in TABLES:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            select = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            out[table] = conn.execute(f"SELECT {select} FROM {table} ORDER BY rowid").fetchall()
        return out
    finally:
        conn.close()


def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = itertools.count(1)
    clock = itertools.count(10_000)
    for module in ("mloop.store.sql.runs", "mloop.store.sql.experiments", "mloop.store.direct"):
        monkeypatch.setattr(f"{module}.new_id", lambda: f"{next(ids):032x}")
    for module in (
        "mloop.store.sql.runs",
        "mloop.store.sql.experiments",
        "mloop.store.sql.events",
        "mloop.store.direct",
    ):
        monkeypatch.setattr(f"{module}.now_ms", lambda: next(clock))


def test_fast_path_writes_the_rows_and_errors_of_the_sqlalchemy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also ``open_store``'s :class:`~mloop.store.direct.DirectSqliteStore` (``sqlite3`` alone for run starts and
    ends, the SqlStore for the rest): the third side must write the same rows and raise the same errors."""
    results = {}
    for path in ("fast", "portable", "direct"):
        with monkeypatch.context() as patch:
            _deterministic(patch)
            if path == "portable":
                patch.setattr(fastpath, "driver_of", lambda conn: None)
            db = tmp_path / f"{path}.db"
            SqlStore(f"sqlite:///{db}").close()  # the schema, before the clock starts
            store: Any = open_store(f"sqlite:///{db}") if path == "direct" else SqlStore(f"sqlite:///{db}")
            assert isinstance(store, DirectSqliteStore if path == "direct" else SqlStore)
            outcomes = _script(store)
            store.close()
        results[path] = (outcomes, _rows(db))
    (fast_outcomes, fast_rows), (portable_outcomes, portable_rows) = results["fast"], results["portable"]
    assert fast_outcomes == portable_outcomes == results["direct"][0]
    assert fast_rows == results["direct"][1]
    assert [o.split(":")[0] for o in fast_outcomes] == [
        "NotFound", "NotFound", "Conflict", "NotFound", "InvalidInput", "InvalidInput", "Conflict", "NotFound",
    ]  # fmt: skip
    for table in TABLES:
        assert fast_rows[table] == portable_rows[table], table
    assert len(fast_rows["events"]) == 8  # experiment, 2 starts, 2 ends, delete, restore, custom: one per change
    latest = {r[2]: (r[4], r[6]) for r in fast_rows["latest_metrics"]}  # key: (value, step)
    assert latest == {"loss": (0.2, 2), "acc": (None, 0), "big": (math.inf, 2), "small": (-math.inf, 0),
                      "whole": (3.0, 0)}  # fmt: skip
    assert [r[10:12] for r in fast_rows["metrics"] if r[4] == "whole"] == [(3.0, "real")]  # an int is stored as a float


def test_a_lock_on_the_fast_path_is_retried_like_any_other(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Driver errors leave the fast path as SQLAlchemy's, so run_in_transaction retries a lock (whole transaction)."""
    store = open_store(sqlite_uri)
    exp = store.create_experiment("e", actor=ME).id
    real, calls = fastpath.write_values, []

    def locked_once(driver: Any, run_id: str, *args: Any, **kwargs: Any) -> None:
        calls.append(run_id)
        if len(calls) == 1:  # after the run row went in: the retry must start from a rolled-back transaction
            raise sqlite3.OperationalError("database is locked")
        real(driver, run_id, *args, **kwargs)

    monkeypatch.setattr(fastpath, "write_values", locked_once)
    run = store.create_run(exp, name="r", actor=ME, params={"a": "1"})
    assert calls == [run.id, run.id]
    assert [r.id for r in store.search_runs().items] == [run.id]
    assert store.get_run(run.id).params == {"a": "1"}
    assert [e.type for e in store.list_events(subject=run.ref).items] == ["run.started"]
    store.close()


def test_params_logged_again_skip_the_read_back_unless_one_existed(sqlite_uri: str) -> None:
    store = open_store(sqlite_uri)
    run = store.create_run(store.create_experiment("e", actor=ME).id, name="r", actor=ME, params={"a": "1"})
    store.log_batch(run.id, params={"a": "1", "b": "2"})
    with pytest.raises(MloopError, match=r"Param 'b' of run \w+ is already '2'; it cannot change to '3'"):
        store.log_batch(run.id, params={"c": "3", "b": "3"})
    assert store.get_run(run.id).params == {"a": "1", "b": "2"}
    store.close()
