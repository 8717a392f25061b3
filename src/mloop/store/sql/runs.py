"""Runs, params, tags and metrics in the SQL store."""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import Metric, RunRecord, RunStatus, new_id, now_ms
from mloop.errors import InvalidInput, NotFound
from mloop.store.protocols.runs import RunEvents
from mloop.store.sql import fastpath
from mloop.store.sql import schema as t
from mloop.store.sql.dialect import chunks, insert_ignore, insert_stmt
from mloop.store.sql.engine import driver_connection, run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.experiments import validate_name
from mloop.store.sql.fastpath import MetricRow, param_conflict
from mloop.store.sql.inputs import check_key, checked

__all__ = ["RunsMixin", "hydrate_runs"]

_check_key = check_key  # (the name the rest of this module uses)


def _not_found(run_id: str) -> NotFound:
    return NotFound(f"No run with id {run_id!r}. List runs with `mloop runs list`.")


def _run_row(conn: Connection, run_id: str) -> Any:
    row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
    if row is None:
        raise _not_found(run_id)
    return row


def _hydrate_statement() -> Any:
    """Params, tags and latest metrics of a set of runs in one UNION ALL (built once, compiled once)."""
    ids: Any = bindparam("ids", expanding=True)
    no_text, no_number = cast(null(), Text), cast(null(), Float)
    lm = t.latest_metrics
    return union_all(
        select(t.params.c.run_id, literal("p"), t.params.c.key, t.params.c.value, no_number).where(
            t.params.c.run_id.in_(ids)
        ),
        select(t.tags.c.run_id, literal("t"), t.tags.c.key, t.tags.c.value, no_number).where(t.tags.c.run_id.in_(ids)),
        select(lm.c.run_id, literal("m"), lm.c.key, no_text, lm.c.value).where(lm.c.run_id.in_(ids)),
    )


_HYDRATE = _hydrate_statement()


RunRow = namedtuple("RunRow", [c.name for c in t.runs.c])  # type: ignore[misc]  # a runs row from the driver


def _hydrate_sql(n: int) -> str:
    marks = ",".join("?" * n)
    return (
        f"SELECT run_id, 'p', key, value, NULL FROM params WHERE run_id IN ({marks}) UNION ALL "
        f"SELECT run_id, 't', key, value, NULL FROM tags WHERE run_id IN ({marks}) UNION ALL "
        f"SELECT run_id, 'm', key, NULL, value FROM latest_metrics WHERE run_id IN ({marks})"
    )


def hydrate_runs(conn: Connection, rows: Sequence[Any], *, driver: Any = None) -> list[RunRecord]:
    """Turn run rows into :class:`RunRecord` values with their params, tags and latest metrics (one query).

    ``driver`` is the raw sqlite3 connection of ``conn`` for the fast path (same transaction).
    """
    ids = [r.id for r in rows]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    for part in chunks(ids, 300):
        if driver is not None:
            values = driver.execute(_hydrate_sql(len(part)), [*part, *part, *part]).fetchall()
        else:
            values = conn.execute(_HYDRATE, {"ids": list(part)}).all()
        for run_id, kind, key, text, number in values:
            if kind == "m":
                metrics[run_id][key] = math.nan if number is None else float(number)
            elif kind == "p":
                params[run_id][key] = text
            else:
                tags[run_id][key] = text
    return [
        RunRecord(
            id=r.id,
            experiment_id=r.experiment_id,
            name=r.name,
            status=RunStatus(r.status),
            start_time=int(r.start_time),
            end_time=None if r.end_time is None else int(r.end_time),
            parent_id=r.parent_id,
            actor=r.actor,
            environment_digest=r.environment_digest,
            deleted=bool(r.deleted),
            params=params[r.id],
            metrics=metrics[r.id],
            tags=tags[r.id],
        )
        for r in rows
    ]


def _write_params(conn: Connection, run_id: str, params: Mapping[str, str]) -> None:
    """Params are immutable: the same value again is fine, a different one is a Conflict."""
    if not params:
        return
    existing = {
        row.key: row.value
        for part in chunks(list(params))
        for row in conn.execute(
            select(t.params.c.key, t.params.c.value).where(t.params.c.run_id == run_id, t.params.c.key.in_(part))
        )
    }
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise param_conflict(run_id, key, existing[key], value)
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items() if k not in existing]
    insert_ignore(conn, t.params, rows, ("run_id", "key"))


def _write_tags(conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
    if not tags:
        return
    stmt = insert_stmt(conn, t.tags)
    stmt = stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value})
    conn.execute(stmt, [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])


_METRIC_COLUMNS = ("run_id", "key", "step", "timestamp", "value")


def _write_metrics(conn: Connection, rows: Sequence[MetricRow], latest: Sequence[MetricRow]) -> None:
    if not rows:
        return
    conn.execute(t.metrics.insert(), [dict(zip(_METRIC_COLUMNS, r, strict=True)) for r in rows])
    lm = t.latest_metrics
    stmt = insert_stmt(conn, lm)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"value": stmt.excluded.value, "step": stmt.excluded.step, "timestamp": stmt.excluded.timestamp},
        where=or_(
            stmt.excluded.step > lm.c.step,
            and_(stmt.excluded.step == lm.c.step, stmt.excluded.timestamp >= lm.c.timestamp),
        ),
    )
    conn.execute(stmt, [dict(zip(_METRIC_COLUMNS, r, strict=True)) for r in latest])


def _metric_rows(run_id: str, metrics: Sequence[Metric]) -> tuple[list[MetricRow], list[MetricRow]]:
    """Every metric as a row, and per key the row with the highest (step, timestamp).

    Values are stored as floats (as SQLAlchemy's ``Float`` binds them; an int 1 becomes 1.0) and NaN as NULL.
    """
    rows: list[MetricRow] = []
    latest: dict[str, MetricRow] = {}
    for m in metrics:
        row = (run_id, m.key, m.step, m.timestamp, None if math.isnan(m.value) else float(m.value))
        rows.append(row)
        cur = latest.get(m.key)
        if cur is None or (m.step, m.timestamp) >= (cur[2], cur[3]):
            latest[m.key] = row
    return rows, list(latest.values())


def _write_values(
    conn: Connection,
    run_id: str,
    params: Mapping[str, str] | None,
    tags: Mapping[str, str] | None,
    metrics: Sequence[Metric],
    *,
    new_run: bool = False,
) -> None:
    """A run's params, tags and metrics in ``conn``'s transaction: on SQLite as SQL text on the driver
    (:mod:`mloop.store.sql.fastpath`), elsewhere with SQLAlchemy Core. Keys are checked first, on both."""
    params, tags = params or {}, tags or {}
    for key in params:
        _check_key("param", key)
    for key in tags:
        _check_key("tag", key)
    rows, latest = _metric_rows(run_id, metrics)
    for row in latest:
        _check_key("metric", row[1])
    driver = fastpath.driver_of(conn)
    if driver is not None:
        with driver_connection(conn):
            fastpath.write_values(driver, run_id, params, tags, rows, latest, new_run=new_run)
        return
    if new_run and params:  # a new run has no params yet: nothing to check for conflicts
        conn.execute(t.params.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()])
    else:
        _write_params(conn, run_id, params)
    _write_tags(conn, run_id, tags)
    _write_metrics(conn, rows, latest)


class RunsMixin:
    engine: Engine

    @checked("experiment_id", "name", "actor", "params", "tags", "parent_id", "environment_digest", "start_time")
    def create_run(
        self, experiment_id: str, *, name: str, actor: str, params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None, parent_id: str | None = None, environment_digest: str | None = None,
        start_time: int | None = None
    ) -> RunRecord:  # fmt: skip
        name = validate_name("run", name)
        run = RunRecord(
            id=new_id(),
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING,
            start_time=start_time if start_time is not None else now_ms(),
            parent_id=parent_id,
            actor=actor,
            environment_digest=environment_digest,
            params=dict(params or {}),
            tags=dict(tags or {}),
        )

        def create(conn: Connection) -> RunRecord:
            driver = fastpath.driver_of(conn)
            if driver is not None:  # SQLite: SQL text on the driver, same transaction (fastpath)
                with driver_connection(conn):
                    if parent_id is not None and not fastpath.run_exists(driver, parent_id):
                        raise _not_found(parent_id)
                    row = (run.id, experiment_id, name, run.status.value, run.start_time, parent_id, actor,
                           environment_digest, False)  # fmt: skip
                    fastpath.create_run_row(driver, row)
            else:
                if parent_id is not None:
                    _run_row(conn, parent_id)
                conn.execute(
                    t.runs.insert().values(
                        id=run.id,
                        experiment_id=experiment_id,
                        name=name,
                        status=run.status.value,
                        start_time=run.start_time,
                        parent_id=parent_id,
                        actor=actor,
                        environment_digest=environment_digest,
                        deleted=False,
                    )
                )
            _write_values(conn, run.id, run.params, run.tags, (), new_run=True)
            write_event(
                conn,
                RunEvents.STARTED,
                run.ref,
                actor=actor,
                payload={"experiment_id": experiment_id, "name": name, "parent_id": parent_id},
            )
            return run

        try:
            return run_in_transaction(self.engine, create)
        except SAIntegrityError as exc:  # the foreign key on experiment_id
            raise NotFound(f"No experiment with id {experiment_id!r}. Create it first or pass its name.") from exc

    @checked("run_id", "params", "tags")
    def log_batch(
        self, run_id: str, *, metrics: Sequence[Metric] = (), params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None
    ) -> None:  # fmt: skip
        def write(conn: Connection) -> None:
            driver = fastpath.driver_of(conn)
            if driver is not None:
                with driver_connection(conn):
                    exists = fastpath.run_exists(driver, run_id)
            else:
                exists = conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is not None
            if not exists:
                raise _not_found(run_id)
            _write_values(conn, run_id, params, tags, metrics)

        run_in_transaction(self.engine, write)

    @checked("run_id", "actor", "end_time", "params", "tags")
    def end_run(
        self, run_id: str, status: RunStatus, *, actor: str, end_time: int | None = None,
        metrics: Sequence[Metric] = (), params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None
    ) -> None:  # fmt: skip
        status = RunStatus(status)
        if not status.terminal:
            raise InvalidInput(f"end_run needs a final status (FINISHED, FAILED, KILLED), got {status.value}.")
        when = end_time if end_time is not None else now_ms()

        def end(conn: Connection) -> None:
            driver = fastpath.driver_of(conn)
            if driver is not None:
                with driver_connection(conn):
                    found = fastpath.end_run_row(driver, run_id, status.value, when)
            else:
                update_run = update(t.runs).where(t.runs.c.id == run_id).values(status=status.value, end_time=when)
                found = conn.execute(update_run).rowcount == 1
            if not found:
                raise _not_found(run_id)
            _write_values(conn, run_id, params, tags, metrics)
            write_event(conn, RunEvents.FINISHED, f"run:{run_id}", actor=actor, payload={"status": status.value})

        run_in_transaction(self.engine, end)

    @checked("run_id")
    def get_run(self, run_id: str) -> RunRecord:
        return run_in_transaction(
            self.engine, lambda conn: hydrate_runs(conn, [_run_row(conn, run_id)])[0], write=False
        )

    @checked("run_id", "key")
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        m = t.metrics
        q = select(m.c.key, m.c.value, m.c.step, m.c.timestamp).where(m.c.run_id == run_id, m.c.key == key)
        q = q.order_by(m.c.step, m.c.timestamp, m.c.id)

        def read(conn: Connection) -> list[Metric]:
            _run_row(conn, run_id)
            return [
                Metric(r.key, math.nan if r.value is None else float(r.value), int(r.step), int(r.timestamp))
                for r in conn.execute(q)
            ]

        return run_in_transaction(self.engine, read, write=False)

    def _set_deleted(self, run_id: str, deleted: bool, actor: str) -> None:
        def change(conn: Connection) -> None:
            _run_row(conn, run_id)
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(deleted=deleted, deleted_at=now_ms() if deleted else None)
            )
            kind = RunEvents.DELETED if deleted else RunEvents.RESTORED
            write_event(conn, kind, f"run:{run_id}", actor=actor)

        run_in_transaction(self.engine, change)

    @checked("run_id", "actor")
    def delete_run(self, run_id: str, *, actor: str) -> None:
        self._set_deleted(run_id, True, actor)

    @checked("run_id", "actor")
    def restore_run(self, run_id: str, *, actor: str) -> None:
        self._set_deleted(run_id, False, actor)

    @checked("actor", "older_than_ms")
    def purge_deleted_runs(self, *, actor: str, older_than_ms: int = 0) -> list[str]:
        cutoff = now_ms() - older_than_ms

        def purge(conn: Connection) -> list[str]:
            ids = [
                r.id
                for r in conn.execute(
                    select(t.runs.c.id).where(t.runs.c.deleted.is_(True), t.runs.c.deleted_at <= cutoff)
                )
            ]
            for part in chunks(ids):
                for table in (t.metrics, t.latest_metrics, t.params, t.tags, t.artifacts):
                    conn.execute(delete(table).where(table.c.run_id.in_(part)))
                conn.execute(delete(t.runs).where(t.runs.c.id.in_(part)))
            for run_id in ids:
                write_event(conn, RunEvents.PURGED, f"run:{run_id}", actor=actor)
            return ids

        return run_in_transaction(self.engine, purge)
