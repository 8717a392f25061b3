"""The SQLite store through the ``sqlite3`` connection alone, for the calls a command's hot path makes.

Importing SQLAlchemy costs 200-240 ms of CPU before a command does anything: 60% of a fully cached
``mloop pipelines run`` (``bench/RESULTS.md`` §11). :func:`mloop.store.open_store` therefore opens a SQLite
store at the current schema as a :class:`DirectSqliteStore`. It answers these methods itself, with the SQL
text the SQL store's SQLite fast path sends (:mod:`mloop.store.sql.fastpath`), the same argument checks
(:mod:`mloop.store.sql.inputs`), the same events in the same transactions, ``BEGIN IMMEDIATE`` for writes and
the same lock retries: :meth:`get_setting`, :meth:`get_experiment_by_name`, :meth:`get_or_create_experiment`
(when it exists), :meth:`put_environment`, :meth:`create_run`, :meth:`get_run` and :meth:`private_blobs` (what
every pipeline step's worker asks first), :meth:`end_run` (without metrics),
:meth:`recent_tagged_runs` and :meth:`record_finished_runs`. Every other method, and these in the cases named,
is the :class:`~mloop.store.sql.SqlStore`'s, opened on first use (SQLAlchemy is imported then). The Store
contract suite runs on both (``tests/contract``), so either answer is the same.

A store below the current schema revision (or a new file) is opened as a ``SqlStore`` at once, which migrates it.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote

from mloop.entities import Experiment, LineageEdge, Metric, RunRecord, RunStatus, new_id, now_ms
from mloop.errors import InvalidInput, NotFound, StoreUnavailable
from mloop.store.protocols.lineage import LineageEvents
from mloop.store.protocols.runs import RunEvents
from mloop.store.sql import fastpath
from mloop.store.sql.inputs import check_key, checked, validate_name
from mloop.store.sql.revision import HEAD_REVISION
from mloop.store.sql.stepchecks import check_finished_runs, missing_experiment, missing_run, tagged_filter, taken

__all__ = ["DirectSqliteStore", "sqlite_path"]

T = TypeVar("T")
_LOCK_RETRIES = 40  # as mloop.store.sql.engine.run_in_transaction
_LIMITS = ("too many sql variables", "expression tree is too large", "too many arguments on function",
           "too many columns", "too many terms in", "tables in a join", "pattern too complex",
           "string or blob too big")  # fmt: skip
_RUN_COLUMNS = "id, experiment_id, name, status, start_time, end_time, parent_id, actor, environment_digest, deleted"
_TAG_MATCH = 'runs.id IN (SELECT tags.run_id FROM tags WHERE tags."key" = ? AND substr(tags.value, 1, 200) = ?{rest})'
_PREFIX = 200  # the indexed prefix of tag values (mloop.store.sql.schema.VALUE_INDEX_PREFIX)
_INSERT_LINEAGE = (
    "INSERT INTO lineage (source, target, relation, actor, created_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (source, target, relation) DO NOTHING"
)


_CHUNK = 500  # digests per IN list (mloop.store.sql.dialect.CHUNK)
# private_blobs: the SQL text SQLAlchemy compiles for mloop.store.sql.holdouts on SQLite
_PRIVATE_OWNERS = (
    "SELECT dataset_files.digest, datasets.name, dataset_versions.version FROM dataset_files "
    "JOIN dataset_versions ON dataset_versions.id = dataset_files.version_id "
    "JOIN datasets ON datasets.id = dataset_versions.dataset_id "
    "WHERE dataset_files.digest IN ({marks}) AND dataset_versions.private IS 1 "
    "ORDER BY datasets.name, dataset_versions.version"
)
_PUBLIC_TOO = (
    "SELECT dataset_files.digest FROM dataset_files JOIN dataset_versions ON dataset_versions.id = "
    "dataset_files.version_id WHERE dataset_files.digest IN ({marks}) AND dataset_versions.private IS 0 "
    "UNION SELECT artifacts.digest FROM artifacts WHERE artifacts.digest IN ({marks}) "
    "UNION SELECT model_files.digest FROM model_files WHERE model_files.digest IN ({marks})"
)


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URI; ``None`` for memory databases and URIs with options."""
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    path = unquote(uri[len("sqlite:///") :])
    return None if path in ("", ":memory:") else path


def _hydrate_sql(n: int) -> str:  # as mloop.store.sql.runs' fast path
    marks = ",".join("?" * n)
    return (
        f"SELECT run_id, 'p', key, value, NULL FROM params WHERE run_id IN ({marks}) UNION ALL "
        f"SELECT run_id, 't', key, value, NULL FROM tags WHERE run_id IN ({marks}) UNION ALL "
        f"SELECT run_id, 'm', key, NULL, value FROM latest_metrics WHERE run_id IN ({marks})"
    )


def _event(conn: sqlite3.Connection, type: str, subject: str, actor: str, payload: Mapping[str, Any]) -> None:
    conn.execute(fastpath.INSERT_EVENT, (type, subject, actor, now_ms(), json.dumps(dict(payload), sort_keys=True)))


class DirectSqliteStore:
    """A SQLite store at ``path``; see the module docstring for which methods skip SQLAlchemy."""

    def __init__(self, uri: str, path: str) -> None:
        self._uri, self._path = uri, path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._sql: Any = None  # the SqlStore, opened on first use
        try:
            revision = self._read(_revision)
        except (sqlite3.Error, StoreUnavailable):  # no folder yet, not a database, ...: the SqlStore says so
            revision = None
        if revision != HEAD_REVISION:
            self._full()  # creates or migrates (or explains why it cannot)

    # the SqlStore for everything else ------------------------------------------------------------
    def _full(self) -> Any:
        with self._lock:
            if self._sql is None:
                from mloop.store.sql import SqlStore

                self._sql = SqlStore(self._uri)
            return self._sql

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._full(), name)

    @property
    def dialect(self) -> str:
        return "sqlite"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            if self._sql is not None:
                self._sql.close()

    def __repr__(self) -> str:
        return f"DirectSqliteStore({self._uri!r})"

    # transactions -------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # a forked child opens its own
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
                conn.execute(f"PRAGMA {pragma}")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._transaction(fn, write=False)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """``fn`` in one transaction (``BEGIN IMMEDIATE`` to write), retrying lock contention like the SQL store."""
        for attempt in range(_LOCK_RETRIES):
            try:
                with self._lock:
                    conn = self._connection()
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    try:
                        result = fn(conn)
                        conn.execute("COMMIT")
                        return result
                    finally:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                reason = (str(exc).strip().splitlines() or [""])[0]
                locked = "database is locked" in reason.lower() or "database is busy" in reason.lower()
                if locked and attempt < _LOCK_RETRIES - 1:
                    time.sleep(min(0.5, 0.005 * 2**attempt) * (0.5 + random.random()))
                    continue
                if any(limit in reason.lower() for limit in _LIMITS):
                    raise InvalidInput(
                        f"The metadata store refused the request: it exceeds a database limit ({reason}). "
                        "Pass fewer or shorter values (see Limits in docs/tracking.md)."
                    ) from exc
                if locked:
                    raise StoreUnavailable(
                        f"The metadata store {self._uri} stayed locked by another connection through "
                        f"{_LOCK_RETRIES} attempts ({reason}). Retry later, or stop the process that holds the lock."
                    ) from exc
                raise StoreUnavailable(
                    f"The metadata store {self._uri} cannot be used: {exc}. Check that the database exists and is "
                    "reachable, or set MLOOP_URI."
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # settings, experiments, environments --------------------------------------------------------
    @checked("key")
    def get_setting(self, key: str) -> str | None:
        row = self._read(lambda c: c.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone())
        return None if row is None else str(row[0])

    @checked("name")
    def get_experiment_by_name(self, name: str) -> Experiment:
        sql = "SELECT id, name, created_at, deleted FROM experiments WHERE name = ?"
        row = self._read(lambda c: c.execute(sql, (name,)).fetchone())
        if row is None:
            raise NotFound(f"No experiment named {name!r}. List them with `mloop experiments list`.")
        return Experiment(row[0], row[1], int(row[2]), bool(row[3]))

    @checked("name", "actor")
    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        try:
            return self.get_experiment_by_name(name)
        except NotFound:
            return self._full().get_or_create_experiment(name, actor=actor)  # type: ignore[no-any-return]

    @checked("digest")
    def put_environment(self, digest: str, body: Mapping[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True)
        sql = "INSERT INTO environments (digest, body) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING"
        self._transaction(lambda c: c.execute(sql, (digest, text)))

    # runs ---------------------------------------------------------------------------------------
    @checked("experiment_id", "name", "actor", "params", "tags", "parent_id", "environment_digest", "start_time")
    def create_run(
        self, experiment_id: str, *, name: str, actor: str, params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None, parent_id: str | None = None, environment_digest: str | None = None,
        start_time: int | None = None
    ) -> RunRecord:  # fmt: skip
        name = validate_name("run", name)
        run = RunRecord(new_id(), experiment_id, name, RunStatus.RUNNING, start_time if start_time is not None
                        else now_ms(), None, parent_id, actor, environment_digest, False, dict(params or {}),
                        {}, dict(tags or {}))  # fmt: skip
        _check_keys(run.params, run.tags)

        def create(conn: sqlite3.Connection) -> RunRecord:
            if parent_id is not None and not fastpath.run_exists(conn, parent_id):
                raise missing_run(parent_id)
            fastpath.create_run_row(conn, (run.id, experiment_id, name, run.status.value, run.start_time, parent_id,
                                           actor, environment_digest, False))  # fmt: skip
            fastpath.write_values(conn, run.id, run.params, run.tags, (), (), new_run=True)
            _event(conn, RunEvents.STARTED, run.ref, actor,
                   {"experiment_id": experiment_id, "name": name, "parent_id": parent_id})  # fmt: skip
            return run

        try:
            return self._transaction(create)
        except sqlite3.IntegrityError as exc:  # the foreign key on experiment_id
            raise missing_experiment(experiment_id) from exc

    @checked("run_id", "actor", "end_time", "params", "tags")
    def end_run(
        self, run_id: str, status: RunStatus, *, actor: str, end_time: int | None = None,
        metrics: Sequence[Metric] = (), params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None
    ) -> None:  # fmt: skip
        if metrics:  # metric rows are the SQL store's (latest-value upserts, NaN handling)
            self._full().end_run(run_id, status, actor=actor, end_time=end_time, metrics=metrics, params=params,
                                 tags=tags)  # fmt: skip
            return
        status = RunStatus(status)
        if not status.terminal:
            raise InvalidInput(f"end_run needs a final status (FINISHED, FAILED, KILLED), got {status.value}.")
        when = end_time if end_time is not None else now_ms()
        _check_keys(params or {}, tags or {})

        def end(conn: sqlite3.Connection) -> None:
            if not fastpath.end_run_row(conn, run_id, status.value, when):
                raise missing_run(run_id)
            fastpath.write_values(conn, run_id, params or {}, tags or {}, (), ())
            _event(conn, RunEvents.FINISHED, f"run:{run_id}", actor, {"status": status.value})

        self._transaction(end)

    @checked("run_id")
    def get_run(self, run_id: str) -> RunRecord:
        def read(conn: sqlite3.Connection) -> RunRecord:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE runs.id = ?", (run_id,)).fetchone()
            if row is None:
                raise missing_run(run_id)
            return _hydrate(conn, [row])[0]

        return self._read(read)

    def private_blobs(self, digests: Sequence[str]) -> dict[str, list[str]]:
        """As :meth:`mloop.store.sql.holdouts.HoldoutsMixin.private_blobs` (the same two queries, chunk by chunk):
        the artifact read guard asks it before a pipeline step's worker reads its inputs."""

        def read(conn: sqlite3.Connection) -> dict[str, list[str]]:
            owners: dict[str, list[str]] = {}
            wanted = sorted(set(digests))
            for start in range(0, len(wanted), _CHUNK):
                part = wanted[start : start + _CHUNK]
                for digest, name, version in conn.execute(_PRIVATE_OWNERS.format(marks=_marks(part)), part):
                    owners.setdefault(digest, []).append(f"data:{name}/{version}")
            found = sorted(owners)
            for start in range(0, len(found), _CHUNK):
                part = found[start : start + _CHUNK]
                for (digest,) in conn.execute(_PUBLIC_TOO.format(marks=_marks(part)), part * 3):
                    owners.pop(digest, None)
            return owners

        return self._read(read)

    # pipeline step runs (mloop.store.sql.steps) ---------------------------------------------------
    @checked("experiment_id", "limit")
    def recent_tagged_runs(self, experiment_id: str, tags: Mapping[str, str], *, limit: int) -> list[RunRecord]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")
        tagged_filter(tags)  # the same checks
        where, args = [], []
        for key, value in tags.items():
            long = len(value) >= _PREFIX
            where.append(_TAG_MATCH.format(rest=" AND substr(tags.value, 201) = ?" if long else ""))
            args += [key, value[:_PREFIX]] + ([value[_PREFIX:]] if long else [])
        sql = (f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} AND runs.status = 'FINISHED' AND "
               "runs.experiment_id = ? AND runs.deleted IS 0 ORDER BY runs.start_time DESC NULLS LAST, runs.id DESC "
               "LIMIT ?")  # fmt: skip
        return self._read(lambda c: _hydrate(c, c.execute(sql, (*args, experiment_id, limit)).fetchall()))

    @checked("actor")
    def record_finished_runs(
        self, runs: Sequence[RunRecord], *, lineage: Sequence[LineageEdge] = (), actor: str
    ) -> None:
        edges = check_finished_runs(runs, lineage)
        if not runs:
            return
        mine = {r.id for r in runs}
        parents = sorted({r.parent_id for r in runs if r.parent_id is not None} - mine)
        experiments = sorted({r.experiment_id for r in runs})

        def write(conn: sqlite3.Connection) -> None:
            for exp in experiments:
                if conn.execute("SELECT id FROM experiments WHERE id = ?", (exp,)).fetchone() is None:
                    raise missing_experiment(exp)
            for parent in parents:
                if not fastpath.run_exists(conn, parent):
                    raise missing_run(parent)
            for r in runs:
                name = r.name.strip()
                fastpath.create_run_row(conn, (r.id, r.experiment_id, name, RunStatus.RUNNING.value, r.start_time,
                                               r.parent_id, r.actor, r.environment_digest, False))  # fmt: skip
                fastpath.write_values(conn, r.id, r.params, r.tags, (), (), new_run=True)
                _event(conn, RunEvents.STARTED, r.ref, actor,
                       {"experiment_id": r.experiment_id, "name": name, "parent_id": r.parent_id})  # fmt: skip
                for e in edges[r.ref]:
                    edge = (e.source, e.target, e.relation, e.actor, e.created_at)
                    if conn.execute(_INSERT_LINEAGE, edge).rowcount:
                        _event(conn, LineageEvents.RECORDED, e.target, actor, {"source": e.source,
                                                                                "relation": e.relation})  # fmt: skip
                status = RunStatus(r.status).value
                fastpath.end_run_row(conn, r.id, status, int(r.end_time or 0))
                _event(conn, RunEvents.FINISHED, r.ref, actor, {"status": status})

        try:
            self._transaction(write)
        except sqlite3.IntegrityError as exc:  # a run id that exists already
            raise taken(runs) from exc


def _check_keys(params: Mapping[str, str], tags: Mapping[str, str]) -> None:
    for key in params:
        check_key("param", key)
    for key in tags:
        check_key("tag", key)


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: a new file, or not an mloop store (SqlStore explains)
        return None
    return None if row is None else str(row[0])


def _hydrate(conn: sqlite3.Connection, rows: Sequence[Any]) -> list[RunRecord]:
    """Run rows with their params, tags and latest metrics (as :func:`mloop.store.sql.runs.hydrate_runs`)."""
    ids = [r[0] for r in rows]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    for start in range(0, len(ids), 300):
        part = ids[start : start + 300]
        for run_id, kind, key, text, number in conn.execute(_hydrate_sql(len(part)), [*part, *part, *part]):
            if kind == "m":
                metrics[run_id][key] = float("nan") if number is None else float(number)
            elif kind == "p":
                params[run_id][key] = text
            else:
                tags[run_id][key] = text
    return [
        RunRecord(id=r[0], experiment_id=r[1], name=r[2], status=RunStatus(r[3]), start_time=int(r[4]),
                  end_time=None if r[5] is None else int(r[5]), parent_id=r[6], actor=r[7], environment_digest=r[8],
                  deleted=bool(r[9]), params=params[r[0]], metrics=metrics[r[0]], tags=tags[r[0]])
        for r in rows
    ]  # fmt: skip
