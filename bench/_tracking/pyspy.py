"""profile-runs, py-spy view: a sampled wall-clock profile of an unmodified runs worker, by operation and layer."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import _common as c

# ---------------------------------------------------------------------------------------------- py-spy

# py-spy names frames by qualified name ("RunsMixin.end_run.<locals>.end") and full file name (--full-filenames):
# matching uses the last part of the name and a fragment of the path
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")
# (function, path fragment) -> operation; the deepest match in a stack wins
OPERATIONS: list[tuple[str, str, str]] = [
    ("w_runs", "bench_tracking", "bench loop (building the params/metrics dicts)"),
    ("start_run", "tracking/fluent", "start_run: fluent layer (context state)"),
    ("start_run", "tracking/client", "start_run: client (names, ids)"),
    ("experiment_id", "tracking/client", "start_run: experiment lookup"),
    ("capture_with_digest", "tracking/environment", "start_run: environment capture"),
    ("__init__", "tracking/run", "start_run: Run() (buffer, atexit, SIGTERM)"),
    ("create_run", "store/sql/runs", "create_run: Python around the transaction"),
    ("create", "store/sql/runs", "create_run: INSERT run"),
    ("log_params", "tracking/run", "log_params (buffer)"),
    ("log_metrics", "tracking/run", "log_metrics (buffer)"),
    ("__exit__", "tracking/run", "end: Run.end Python"),
    ("end", "tracking/run", "end: Run.end Python"),
    ("_pop", "tracking/fluent", "end: fluent layer"),
    ("end_run", "store/sql/runs", "end_run: Python around the transaction"),
    ("end", "store/sql/runs", "end_run: UPDATE run"),
    ("_write_params", "store/sql/runs", "end_run: params (SELECT existing + INSERT)"),
    ("_write_tags", "store/sql/runs", "end_run: tags"),
    ("_write_metrics", "store/sql/runs", "end_run: metrics + latest_metrics"),
    ("_write_values", "store/sql/runs", "params, tags, metrics (both transactions)"),  # since the SQLite fast path
    ("run_in_transaction", "store/sql/engine", "transaction: checkout, BEGIN, COMMIT, return"),
    ("write_event", "store/sql/events", "write_event (both transactions)"),
]
SKIP = ("search_runs", "_mloop_prepare", "mloop_run_id")  # untimed parts of the worker


DRIVER_CALL = re.compile(r"\bdriver\.execute(many)?\(")


def _driver_call(file: str, line: int, sources: dict[str, list[str]]) -> bool:
    """Whether ``file:line`` (a leaf frame of mloop's SQLite fast path) is a call into the sqlite3 driver."""
    if "store/sql/" not in file:
        return False
    if file not in sources:
        try:
            sources[file] = Path(file).read_text().splitlines()
        except OSError:
            sources[file] = []
    text = sources[file][line - 1] if 0 < line <= len(sources[file]) else ""
    return bool(DRIVER_CALL.search(text))


def _layer(frames: list[tuple[str, str]], leaf_is_driver_call: bool = False) -> str:
    funcs = {f for f, _ in frames}
    if funcs & {"do_execute", "do_executemany", "do_execute_no_params"} or leaf_is_driver_call:
        return "sqlite3 C: execute (incl. BEGIN)"
    if "do_commit" in funcs:
        return "sqlite3 C: COMMIT"
    if any("sqlalchemy/sql/compiler" in p or "sqlalchemy/sql/cache_key" in p for _, p in frames):
        return "SQLAlchemy: compile + cache key"
    for func, path in reversed(frames):  # leaf first
        if "sqlalchemy/" in path:
            if "sqlalchemy/pool" in path:
                return "SQLAlchemy: pool"
            if "sqlalchemy/sql/" in path:
                return "SQLAlchemy: statement objects"
            return "SQLAlchemy: execution, results, events"
        if "mloop/" in path or "bench_tracking" in path:
            return "mloop Python (and the stdlib it calls)"
        if func.startswith("<") or "threading" in path or "atexit" in path:
            continue
    return "other Python (stdlib)"


def pyspy_exe() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def pyspy_runs(script: Path, n: int, rate: int) -> dict[str, Any]:
    """One unmodified ``runs`` worker (mloop-sqlite) under ``py-spy record --idle``: samples by operation x layer."""
    exe = pyspy_exe()
    work = c.new_workdir("profile-pyspy")
    try:
        out = work / "pyspy.txt"
        spec = {"task": "runs", "side": c.MLOOP_SQLITE, "runs": n}
        flags = ["--idle", "--full-filenames", "-r", str(rate), "-f", "raw", "-o", str(out)]
        cmd = [exe or "py-spy", "record", *flags, "--"]
        proc = subprocess.run(
            cmd + c.worker_command(script, spec),
            env=c.side_env(c.MLOOP_SQLITE, work), cwd=work, capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        res = c.parse_result(proc.returncode, proc.stdout, proc.stderr, spec)
        cells: Counter[tuple[str, str]] = Counter()
        sources: dict[str, list[str]] = {}
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            matched = [m for f in stack.split(";") if (m := FRAME.match(f))]
            frames = [(m["func"].rsplit(".", 1)[-1], m["file"]) for m in matched]
            # the fast path calls the driver from mloop's own lines: a leaf there is time in sqlite3's C code
            driver_leaf = bool(matched) and _driver_call(matched[-1]["file"], int(matched[-1]["line"]), sources)
            funcs = [f for f, _ in frames]
            if "w_runs" not in funcs or any(s in funcs for s in SKIP):  # other threads, untimed parts
                continue
            op = "other"
            for func, path in frames:  # root first: the deepest match wins
                for name, frag, label in OPERATIONS:
                    if func == name and frag in path:
                        op = label
            cells[(op, _layer(frames, driver_leaf))] += int(count)
        return {"seconds": res["seconds"], "runs": n, "samples": dict(_flat(cells)), "rate": rate}
    finally:
        c.remove_workdir(work)


def _flat(cells: Counter[tuple[str, str]]) -> dict[str, int]:
    return {f"{op} | {layer}": v for (op, layer), v in cells.items()}
