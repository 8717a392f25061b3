"""The request collector: every scored request's inputs, outputs, version, latency and id, kept off the
critical path and written as Parquet partitions under the artifact root (rows and layout: docs/deployments.md,
:mod:`mloop.artifacts.collected`).

:meth:`Collector.record` (an HTTP request) and :meth:`Collector.record_rows` (a streaming micro-batch) append a
plain tuple holding the request's own arrays to a buffer under a lock; every 256 rows the recording thread turns
them into one Arrow table itself (≈ 0.6 µs a row: a second thread doing it would contend for the GIL with a
saturated event loop, bench/RESULTS.md §17). A background thread writes every ``flush_interval`` seconds (or at
``flush_rows`` rows) one part per hour. A failed request is one row with null inputs and outputs.

The buffer is bounded (``max_rows``): past it a record is dropped, never waited for, and counted
(``mloop_collector_dropped_rows_total``, a warning at most every 10 s); feedback is never dropped silently (past
the bound :class:`~mloop.errors.Overloaded`: 503 with ``Retry-After``). :meth:`close` writes everything (under
uvicorn call it from the lifespan shutdown); ``kill -9`` loses at most the last ``flush_interval`` of traffic,
never leaving a half-written part visible. A failed write keeps its tables for the next one (within the bound).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected import check_endpoint_name
from mloop.errors import InvalidInput, Overloaded
from mloop.serving.collected_files import (
    FEEDBACK,
    REQUESTS,
    ROWS,
    CollectedRoot,
    Record,
    concat_unified,
    feedback_table,
    hour_of,
    make_record,
    requests_table,
    split_by_hour,
)
from mloop.serving.feedback import feedback_rows

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.context import Context
    from mloop.serving.metrics import CollectorMetrics

__all__ = ["Collector", "collector_for"]

_log = logging.getLogger("mloop.serving.collector")
_WARN_EVERY_S = 10.0
_CHUNK = 2048  # records turned into Arrow at a time by the flush thread
_INLINE = 256  # rows after which the recording thread tabulates them itself (≈ 0.5 ms): a second thread
# contending for the GIL would stall a busy event loop far more (the convoy effect; bench/RESULTS.md §17)
_Feedback = tuple[str, int, Any, int]  # request id, row, ground truth, arrival (µs)


def collector_for(context: Context, endpoint: str, **options: Any) -> Collector:
    """A collector writing ``endpoint``'s requests under ``context``'s artifact root (options: see
    :class:`Collector`)."""
    return Collector(context.artifacts.uri, endpoint=endpoint, **options)


class Collector:
    """Buffers scored requests and feedback for one endpoint and flushes them to Parquet in a background thread.

    ``root`` is the artifact store's URI (a folder or an fsspec URL); ``flush_rows`` rows or ``flush_interval``
    seconds trigger a flush; ``max_rows`` bounds the buffer (records past it are dropped and counted).
    """

    def __init__(
        self, root: str, *, endpoint: str, flush_rows: int = 50_000, flush_interval: float = 1.0,
        max_rows: int = 500_000,
    ) -> None:  # fmt: skip
        check_endpoint_name(endpoint)
        if flush_rows < 1 or max_rows < flush_rows:
            raise InvalidInput(f"flush_rows must be at least 1 and at most max_rows; got flush_rows={flush_rows}, "
                               f"max_rows={max_rows}.")  # fmt: skip
        if not 0 < flush_interval <= 3600:
            raise InvalidInput(f"flush_interval must be between 0 and 3600 seconds, got {flush_interval!r}.")
        from mloop.serving.metrics import CollectorMetrics

        self.endpoint = endpoint
        self.flush_rows, self.flush_interval, self.max_rows = flush_rows, flush_interval, max_rows
        self.files = CollectedRoot(root)
        self.metrics: CollectorMetrics = CollectorMetrics(endpoint, lambda: self._rows)
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._rows = 0  # request rows not yet written (buffered or tabulated): what max_rows bounds
        self._fresh = 0  # rows buffered since the last tabulation (the thread is woken at _CHUNK)
        self._wake_rows = min(flush_rows, _CHUNK)
        self._inline_rows = min(flush_rows, _INLINE)
        self._pending: list[tuple[int, pa.Table]] = []  # tabulated, not yet written
        self._pending_rows = 0
        self._pending_lock = threading.Lock()  # the recording thread tabulates too (see record)
        self._forced = False  # flush() asks for a write now
        self._failing = False  # the last write failed: retry at the interval, not at every chunk
        self._feedback: list[_Feedback] = []
        self._woken = False
        self._closed = False
        self._started = self._done = 0  # flushes begun and finished (flush() waits for one begun after it)
        self._counts = {"rows": 0, "dropped": 0, "files": 0, "feedback_rows": 0, "write_errors": 0, "flush_cpu_us": 0}
        self._dropped_since_warning = 0
        self._warned_at = 0.0
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"mloop-collector-{endpoint}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Collector({self.files.uri!r}, endpoint={self.endpoint!r})"

    # -- recording (hot path) ------------------------------------------------------------------------------

    def record(
        self, request_id: str, model: str, data: Any, result: Mapping[str, Any] | None, latency_s: float,
        status: int = 200, role: str = "live", *, columns: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        """Buffer one answered request: ``data`` is what was scored (2-D array or DataFrame; ``None`` for a
        failed request), ``result`` the answer dict (``predictions`` or ``probabilities``), ``columns`` the
        input names of a bare matrix (signature order)."""
        if data is None:
            rows, outputs, proba = 1, None, False
        else:
            rows = data.shape[0]
            outputs = None if result is None else result.get("predictions")
            proba = outputs is None and result is not None and "probabilities" in result
            if proba:
                outputs = result["probabilities"]  # type: ignore[index]
        if columns is not None and columns.__class__ is not tuple:
            columns = tuple(columns)
        record = (
            time.time_ns() // 1000,
            request_id,
            model,
            role,
            data,
            columns,
            outputs,
            proba,
            latency_s * 1e3,
            status,
            rows,
        )  # a plain tuple (see Record): untracked by the garbage collector
        with self._lock:  # the common case inline (this runs on the event loop for every request)
            if not self._closed and self._rows + rows <= self.max_rows:
                self._records.append(record)
                self._rows += rows
                self._fresh += rows
                if self._fresh < self._inline_rows:
                    return
                wake = None  # tabulate here, below: no second thread contending for the GIL
            else:
                self._counts["dropped"] += rows
                wake = False
        if wake is None:
            self._tabulate(inline=True)
            if self._pending_rows >= self.flush_rows:  # a part's worth: the flush thread writes it
                with self._lock:
                    wake = not self._woken
                    self._woken = True
                if wake:
                    self._wake.set()
        elif wake:
            self._wake.set()
        else:
            self._on_drop(rows)

    def record_rows(
        self, ids: Sequence[str], model: str, data: Any, outputs: Any, latency_s: float, role: str = "live",
        *, columns: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        """Buffer a streaming micro-batch: one id per row (the event id; each row is ``row`` 0 of its own
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
        self._add(make_record(time.time_ns() // 1000, ids, model, role, data, columns, outputs, proba,
                              latency_s * 1e3, 200, rows))  # fmt: skip

    def _add(self, record: Record) -> None:
        n = record[ROWS]
        with self._lock:
            if self._closed or self._rows + n > self.max_rows:
                self._counts["dropped"] += n
                dropped = True
            else:
                self._records.append(record)
                self._rows += n
                self._fresh += n
                dropped = False
                wake = self._fresh >= self._wake_rows and not self._woken
                if wake:
                    self._woken = True
        if dropped:
            self._on_drop(n)
        elif wake:
            self._wake.set()

    def _on_drop(self, n: int) -> None:
        self.metrics.dropped(n)
        self._dropped_since_warning += n
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            _log.warning(
                "collector %r dropped %d row(s) since the last warning: its buffer (max_rows=%d) is full or "
                "closed. The store may be slow or unreachable; raise max_rows or lower flush_interval.",
                self.endpoint, self._dropped_since_warning, self.max_rows,
            )  # fmt: skip
            self._warned_at, self._dropped_since_warning = now, 0

    def record_feedback(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Buffer ground truth: items ``{"request_id", "ground_truth", "row"?}`` (a list ``ground_truth`` without
        ``row`` is one value per row of the request). Returns the rows buffered; raises
        :class:`~mloop.errors.InvalidInput` naming a bad field, or :class:`Overloaded` when the buffer is full."""
        ids, rows, values = feedback_rows(items)
        now = time.time_ns() // 1000
        with self._lock:
            pending = len(self._feedback)
            if self._closed or pending + len(ids) > self.max_rows:
                raise Overloaded(f"The feedback buffer of endpoint {self.endpoint!r} is full ({pending} rows "
                                 "waiting to be written); retry shortly.", retry_after=1)  # fmt: skip
            self._feedback.extend(zip(ids, rows, values, [now] * len(ids), strict=True))
        return len(ids)

    # -- flushing (background thread) ----------------------------------------------------------------------

    def _run(self) -> None:
        self._warm_up()
        deadline = time.monotonic() + self.flush_interval
        while True:
            self._wake.wait(max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            closing = self._closed
            with self._flushed:
                write = closing or self._forced or time.monotonic() >= deadline
                if write:
                    self._started += 1
                    self._forced = False
            cpu = time.thread_time()
            try:
                self._tabulate()  # every _CHUNK records, while they are still in the cache
                if write or (self._pending_rows >= self.flush_rows and not self._failing):
                    self._write_pending()
                    deadline = time.monotonic() + self.flush_interval
            except Exception:  # never let the thread die: the next flush retries
                _log.exception("collector %r: flush failed", self.endpoint)
            self._counts["flush_cpu_us"] += int((time.thread_time() - cpu) * 1e6)
            if write:
                with self._flushed:
                    self._done += 1
                    self._flushed.notify_all()
            if closing:
                if self._pending_rows:  # the store still refuses: nothing more can be done for them
                    self._count_dropped(self._pending_rows)
                return

    def _warm_up(self) -> None:
        """Import pyarrow and run its first-use set-up now, not in the middle of the first flush under load."""
        import io

        import numpy as np
        import pyarrow.parquet as pq

        record = make_record(0, "warm-up", "model:m/1", "live", np.zeros((1, 1)), None, np.zeros(1), False, 0, 200, 1)
        pq.write_table(requests_table(self.endpoint, [record]), io.BytesIO(), compression="snappy")

    def _tabulate(self, inline: bool = False) -> None:
        """Turn the buffered records into Arrow tables (kept until the next write), chunk by chunk."""
        with self._lock:
            records, self._records = self._records, []
            self._fresh = 0
            if not inline:  # the flush thread is running now: it may be woken again
                self._woken = False
        while records:  # each chunk's records are freed once they are in Arrow
            chunk = records[:_CHUNK]
            del records[:_CHUNK]
            n = sum(r[ROWS] for r in chunk)
            try:
                table = requests_table(self.endpoint, chunk)
            except Exception:
                _log.exception("collector %r could not tabulate %d row(s); they are dropped", self.endpoint, n)
                self._count_dropped(n)
                self._release(n)
                continue
            del chunk
            first, last = hour_of(table.column("ts")[0].value), hour_of(table.column("ts")[-1].value)
            with self._pending_lock:
                for hour, part in [(first, table)] if first == last else split_by_hour(table):
                    self._pending.append((hour, part))
                self._pending_rows += n

    def _write_pending(self) -> None:
        """Write the tables tabulated since the last write (one part per hour), then the feedback."""
        by_hour: dict[int, list[pa.Table]] = {}
        with self._pending_lock:
            taken, self._pending = self._pending, []
        for hour, table in taken:
            by_hour.setdefault(hour, []).append(table)
        for hour, tables in sorted(by_hour.items()):
            table = concat_unified(tables)
            try:
                self.files.write_table(REQUESTS, self.endpoint, hour, table)
            except Exception as exc:  # kept (and counted in the bound) for the next write
                self._write_failed(exc, table.num_rows)
                self._failing = True
                continue
            self._failing = False
            taken = [(h, t) for h, t in taken if h != hour]
            with self._pending_lock:
                self._pending_rows -= table.num_rows
            self._release(table.num_rows)
            self._counts["rows"] += table.num_rows
            self._counts["files"] += 1
            self.metrics.written(table.num_rows, REQUESTS)
        if taken:  # hours whose write failed: kept for the next write
            with self._pending_lock:
                self._pending[:0] = taken
        with self._lock:
            feedback, self._feedback = self._feedback, []
        if feedback:
            self._write_feedback(feedback)

    def _release(self, rows: int) -> None:
        with self._lock:
            self._rows -= rows

    def _write_feedback(self, feedback: list[_Feedback]) -> None:
        by_hour: dict[int, list[_Feedback]] = {}
        for item in feedback:
            by_hour.setdefault(hour_of(item[3]), []).append(item)
        for hour, items in sorted(by_hour.items()):
            ids, rows, values, ts = (list(col) for col in zip(*items, strict=True))
            try:
                self.files.write_table(FEEDBACK, self.endpoint, hour, feedback_table(self.endpoint, ids, rows,
                                                                                     values, ts))  # fmt: skip
            except Exception as exc:
                self._write_failed(exc, len(items))
                with self._lock:  # kept whatever the bound: its sender was told it was accepted
                    self._feedback[:0] = items
                continue
            self._counts["feedback_rows"] += len(items)
            self._counts["files"] += 1
            self.metrics.written(len(items), FEEDBACK)

    def _write_failed(self, exc: Exception, rows: int) -> None:
        self._counts["write_errors"] += 1
        self.metrics.write_error()
        _log.warning("collector %r could not write %d row(s) to %s: %s: %s; retrying at the next flush",
                     self.endpoint, rows, self.files.uri, type(exc).__name__, exc)  # fmt: skip

    def _count_dropped(self, rows: int) -> None:
        with self._lock:
            self._counts["dropped"] += rows
        self._on_drop(rows)

    # -- control -------------------------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything buffered now and wait until it is written (tests, checkpoints)."""
        with self._flushed:
            target = self._started + 1
            self._forced = True
            self._wake.set()
            self._flushed.wait_for(lambda: self._done >= target or not self._thread.is_alive(), timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Stop recording, write everything buffered and stop the thread (graceful shutdown loses nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("collector %r did not finish writing within %g s", self.endpoint, timeout)

    def stats(self) -> dict[str, int]:
        """Rows written, rows dropped, files written, feedback rows written, write errors, the flush thread's CPU
        time (µs), rows buffered."""
        with self._lock:
            return {**self._counts, "buffered": self._rows}

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
