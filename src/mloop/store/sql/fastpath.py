"""The SQLite fast path of the per-run writes: fixed SQL text on the DB-API connection, in the same transaction.

A short run (start, 10 params, 10 metrics, end) spent about 61% of its time in SQLAlchemy Core building,
compiling and executing eight small statements (``bench/RESULTS.md`` §2). On SQLite, :mod:`mloop.store.sql.runs`
and :func:`mloop.store.sql.events.write_event` therefore send these statements as SQL text written once, with
positional parameters, straight to the ``sqlite3`` connection under the SQLAlchemy ``Connection`` that
:func:`~mloop.store.sql.engine.run_in_transaction` opened: the same ``BEGIN IMMEDIATE`` transaction, the same
retries. They are the statements SQLAlchemy compiles for the portable path (same columns, conflict targets and
``WHERE`` clauses), but for params, whose conflict check needs no read when none existed (:func:`write_values`);
``tests/store/test_write_fastpath.py`` checks that both paths write identical rows and raise identical errors.
PostgreSQL keeps the portable SQLAlchemy path (and ``write_event``'s advisory lock).

Callers wrap these calls in :func:`~mloop.store.sql.engine.driver_connection`, which raises the driver's errors
as SQLAlchemy's, as ``conn.execute`` would, so lock contention is retried and a broken foreign key or an
oversized value is reported the same way on both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.errors import Conflict

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "INSERT_EVENT",
    "create_run_row",
    "driver_of",
    "end_run_row",
    "param_conflict",
    "run_exists",
    "write_values",
]

INSERT_RUN = (
    "INSERT INTO runs (id, experiment_id, name, status, start_time, parent_id, actor, environment_digest, deleted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
END_RUN = "UPDATE runs SET status=?, end_time=? WHERE runs.id = ?"
RUN_EXISTS = "SELECT runs.id FROM runs WHERE runs.id = ?"
INSERT_PARAM = 'INSERT INTO params (run_id, "key", value) VALUES (?, ?, ?)'
# params of a run that may have some already: a row that exists is skipped, and the row count says whether any was
INSERT_PARAM_IF_NEW = INSERT_PARAM + ' ON CONFLICT (run_id, "key") DO NOTHING'
SELECT_PARAM = 'SELECT params.value FROM params WHERE params.run_id = ? AND params."key" = ?'
UPSERT_TAG = (
    'INSERT INTO tags (run_id, "key", value) VALUES (?, ?, ?) ON CONFLICT (run_id, "key") DO UPDATE SET value = '
    "excluded.value"
)
INSERT_METRIC = 'INSERT INTO metrics (run_id, "key", step, timestamp, value) VALUES (?, ?, ?, ?, ?)'
UPSERT_LATEST_METRIC = (
    'INSERT INTO latest_metrics (run_id, "key", value, step, timestamp) VALUES (?, ?, ?, ?, ?) '
    'ON CONFLICT (run_id, "key") DO UPDATE SET value = excluded.value, step = excluded.step, '
    "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
    "excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp"
)
INSERT_EVENT = "INSERT INTO events (type, subject, actor, time, payload) VALUES (?, ?, ?, ?, ?)"

# (run_id, key, step, timestamp, value): a metric row as the driver takes it; value None stores NaN
MetricRow = tuple[str, str, int, int, float | None]


def driver_of(conn: Connection) -> Any:
    """The ``sqlite3`` connection under ``conn`` (same transaction) on SQLite; ``None`` elsewhere."""
    if conn.dialect.name != "sqlite":
        return None
    return conn.connection.driver_connection


def run_exists(driver: Any, run_id: str) -> bool:
    return driver.execute(RUN_EXISTS, (run_id,)).fetchone() is not None


def create_run_row(driver: Any, values: tuple[Any, ...]) -> None:
    """``values`` in the order of :data:`INSERT_RUN`'s columns."""
    driver.execute(INSERT_RUN, values)


def end_run_row(driver: Any, run_id: str, status: str, end_time: int) -> bool:
    """Set the final status; ``False`` when there is no such run."""
    return bool(driver.execute(END_RUN, (status, end_time, run_id)).rowcount == 1)


def param_conflict(run_id: str, key: str, old: str, new: str) -> Conflict:
    return Conflict(
        f"Param {key!r} of run {run_id} is already {old!r}; it cannot change to {new!r}. "
        "Params are immutable: start a new run, or log the changing value as a metric or tag."
    )


def write_values(
    driver: Any,
    run_id: str,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    metrics: Sequence[MetricRow],
    latest: Sequence[MetricRow],
    *,
    new_run: bool = False,
) -> None:
    """Params (immutable), tags (last value wins), metric rows and the latest-metric upserts of one run.

    Params go in with ``ON CONFLICT DO NOTHING``; only when the row count shows that some existed (the same
    value again, or a change) are those read back, and a changed one raises :class:`Conflict` (the caller's
    transaction then rolls back). ``new_run``: the run was created in this transaction, so it has no params yet.
    """
    if params:
        rows = [(run_id, k, v) for k, v in params.items()]
        if new_run:
            driver.executemany(INSERT_PARAM, rows)
        elif driver.executemany(INSERT_PARAM_IF_NEW, rows).rowcount != len(rows):
            for key, value in params.items():
                old = driver.execute(SELECT_PARAM, (run_id, key)).fetchone()[0]
                if old != value:
                    raise param_conflict(run_id, key, old, value)
    if tags:
        driver.executemany(UPSERT_TAG, [(run_id, k, v) for k, v in tags.items()])
    if metrics:
        driver.executemany(INSERT_METRIC, metrics)
        driver.executemany(UPSERT_LATEST_METRIC, [(r, k, v, s, ts) for r, k, s, ts, v in latest])
