"""The request collector: every scored request's inputs, outputs, version, latency and id, kept off the
critical path and written as Parquet partitions under the artifact root (rows and layout: docs/deployments.md,
:mod:`mloop.artifacts.collected`).

The serving process only copies bytes: :meth:`Collector.record` puts the request's id, time, latency, status
and the bytes of its input matrix and outputs into a ring in shared memory (:mod:`~.collector_ring`); mixed-type
DataFrames, failures (a row of nulls), stream batches (:meth:`Collector.record_rows`) and feedback: pickled. A
separate **writer process** (:mod:`~.collector_writer`, started by the collector, one per serving process)
takes the records out every 250 ms, tabulates them and writes every ``flush_interval`` seconds (or at
``flush_rows`` rows) one part per hour: the serving process's event loop never shares its GIL with that work
(bench/RESULTS.md §17). A small thread in the serving process relays the writer's reports (metrics, log lines)
and restarts a writer that died (``mloop_collector_writer_restarts_total``, an error in the log; the rows that
writer held are counted as dropped); after 3 deaths in a minute the collector stops collecting and drops and
counts every record, never blocking scoring.

Bounded: ``max_rows`` request rows not yet written, and ``ring_bytes`` of shared memory; past either a record
is dropped, never waited for, and counted (``mloop_collector_dropped_rows_total``, a warning at most every
10 s); feedback is never dropped silently (past the bound :class:`~mloop.errors.Overloaded`: 503 with
``Retry-After``). :meth:`close` writes everything (under uvicorn call it from the lifespan shutdown); after
``kill -9`` of the serving process the writer sees its pipe close, writes what is in the ring and exits, so
at most the last ``flush_interval`` of traffic is lost, and a half-written part is never visible. A failed
write keeps its tables for the next one (within the bound).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected import check_endpoint_name
from mloop.errors import InvalidInput, Overloaded
from mloop.serving.collected_files import CollectedRoot, make_record
from mloop.serving.collector_ring import DRAINED, FB_DRAINED, ID_BYTES, FrameMatrix, Layout, Ring, layout_of, open_ring
from mloop.serving.feedback import feedback_rows

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.serving.metrics import CollectorMetrics

__all__ = ["Collector", "collector_for"]

_log = logging.getLogger("mloop.serving.collector")
_WARN_EVERY_S = 10.0
_RESTARTS = 3  # writer deaths tolerated within _RESTART_WINDOW_S before the collector gives up
_RESTART_WINDOW_S = 60.0


def collector_for(context: Context, endpoint: str, **options: Any) -> Collector:
    """A collector writing ``endpoint``'s requests under ``context``'s artifact root (options: see
    :class:`Collector`)."""
    return Collector(context.artifacts.uri, endpoint=endpoint, **options)


class Collector:
    """Records scored requests and feedback for one endpoint; its writer process writes them to Parquet.

    ``root`` is the artifact store's URI (a folder or an fsspec URL); ``flush_rows`` rows or ``flush_interval``
    seconds trigger a write; ``max_rows`` bounds the rows not yet written and ``ring_bytes`` the shared memory
    between the two processes (records past either are dropped and counted).
    """

    def __init__(
        self, root: str, *, endpoint: str, flush_rows: int = 50_000, flush_interval: float = 1.0,
        max_rows: int = 500_000, ring_bytes: int = 16 * 2**20,
    ) -> None:  # fmt: skip
        check_endpoint_name(endpoint)
        if flush_rows < 1 or max_rows < flush_rows:
            raise InvalidInput(f"flush_rows must be at least 1 and at most max_rows; got flush_rows={flush_rows}, "
                               f"max_rows={max_rows}.")  # fmt: skip
        if not 0 < flush_interval <= 3600:
            raise InvalidInput(f"flush_interval must be between 0 and 3600 seconds, got {flush_interval!r}.")
        if not 2**16 <= ring_bytes <= 2**34:
            raise InvalidInput(f"ring_bytes must be between 65536 and 2**34, got {ring_bytes!r}.")
        import numpy as np
        from prometheus_client import Counter

        from mloop.serving.metrics import CollectorMetrics

        self.endpoint = endpoint
        self.flush_rows, self.flush_interval, self.max_rows = flush_rows, flush_interval, max_rows
        self.files = CollectedRoot(root)
        self.metrics: CollectorMetrics = CollectorMetrics(endpoint, self._buffered)
        self._restart_counter = Counter(
            "mloop_collector_writer_restarts",
            "Collector writer processes restarted after dying.",
            ["endpoint"],
            registry=self.metrics.registry,
        ).labels(endpoint)
        self._ndarray = np.ndarray
        self._ring = open_ring(ring_bytes)
        self._lock = threading.Lock()  # the ring's producer side (event loop, shadow drains, stream threads)
        self._layouts: dict[tuple[Any, ...], tuple[int, Any, int]] = {}
        self._layout_of: dict[int, Layout] = {}
        self._matrix_of = FrameMatrix()
        self._rows_in = self._rows_done = self._done_base = 0  # request rows put in the ring / finished
        self._fb_in = self._fb_done = self._fb_base = 0
        self._counts = {"rows": 0, "dropped": 0, "files": 0, "feedback_rows": 0, "write_errors": 0,
                        "flush_cpu_us": 0, "writer_restarts": 0}  # fmt: skip
        self._cpu_base = 0
        self._closed = self._closing = self._broken = False
        self._deaths: list[float] = []
        self._asked = self._answered = self._flush_base = 0
        self._flushed = threading.Condition()
        self._proc_lock = threading.Lock()
        self._dropped_since_warning, self._warned_at = 0, 0.0
        self._proc, self._msg = self._start_writer()
        self._monitor = threading.Thread(target=self._watch, name=f"mloop-collector-{endpoint}", daemon=True)
        self._monitor.start()

    def __repr__(self) -> str:
        return f"Collector({self.files.uri!r}, endpoint={self.endpoint!r})"

    # -- recording (hot path) ------------------------------------------------------------------------------

    def record(
        self, request_id: str, model: str, data: Any, result: Mapping[str, Any] | None, latency_s: float,
        status: int = 200, role: str = "live", *, columns: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        """Record one answered request: ``data`` is what was scored (2-D array or DataFrame; ``None`` for a
        failed request), ``result`` the answer dict (``predictions`` or ``probabilities``), ``columns`` the
        input names of a bare matrix (signature order)."""
        if columns is not None and columns.__class__ is not tuple:
            columns = tuple(columns)
        outputs, proba = None, False
        if result is not None and data is not None:
            outputs = result.get("predictions")
            if outputs is None and "probabilities" in result:
                outputs, proba = result["probabilities"], True
        if data.__class__ is not self._ndarray and data is not None and columns is not None:
            data = self._matrix_of(data, columns)  # a DataFrame over one numeric matrix: that matrix
        if data.__class__ is self._ndarray and outputs.__class__ is self._ndarray:  # the fast path: bytes only
            key = (model, role, columns, data.dtype, data.shape[1:], outputs.dtype, outputs.shape[1:], proba)
            fast = self._layouts.get(key)
            if fast is None:
                fast = self._new_layout(key)
            rid = request_id.encode()
            rows = data.shape[0]
            if fast[0] and len(rid) <= ID_BYTES and outputs.shape[:1] == data.shape[:1]:  # one output a row
                layout, one_row, size = fast
                with self._lock:
                    if not self._closed and self._rows_in - self._rows_done + rows <= self.max_rows and (
                        self._ring.put_row(one_row, size, layout, time.time_ns() // 1000, latency_s * 1e3, status,
                                           rid, data.tobytes(), outputs.tobytes()) if rows == 1 else
                        self._ring.put(layout, time.time_ns() // 1000, latency_s * 1e3, status, rows, rid,
                                       data.tobytes(), outputs.tobytes())):  # fmt: skip
                        self._rows_in += rows
                        return
                self._drop(rows)
                return
        rows = 1 if data is None else int(data.shape[0])
        self._put_record(make_record(time.time_ns() // 1000, request_id, model, role, data, columns, outputs,
                                     proba, latency_s * 1e3, status, rows))  # fmt: skip

    def _new_layout(self, key: tuple[Any, ...]) -> tuple[int, Any, int]:
        """The fast layout of ``key`` (sent to the writer first): its id, the struct of a one-row record and its
        size; id 0 when it has none."""
        layout = layout_of(key)
        if layout is None:
            self._layouts[key] = (0, None, 0)
            return self._layouts[key]
        with self._lock:
            number = len(self._layout_of) + 2
            if not self._ring.put_object(("layout", number, layout)):
                return (0, None, 0)  # the ring is full: this record goes the slow way (and is likely dropped)
            self._layout_of[number] = layout
            self._layouts[key] = (number, *Ring.row_struct(layout))
        return self._layouts[key]

    def record_rows(
        self, ids: Sequence[str], model: str, data: Any, outputs: Any, latency_s: float, role: str = "live",
        *, columns: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        """Record a streaming micro-batch: one id per row (the event id; each row is ``row`` 0 of its own
        request); ``outputs`` are the predictions (1-D) or probabilities (2-D), or a result mapping."""
        if isinstance(outputs, Mapping):
            proba = "predictions" not in outputs and "probabilities" in outputs
            outputs = outputs["probabilities" if proba else "predictions"]
        else:
            import numpy as np

            outputs = np.asarray(outputs)
            proba = outputs.ndim == 2 and outputs.dtype.kind == "f"
        rows = int(data.shape[0])
        if len(ids) != rows:
            raise InvalidInput(f"record_rows got {len(ids)} ids for {rows} rows; give one id per row.")
        self._put_record(make_record(time.time_ns() // 1000, list(ids), model, role, data, columns, outputs, proba,
                                     latency_s * 1e3, 200, rows))  # fmt: skip

    def _put_record(self, record: tuple[Any, ...]) -> None:
        rows = record[-1]
        with self._lock:
            if not self._closed and self._rows_in - self._rows_done + rows <= self.max_rows and \
                    self._ring.put_object(record):  # fmt: skip
                self._rows_in += rows
                return
        self._drop(rows)

    def _drop(self, n: int, why: str | None = None) -> None:
        with self._flushed:
            self._counts["dropped"] += n
        self.metrics.dropped(n)
        self._dropped_since_warning += n
        now = time.monotonic()
        if why is not None:
            _log.warning("collector %r dropped %d row(s): %s", self.endpoint, n, why)
        elif now - self._warned_at >= _WARN_EVERY_S:
            _log.warning(
                "collector %r dropped %d row(s) since the last warning: its buffer (max_rows=%d) is full, or "
                "closed, or its writer process is gone. The store may be slow or unreachable; raise max_rows "
                "or lower flush_interval.", self.endpoint, self._dropped_since_warning, self.max_rows,
            )  # fmt: skip
            self._warned_at, self._dropped_since_warning = now, 0

    def record_feedback(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Record ground truth: items ``{"request_id", "ground_truth", "row"?}`` (a list ``ground_truth`` without
        ``row`` is one value per row of the request). Returns the rows accepted; raises
        :class:`~mloop.errors.InvalidInput` naming a bad field, or :class:`Overloaded` when the buffer is full."""
        ids, rows, values = feedback_rows(items)
        now = time.time_ns() // 1000
        with self._lock:
            pending = self._fb_in - self._fb_done
            if self._closed or self._broken or pending + len(ids) > self.max_rows or \
                    not self._ring.put_object(("feedback", ids, rows, values, now)):  # fmt: skip
                raise Overloaded(f"The feedback buffer of endpoint {self.endpoint!r} is full ({pending} rows "
                                 "waiting to be written); retry shortly.", retry_after=1)  # fmt: skip
            self._fb_in += len(ids)
        return len(ids)

    # -- the writer process --------------------------------------------------------------------------------

    def _start_writer(self) -> tuple[subprocess.Popen[bytes], int]:
        from mloop.serving.collector_writer import start_writer

        return start_writer(
            self._ring,
            {
                "root": self.files.uri,
                "endpoint": self.endpoint,
                "flush_rows": self.flush_rows,
                "flush_interval": self.flush_interval,
                "layouts": dict(self._layout_of),
            },
        )

    def _send(self, command: bytes) -> None:
        stdin = self._proc.stdin
        try:
            assert stdin is not None
            stdin.write(command)
            stdin.flush()
        except (OSError, ValueError):  # the writer is gone (the watcher restarts it or has given up)
            pass

    def _watch(self) -> None:
        """Relay the writer's reports; restart it when it dies (runs until the collector is closed)."""
        pending = b""
        while True:
            readable, _, _ = select.select([self._msg], [], [], 1.0)
            if not readable:
                continue
            chunk = os.read(self._msg, 1 << 16)
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._on_report(json.loads(line))
                continue
            code = self._proc.wait()
            os.close(self._msg)
            if self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
            pending = b""
            if self._closing:
                return
            if not self._writer_died(code):
                return

    def _on_report(self, report: dict[str, Any]) -> None:
        counts = self._counts
        if "w" in report:
            kind = report["k"]
            with self._flushed:
                counts["rows" if kind == "requests" else "feedback_rows"] += report["w"]
                counts["files"] += 1
            self.metrics.written(report["w"], kind)
        elif "error" in report:
            with self._flushed:
                counts["write_errors"] += 1
            self.metrics.write_error()
            _log.warning("collector %r could not write %d row(s) to %s: %s; retrying at the next flush",
                         self.endpoint, report["rows"], self.files.uri, report["error"])  # fmt: skip
        elif "dropped" in report:
            self._drop(report["dropped"], report["why"])
        elif "done" in report:
            self._rows_done = self._done_base + report["done"]
            self._fb_done = self._fb_base + report["fb_done"]
            with self._flushed:
                counts["flush_cpu_us"] = self._cpu_base + report["cpu_us"]
        elif "flushed" in report:
            with self._flushed:
                self._answered = self._flush_base + report["flushed"]
                self._flushed.notify_all()

    def _writer_died(self, code: int) -> bool:
        """Count what the dead writer held as dropped and start another (``False``: given up)."""
        slots = self._ring.slots
        lost = int(slots[DRAINED]) - self._rows_done
        self._rows_done = self._done_base = int(slots[DRAINED])
        self._fb_done = self._fb_base = int(slots[FB_DRAINED])
        with self._flushed:
            self._cpu_base = self._counts["flush_cpu_us"]
        if lost:
            self._drop(lost, "its writer process died holding them")
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < _RESTART_WINDOW_S] + [now]
        if len(self._deaths) > _RESTARTS:
            _log.error("collector %r: its writer process died %d times within %g s (last exit code %s); no longer "
                       "collecting: every record is dropped and counted", self.endpoint, len(self._deaths),
                       _RESTART_WINDOW_S, code)  # fmt: skip
            with self._lock:
                self._broken = self._closed = True
            with self._flushed:
                self._flushed.notify_all()
            return False
        _log.error("collector %r: its writer process exited with code %s; starting another", self.endpoint, code)
        with self._proc_lock:  # close() and flush() talk to whichever writer is current
            self._proc, self._msg = self._start_writer()
            if self._closing:
                self._send(b"c")
            with self._flushed:  # flushes asked of the dead writer are not coming: let their callers go
                self._flush_base = self._answered = self._asked
                self._flushed.notify_all()
        self._restart_counter.inc()
        with self._flushed:
            self._counts["writer_restarts"] += 1
        return True

    def _buffered(self) -> int:  # rows recorded, not yet written or dropped
        return self._rows_in - self._rows_done

    # -- control -------------------------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything recorded so far and wait until it is written (tests, checkpoints)."""
        with self._proc_lock, self._flushed:
            self._asked += 1
            target = self._asked
            self._send(b"f")
        with self._flushed:
            self._flushed.wait_for(lambda: self._answered >= target or not self._monitor.is_alive(), timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Stop recording, let the writer write everything and exit (graceful shutdown loses nothing)."""
        with self._lock:
            if self._closing:
                return
            self._closed = self._closing = True
        with self._proc_lock:
            self._send(b"c")
        self._monitor.join(timeout)
        if self._monitor.is_alive():
            _log.warning("collector %r: its writer did not finish within %g s; stopping it", self.endpoint, timeout)
            self._proc.kill()
            self._monitor.join(5)
        if self._ring.used():  # the writer was gone (or gave up): write what is left from here
            self._write_here()
        self._ring.close()

    def _write_here(self) -> None:
        from mloop.serving.collector_writer import RingWriter

        def report(message: dict[str, Any]) -> None:  # this process's CPU time is not the writer's
            self._on_report({**message, "cpu_us": 0} if "cpu_us" in message else message)

        writer = RingWriter(self._ring, self.files.uri, self.endpoint, self._layout_of, report)
        self._done_base, self._fb_base = self._rows_done, self._fb_done
        self._cpu_base = self._counts["flush_cpu_us"]
        writer.drain()
        writer.write(final=True)

    def stats(self) -> dict[str, int]:
        """Rows written, rows dropped, files written, feedback rows written, write errors, the writer's CPU
        time (µs), writer restarts, rows recorded and not yet written."""
        with self._flushed:
            return {**self._counts, "buffered": self._buffered()}

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
