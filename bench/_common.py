"""Shared harness for mloop's benchmarks against MLflow.

Benchmarks are not tests: they print medians and ratios and never gate CI on a time.

Model: a benchmark script is run twice over. As a *driver* (the normal command line) it decides what to
measure, and for every repeat and every side ("backend") starts the same script again as a *worker* in a
fresh subprocess (``--worker '<json spec>'``), with a fresh temporary folder and an environment that points
only that side at it. The worker imports its library, does any untimed set-up, times the work with
``time.perf_counter`` and prints one line ``RESULT {json}`` on stdout. Imports and interpreter start-up are
therefore outside the timed region unless a benchmark is about start-up.

The machine these run on is small (2 cores) and noisy: report medians over repeats and ratios, never a
single number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULT_PREFIX = "RESULT "

PG_ADMIN_DSN = os.environ.get("MLOOP_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOSTPART = os.environ.get("MLOOP_BENCH_PG_HOST", "postgres@127.0.0.1:5432")

# ---------------------------------------------------------------------------------------------- sides

MLFLOW_SQLITE = "mlflow-sqlite"
MLFLOW_FILE = "mlflow-file"
MLFLOW_SQLITE_ASYNC = "mlflow-sqlite-async"
MLOOP_SQLITE = "mloop-sqlite"
MLOOP_POSTGRES = "mloop-postgres"


def is_mlflow(side: str) -> bool:
    return side.startswith("mlflow")


def quiet_env() -> dict[str, str]:
    """The environment every worker gets: offline, no telemetry, no progress bars, no stray URIs."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("MLFLOW_", "MLOOP_")) and not key.startswith("MLOOP_BENCH_"):
            del env[key]
    env.update(
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "DO_NOT_TRACK": "1",
            "DISABLE_TELEMETRY": "1",
            "MLFLOW_LOGGING_LEVEL": "WARNING",
            "GIT_PYTHON_REFRESH": "quiet",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def side_env(side: str, workdir: Path, pg_db: str | None = None) -> dict[str, str]:
    """Environment pointing ``side`` at a store inside ``workdir`` (or at PostgreSQL database ``pg_db``)."""
    env = quiet_env()
    if side in (MLFLOW_SQLITE, MLFLOW_SQLITE_ASYNC):
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir}/mlflow.db"
    elif side == MLFLOW_FILE:
        # MLflow 3.x refuses its file store unless opted in ("maintenance mode").
        env["MLFLOW_TRACKING_URI"] = (workdir / "mlruns").as_uri()
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    elif side == MLOOP_SQLITE:
        env["MLOOP_URI"] = f"sqlite:///{workdir}/mloop.db"
        env["MLOOP_ARTIFACT_URI"] = str(workdir / "artifacts")
    elif side == MLOOP_POSTGRES:
        if not pg_db:
            raise ValueError("mloop-postgres needs a database name")
        env["MLOOP_URI"] = f"postgresql+psycopg://{PG_HOSTPART}/{pg_db}"
        env["MLOOP_ARTIFACT_URI"] = str(workdir / "artifacts")
    else:
        raise ValueError(f"unknown side {side!r}")
    if side in (MLOOP_SQLITE, MLOOP_POSTGRES):  # only `mloop init` creates a store (untimed, like MLflow's setup)
        from mloop.store import open_store

        open_store(env["MLOOP_URI"]).close()
    if side == MLFLOW_SQLITE_ASYNC:
        env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true"
    return env


def new_workdir(tag: str) -> Path:
    base = Path(os.environ.get("MLOOP_BENCH_TMP", tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix=f"mloop-bench-{tag}-", dir=base))


def remove_workdir(path: Path) -> None:
    if os.environ.get("MLOOP_BENCH_KEEP"):
        print(f"[kept {path}]", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- postgres


def pg_create_db(prefix: str = "mloop_bench") -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def pg_drop_db(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_available() -> str | None:
    """None when the server answers, else the reason it can't be used."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


# ---------------------------------------------------------------------------------------------- workers


class WorkerError(RuntimeError):
    pass


def worker_command(script: str | Path, spec: Mapping[str, Any]) -> list[str]:
    return [sys.executable, str(script), "--worker", json.dumps(spec)]


def run_worker(
    script: str | Path,
    spec: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 3600,
) -> dict[str, Any]:
    """Run one worker subprocess and return its RESULT dict (raises WorkerError with its output)."""
    proc = subprocess.run(
        worker_command(script, spec),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return parse_result(proc.returncode, proc.stdout, proc.stderr, spec)


def parse_result(rc: int, stdout: str, stderr: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if rc != 0 or result is None or "error" in result:
        detail = result.get("traceback") if result else None
        raise WorkerError(
            f"worker {spec.get('side')}/{spec.get('task')} failed (exit {rc})\n"
            f"--- traceback ---\n{detail or ''}\n--- stderr (tail) ---\n{stderr[-4000:]}"
        )
    return result


def worker_main(tasks: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Entry point of a worker: ``script --worker '<json spec>'``; spec['task'] picks the function."""
    spec = json.loads(sys.argv[sys.argv.index("--worker") + 1])
    try:
        result = tasks[spec["task"]](spec)
    except BaseException as exc:
        payload = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(RESULT_PREFIX + json.dumps(payload), flush=True)
        sys.exit(1)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def is_worker() -> bool:
    return "--worker" in sys.argv


def mlflow_setup_logging() -> None:
    """Keep MLflow's INFO chatter ("Creating initial MLflow database tables...") off the worker's output."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------- stats


def median(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def paired_ratios(base: Sequence[float | None], other: Sequence[float | None]) -> dict[str, Any] | None:
    """Per-repeat ratios other[i] / base[i] of interleaved samples: median, min, max and the values.

    Each repeat runs both sides back to back, so a pair shares the machine's load at that moment; the spread
    of the pairs is the honest error bar of the ratio (a ratio of two medians can mix a quiet and a busy run).
    """
    vals = [o / b for b, o in zip(base, other, strict=False) if b and o is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def fmt_range(pr: Mapping[str, Any] | None) -> str:
    """'10.2x (7.5-12.0x, 7 pairs)' for a paired_ratios result."""
    if not pr:
        return "-"
    return f"{pr['median']:,.1f}x ({pr['min']:,.1f}-{pr['max']:,.1f}x, {pr['n']} pairs)"


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_x(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}x"


def now() -> float:
    return time.perf_counter()


# ---------------------------------------------------------------------------------------------- CLI + output


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=5, help="fresh-subprocess repeats per side (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--save", metavar="PATH", default=None, help="also write the JSON document to PATH")
    parser.add_argument(
        "--sides",
        default=None,
        help="comma-separated subset of sides to run (e.g. mloop-sqlite,mlflow-sqlite)",
    )
    return parser


def pick_sides(requested: str | None, default: Sequence[str]) -> list[str]:
    """The requested sides that this benchmark has (all of them when none are requested)."""
    if not requested:
        return list(default)
    wanted = [s.strip() for s in requested.split(",") if s.strip()]
    known = {MLFLOW_SQLITE, MLFLOW_FILE, MLFLOW_SQLITE_ASYNC, MLOOP_SQLITE, MLOOP_POSTGRES}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise SystemExit(f"unknown side(s) {unknown}; choose from {sorted(known)}")
    return [s for s in default if s in wanted]


def rotated(items: Sequence[str], k: int) -> list[str]:
    """Alternate which side goes first from repeat to repeat, so drift on a noisy machine spreads evenly."""
    k %= max(len(items), 1)
    return list(items[k:]) + list(items[:k])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    """Versions of the two libraries as installed in this interpreter (no import of either)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("mlflow", "mloop", "sqlalchemy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(f"\n{title}")
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
        print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
        for r in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
        if note:
            print(note)
        return
    table = Table(title=title)
    for i, c in enumerate(columns):
        table.add_column(str(c), justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*(str(v) for v in r))
    console = Console(width=160)
    console.print(table)
    if note:
        console.print(note, highlight=False)


def emit_json(doc: Mapping[str, Any]) -> None:
    print(json.dumps(doc, indent=2, default=str))


def save_json(doc: Mapping[str, Any], path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(doc, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------------------------- mloop read-back
# Read-back prefers mloop's public API and falls back to plain SQL on the workspace's own tables (SQLAlchemy
# is an mloop dependency), so the correctness checks are independent of the timed code path.


def mloop_store_uri() -> str:
    uri = os.environ.get("MLOOP_URI")
    if not uri:
        raise RuntimeError("MLOOP_URI is not set for this worker")
    return uri


def _mloop_engine() -> Any:
    import sqlalchemy as sa

    return sa.create_engine(mloop_store_uri())


def mloop_metric_history(run_id: str, key: str) -> tuple[list[tuple[int, float]], str]:
    """(step, value) pairs of one metric, ordered by step, and how they were read ('api' or 'sql')."""
    import mloop

    getter = getattr(mloop, "get_metric_history", None)
    label = "api:mloop.get_metric_history"
    if getter is None and hasattr(mloop, "get_client"):
        getter = getattr(mloop.get_client(), "get_metric_history", None)
        label = "api:mloop.get_client().get_metric_history"
    if getter is not None:
        try:
            points = getter(run_id, key)
        except TypeError:
            points = getter(run_id=run_id, key=key)
        pairs = sorted((int(p.step), float(p.value)) for p in points)
        return pairs, label
    import sqlalchemy as sa

    with _mloop_engine().connect() as conn:
        rows = conn.execute(
            sa.text("select step, value from metrics where run_id = :r and key = :k order by step"),
            {"r": run_id, "k": key},
        ).all()
    return [(int(s), float(v)) for s, v in rows], "sql:metrics table"


def mloop_run_id(run: Any) -> str:
    for attr in ("id", "run_id"):
        value = getattr(run, attr, None)
        if isinstance(value, str):
            return value
    info = getattr(run, "info", None)
    if info is not None and isinstance(getattr(info, "run_id", None), str):
        return str(info.run_id)
    raise AttributeError(f"cannot find the id of {run!r}")
