"""The collector's writer process: takes what the serving process put in the ring
(:mod:`mloop.serving.collector_ring`), turns it into Arrow tables and writes the Parquet parts (layout:
:mod:`mloop.artifacts.collected`), so the scoring process's event loop never shares its GIL with that work.

    python -m mloop.serving.collector_writer      (started by :class:`mloop.serving.collector.Collector`)

Its settings arrive pickled on stdin (length-prefixed); afterwards stdin carries single bytes: ``f`` asks for a
write now (answered ``{"flushed": n}``), ``c`` for the last write and exit, and end-of-file means the serving
process is gone: the writer then takes what is left in the ring, writes it and exits (so ``kill -9`` of the
server loses at most the last flush interval). It ignores SIGINT and SIGTERM (a terminal's Ctrl-C, or a
``kill`` of the process group, stops the server first, which then closes the collector). It reports to the
serving process on its own pipe, one JSON object a line: rows written, write errors, rows it dropped, and its
totals (``done``: request rows written or dropped), which the serving process logs and counts.

:class:`RingWriter` is the same work in any process: the serving process runs it in-process to empty the ring
when the writer is gone at :meth:`~mloop.serving.collector.Collector.close`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.serving.collected_files import (
    FEEDBACK,
    REQUESTS,
    CollectedRoot,
    concat_unified,
    feedback_table,
    hour_of,
    matrix_table,
    requests_table,
    split_by_hour,
)
from mloop.serving.collector_ring import RECORD_FIELDS, Layout, Ring

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RingWriter", "main", "start_writer"]

Report = Callable[[dict[str, Any]], None]


class RingWriter:
    """Takes records out of ``ring`` (:meth:`drain`) and writes them as parts (:meth:`write`), reporting through
    ``report``; a failed write keeps its tables for the next one."""

    def __init__(self, ring: Ring, root: str, endpoint: str, layouts: dict[int, Layout], report: Report) -> None:
        self.ring, self.endpoint, self.layouts, self.report = ring, endpoint, dict(layouts), report
        self.files = CollectedRoot(root)
        self.segments: list[Any] = []  # runs (dicts of arrays) and lists of Records, in arrival order
        self.pending: list[tuple[int, pa.Table]] = []  # tabulated, not yet written (a failed write keeps them)
        self.feedback: list[tuple[str, int, Any, int]] = []
        self.held = 0  # request rows taken and not yet written or dropped
        self.done = self.feedback_done = 0  # request rows written or dropped; feedback rows written
        self.failing = False
        self.cpu_start = time.process_time()

    def drain(self) -> int:
        """Take every record published in the ring so far; returns the request rows taken."""
        items: list[Any] = []
        rows = self.ring.take(self.layouts, items)
        for item in items:
            if item.__class__ is dict:
                self.segments.append(item)
            elif len(item) == RECORD_FIELDS:
                if self.segments and self.segments[-1].__class__ is list:
                    self.segments[-1].append(item)
                else:
                    self.segments.append([item])
            elif item[0] == "feedback":
                _, ids, rows_of, values, ts = item
                self.feedback.extend((i, r, v, ts) for i, r, v in zip(ids, rows_of, values, strict=True))
        self.held += rows
        return rows

    def write(self, final: bool = False) -> None:
        """Tabulate what was taken, write one part per hour, then the feedback; ``final``: what still cannot be
        written is dropped (and counted), and the totals are reported either way."""
        self._tabulate()
        by_hour: dict[int, list[pa.Table]] = {}
        for hour, table in self.pending:
            by_hour.setdefault(hour, []).append(table)
        self.pending = []
        for hour, tables in sorted(by_hour.items()):
            table = concat_unified(tables)
            try:
                self.files.write_table(REQUESTS, self.endpoint, hour, table)
            except Exception as exc:
                self.report({"error": f"{type(exc).__name__}: {exc}", "rows": table.num_rows})
                self.failing = True
                if final:
                    self._dropped(table.num_rows, "the store refused the last write")
                else:
                    self.pending.append((hour, table))
                continue
            self.failing = False
            self.held -= table.num_rows
            self.done += table.num_rows
            self.report({"w": table.num_rows, "k": REQUESTS})
        if self.feedback:
            self._write_feedback(final)
        cpu_us = int((time.process_time() - self.cpu_start) * 1e6)
        self.report({"done": self.done, "fb_done": self.feedback_done, "cpu_us": cpu_us})

    def _tabulate(self) -> None:
        segments, self.segments = self.segments, []
        tables: list[pa.Table] = []
        while segments:
            first = segments[0]
            if first.__class__ is list:
                batch: list[Any] = [segments.pop(0)]
            else:  # consecutive runs of one layout: one table
                batch = []
                while segments and segments[0].__class__ is dict and segments[0]["layout"] == first["layout"]:
                    batch.append(segments.pop(0))
            rows = sum(len(s) if s.__class__ is list else int(s["data"].shape[0]) for s in batch)
            try:
                tables.append(requests_table(self.endpoint, batch[0]) if first.__class__ is list
                              else self._run_table(batch))  # fmt: skip
            except Exception as exc:
                self._dropped(rows, f"could not tabulate them ({type(exc).__name__}: {exc})")
        for table in tables:
            first_hour, last_hour = hour_of(table.column("ts")[0].value), hour_of(table.column("ts")[-1].value)
            self.pending.extend([(first_hour, table)] if first_hour == last_hour else split_by_hour(table))

    def _run_table(self, runs: list[dict[str, Any]]) -> pa.Table:
        import numpy as np

        layout = self.layouts[runs[0]["layout"]]

        def joined(key: str) -> Any:
            return runs[0][key] if len(runs) == 1 else np.concatenate([r[key] for r in runs])

        counts = None
        if any(r["rows"] is not None for r in runs):
            counts = np.concatenate([np.ones(len(r["ts"]), np.int64) if r["rows"] is None else r["rows"]
                                     for r in runs])  # fmt: skip
        return matrix_table(self.endpoint, layout.model, layout.role, layout.proba, layout.columns, joined("ts"),
                            joined("id"), joined("latency"), joined("status"), counts, joined("data"),
                            joined("out"))  # fmt: skip

    def _write_feedback(self, final: bool) -> None:
        by_hour: dict[int, list[tuple[str, int, Any, int]]] = {}
        for item in self.feedback:
            by_hour.setdefault(hour_of(item[3]), []).append(item)
        self.feedback = []
        for hour, items in sorted(by_hour.items()):
            ids, rows, values, ts = (list(col) for col in zip(*items, strict=True))
            try:
                table = feedback_table(self.endpoint, ids, rows, values, ts)
                self.files.write_table(FEEDBACK, self.endpoint, hour, table)
            except Exception as exc:
                self.report({"error": f"{type(exc).__name__}: {exc}", "rows": len(items)})
                if not final:
                    self.feedback.extend(items)
                continue
            self.feedback_done += len(items)
            self.report({"w": len(items), "k": FEEDBACK})

    def _dropped(self, rows: int, why: str) -> None:
        self.held -= rows
        self.done += rows
        self.report({"dropped": rows, "why": why})

    def warm_up(self) -> None:
        """Import pyarrow and run its first-use set-up now, not in the middle of the first write."""
        import io

        import numpy as np
        import pyarrow.parquet as pq

        table = matrix_table(self.endpoint, "model:m/1", "live", False, None, np.zeros(1, np.int64), [b"w"],
                             np.zeros(1), np.zeros(1, np.int32), None, np.zeros((1, 1)), np.zeros(1))  # fmt: skip
        pq.write_table(table, io.BytesIO(), compression="snappy")


def start_writer(ring: Ring, settings: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int]:
    """Start a writer process on ``ring`` with ``settings`` (root, endpoint, flush_rows, flush_interval,
    layouts); returns it and the read end of its report pipe (end of file when it exits)."""
    import pickle

    here = str(Path(__file__).resolve().parents[2])  # the same mloop, however this process found it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mloop.serving.collector_writer"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, pass_fds=(ring.fd, write_end), env=env)  # fmt: skip
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)  # the writer holds the only copy: its exit is this pipe's end of file
    payload = pickle.dumps({**settings, "fd": ring.fd, "capacity": ring.capacity, "msg_fd": write_end})
    assert proc.stdin is not None
    with contextlib.suppress(OSError):  # it died at once: the watcher sees the pipe close and handles it
        proc.stdin.write(len(payload).to_bytes(8, "little") + payload)
        proc.stdin.flush()
    return proc, read_end


def _read_exactly(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError("the serving process closed the writer's stdin before its settings")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _reporter(fd: int) -> Report:
    def report(message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the serving process is gone: nobody to tell
            os.write(fd, json.dumps(message).encode() + b"\n")

    return report


def main() -> None:
    """The writer process (see the module docstring)."""
    import pickle

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings = pickle.loads(_read_exactly(0, int.from_bytes(_read_exactly(0, 8), "little")))
    report = _reporter(settings["msg_fd"])
    ring = Ring(settings["fd"], settings["capacity"])
    writer = RingWriter(ring, settings["root"], settings["endpoint"], settings["layouts"], report)
    writer.warm_up()
    writer.cpu_start = time.process_time()  # its CPU a row, without the start-up's imports
    interval, flush_rows = float(settings["flush_interval"]), int(settings["flush_rows"])
    poll = min(0.25, interval / 2)  # each wake-up takes what arrived since in one strided read
    asked = answered = 0
    stop = False
    deadline = time.monotonic() + interval
    while not stop:
        readable, _, _ = select.select([0], [], [], poll)
        if readable:
            got = os.read(0, 4096)
            stop = not got or b"c" in got  # end of file: the serving process died
            asked += got.count(b"f")
        writer.drain()
        now = time.monotonic()
        if stop or asked > answered or now >= deadline or (writer.held >= flush_rows and not writer.failing):
            writer.drain()
            writer.write(final=stop)
            deadline = now + interval
            if asked > answered:
                answered = asked
                report({"flushed": answered})
    ring.close()


if __name__ == "__main__":
    main()
