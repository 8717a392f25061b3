"""profile-runs, phases and sql views: timers around mloop's phases; the statements replayed with sqlite3."""

from __future__ import annotations

import re
import shutil
import sqlite3
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c

Body = Callable[[int], tuple[dict[str, str], dict[str, float]]]  # run i -> (params, metrics)

# (depth, label, module, class or None, attribute): inclusive wall time per call; a name that moved is not timed
PHASES: list[tuple[int, str, str, str | None, str]] = [
    (1, "Client.start_run", "mloop.tracking.client", "Client", "start_run"),
    (2, "experiment lookup", "mloop.tracking.client", "Client", "experiment_id"),
    (
        2,
        "environment capture (cached digest)",
        "mloop.tracking.environment",
        "EnvironmentCapture",
        "capture_with_digest",
    ),
    (2, "store.create_run", "mloop.store.sql.runs", "RunsMixin", "create_run"),
    (2, "Run(): buffer, atexit, SIGTERM handler", "mloop.tracking.run", "Run", "__init__"),
    (1, "Run.end", "mloop.tracking.run", "Run", "end"),
    (2, "buffer close", "mloop.tracking.buffer", "MetricBuffer", "close"),
    (2, "store.end_run", "mloop.store.sql.runs", "RunsMixin", "end_run"),
    # the write path before the SQLite fast path (bench/RESULTS.md §2): SQLAlchemy Core statements
    (3, "params: SELECT existing + INSERT", "mloop.store.sql.runs", None, "_write_params"),
    (3, "metrics + latest_metrics upsert", "mloop.store.sql.runs", None, "_write_metrics"),
    # since the fast path: params, tags and metrics of both transactions, and its driver calls on SQLite
    (3, "params, tags, metrics (_write_values, both transactions)", "mloop.store.sql.runs", None, "_write_values"),
    (4, "fast path: params, tags, metrics SQL", "mloop.store.sql.fastpath", None, "write_values"),
    (1, "run_in_transaction (both transactions, whole)", "mloop.store.sql.runs", None, "run_in_transaction"),
    (2, "engine.connect (pool checkout)", "sqlalchemy.engine.base", "Engine", "connect"),
    (2, "write_event (both transactions)", "mloop.store.sql.runs", None, "write_event"),
]


class Timers:
    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, name: str, label: str) -> bool:
        orig = getattr(owner, name, None)
        if orig is None:
            return False
        t, n, perf = self.t, self.n, time.perf_counter

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = perf()
            try:
                return orig(*args, **kwargs)
            finally:
                t[label] += perf() - started
                n[label] += 1

        setattr(owner, name, wrapper)
        return True


def _instrument(timers: Timers, store: Any, log: list[tuple[int, str, Any, bool]], current: list[int]) -> list[str]:
    """Wrap the phases; record every statement the driver gets (and COMMITs) into ``log``. Returns the missing."""
    import importlib

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.default import DefaultDialect

    missing = []
    for _depth, label, module, cls, attr in PHASES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            missing.append(label)
            continue
        owner = getattr(mod, cls, None) if cls else mod
        if cls == "RunsMixin":
            owner = type(store)  # shadow the inherited method on the concrete store class
        if owner is None or not timers.wrap(owner, attr, label):
            missing.append(label)
    perf = time.perf_counter
    started: list[float] = [0.0]

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        log.append((current[0], statement, parameters, executemany))
        started[0] = perf()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        key = "driver: BEGIN" if statement.startswith("BEGIN") else "driver: execute (other statements)"
        timers.t[key] += perf() - started[0]
        timers.n[key] += 1

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    _record_driver_calls(timers, log, current)
    orig_commit = DefaultDialect.do_commit

    def do_commit(self: Any, dbapi_connection: Any) -> None:
        log.append((current[0], "COMMIT", None, False))
        t0 = perf()
        try:
            orig_commit(self, dbapi_connection)
        finally:
            timers.t["driver: COMMIT"] += perf() - t0
            timers.n["driver: COMMIT"] += 1

    DefaultDialect.do_commit = do_commit  # type: ignore[method-assign]
    return missing


class _RecordingDriver:
    """Stands in for the sqlite3 connection that mloop's SQLite fast path writes to: records and times each call."""

    def __init__(self, real: Any, timers: Timers, log: list[tuple[int, str, Any, bool]], current: list[int]) -> None:
        self._real, self._timers, self._log, self._current = real, timers, log, current

    def _call(self, many: bool, statement: str, parameters: Any) -> Any:
        if many:
            parameters = list(parameters)
        self._log.append((self._current[0], statement, parameters, many))
        started = time.perf_counter()
        try:
            run = self._real.executemany if many else self._real.execute
            return run(statement, parameters)
        finally:
            self._timers.t["driver: execute (other statements)"] += time.perf_counter() - started
            self._timers.n["driver: execute (other statements)"] += 1

    def execute(self, statement: str, parameters: Any = ()) -> Any:
        return self._call(False, statement, parameters)

    def executemany(self, statement: str, parameters: Any) -> Any:
        return self._call(True, statement, parameters)


def _record_driver_calls(timers: Timers, log: list[tuple[int, str, Any, bool]], current: list[int]) -> None:
    """The fast path sends SQL text to the sqlite3 connection, past SQLAlchemy's events: record it there."""
    try:
        from mloop.store.sql import fastpath
    except ImportError:  # mloop before the fast path: every statement goes through SQLAlchemy
        return
    real_driver_of = fastpath.driver_of

    def driver_of(conn: Any) -> Any:
        driver = real_driver_of(conn)
        return None if driver is None else _RecordingDriver(driver, timers, log, current)

    fastpath.driver_of = driver_of


def _loop(mloop: Any, experiment: str, n: int, body: Body, timers: Timers | None, current: list[int]) -> float:
    perf = time.perf_counter
    t0 = perf()
    for i in range(n):
        current[0] = i
        params, metrics = body(i)
        a = perf()
        run = mloop.start_run(experiment=experiment, name=f"r{i}")
        b = perf()
        run.log_params(params)
        run.log_metrics(metrics)
        d = perf()
        run.__exit__(None, None, None)  # what `with` does on a clean exit
        if timers is not None:
            e = perf()
            timers.t["mloop.start_run"] += b - a
            timers.t["log_params + log_metrics (buffer)"] += d - b
            timers.t["end of the with block (Run.__exit__)"] += e - d
    return perf() - t0


def _backup(src: str, dest: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    a.close()
    b.close()


# replay mode -> (one transaction per run, keep the event rows, PRAGMA wal_autocheckpoint, indexes dropped first);
# mloop uses SQLite's default autocheckpoint 1000: a COMMIT that takes the WAL past 1000 pages runs a checkpoint
# (two fsyncs) before it returns
KEY_VALUE_INDEXES = ("ix_params_key_value", "ix_latest_metrics_key_value")  # search by param / metric value
REPLAY_MODES: dict[str, tuple[bool, bool, int, tuple[str, ...]]] = {
    "as sent (mloop's transactions)": (False, True, 1000, ()),
    "one transaction per run": (True, True, 1000, ()),
    "one transaction per run, no event rows": (True, False, 1000, ()),
    "as sent, no auto-checkpoint": (False, True, 0, ()),
    "one transaction per run, no auto-checkpoint": (True, True, 0, ()),
    "as sent, no auto-checkpoint, without the (key, value) indexes": (False, True, 0, KEY_VALUE_INDEXES),
}


def _replay(snapshot: Path, log: list[tuple[int, str, Any, bool]], mode: str) -> dict[str, float]:
    """Replay the recorded statements with plain sqlite3 on a copy of ``snapshot``: wall and CPU seconds, and the
    WAL frames (pages) left at the end (all that were written, when nothing checkpoints)."""
    merge, events, autocheckpoint, drop = REPLAY_MODES[mode]
    work = snapshot.with_name(f"replay-{list(REPLAY_MODES).index(mode)}.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(snapshot, work)
    seq = log
    if merge:
        by_run: dict[int, list[tuple[int, str, Any, bool]]] = defaultdict(list)
        for item in log:
            if item[1] == "COMMIT" or item[1].startswith("BEGIN"):
                continue
            if not events and item[1].startswith("INSERT INTO events"):
                continue
            by_run[item[0]].append(item)
        seq = []
        for run, items in by_run.items():
            seq += [(run, "BEGIN IMMEDIATE", None, False), *items, (run, "COMMIT", None, False)]
    conn = sqlite3.connect(work, isolation_level=None, check_same_thread=False)
    pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000")
    for pragma in (*pragmas, f"wal_autocheckpoint={autocheckpoint}"):
        conn.execute(f"PRAGMA {pragma}")
    for index in drop:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # count only the pages the replay writes
    cur = conn.cursor()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _run, statement, params, many in seq:
        if many:
            cur.executemany(statement, params)
        elif params is None:
            cur.execute(statement)
        else:
            cur.execute(statement, params)
            if statement.startswith("SELECT"):
                cur.fetchall()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    conn.close()
    return {"wall": elapsed, "cpu": cpu, "wal_frames": frames}


def w_profile_phases(spec: dict[str, Any], body: Body) -> dict[str, Any]:
    import mloop

    n = int(spec["runs"])
    with mloop.start_run(experiment="bench-warmup", name="warmup"):
        pass
    current = [0]
    cpu0 = time.process_time()
    plain = _loop(mloop, "bench-plain", n, body, None, current)
    plain_cpu = time.process_time() - cpu0
    db = c.mloop_store_uri().removeprefix("sqlite:///")
    snapshot = Path(db).with_name("before-loop.db")
    _backup(db, snapshot)
    timers = Timers()
    log: list[tuple[int, str, Any, bool]] = []
    missing = _instrument(timers, mloop.get_client().store, log, current)
    instrumented = _loop(mloop, "bench", n, body, timers, current)
    verbs = Counter(s.split()[0] if s != "COMMIT" else "COMMIT" for _r, s, _p, _m in log)
    tables = Counter(
        m.group(1) for _r, s, _p, _m in log if (m := re.match(r"(?:INSERT INTO|UPDATE|SELECT .*? FROM) (\w+)", s))
    )
    replay: dict[str, list[dict[str, float]]] = {m: [] for m in REPLAY_MODES}
    for rep in range(3):
        for mode in c.rotated(list(REPLAY_MODES), rep):
            replay[mode].append(_replay(snapshot, log, mode))
    return {
        "seconds": plain,
        "runs": n,
        "plain_per_run_s": plain / n,
        "plain_cpu_per_run_s": plain_cpu / n,
        "instrumented_per_run_s": instrumented / n,
        "phases_per_run_s": {k: v / n for k, v in timers.t.items()},
        "calls_per_run": {k: v / n for k, v in timers.n.items()},
        "not_timed": missing,
        "statements_per_run": {k: v / n for k, v in sorted(verbs.items())},
        "statements_by_table_per_run": {k: v / n for k, v in sorted(tables.items())},
        "sql_replay_per_run_s": {m: statistics.median(r["wall"] for r in v) / n for m, v in replay.items()},
        "sql_replay_cpu_per_run_s": {m: statistics.median(r["cpu"] for r in v) / n for m, v in replay.items()},
        "sql_replay_wal_frames_per_run": {
            m: v[-1]["wal_frames"] / n for m, v in replay.items() if not REPLAY_MODES[m][2]
        },
    }
