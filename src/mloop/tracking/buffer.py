"""The run buffer: per-call logging costs a list append; values reach the store in batches.

Metrics, params and tags are buffered together and written in one transaction when the buffer holds
``max_items`` metrics, when the client's :class:`Flusher` thread passes (every ``interval_s``), on
``flush()``, and — through :meth:`MetricBuffer.take` — in the same transaction that ends the run. A failed
write keeps the values buffered and raises in the caller's thread, at the next log call or at the end.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence

from mloop.entities import Metric
from mloop.errors import MloopError

__all__ = ["Batch", "Flusher", "MetricBuffer"]

Batch = tuple[list[Metric], dict[str, str], dict[str, str]]
Writer = Callable[[Sequence[Metric], Mapping[str, str], Mapping[str, str]], None]


class MetricBuffer:
    def __init__(self, write: Writer, *, max_items: int = 5000, flusher: Flusher | None = None) -> None:
        self._write = write
        self.max_items = max_items
        self._metrics: list[Metric] = []
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._lock = threading.Lock()  # guards the pending values
        self._write_lock = threading.Lock()  # one batch write at a time
        self._error: BaseException | None = None
        self._flusher = flusher
        self._registered = False

    # -- adding ------------------------------------------------------------------------------------------
    def add(self, metric: Metric) -> None:
        with self._lock:
            self._metrics.append(metric)
            full = len(self._metrics) >= self.max_items
        self._after_add(full)

    def extend(self, metrics: Sequence[Metric]) -> None:
        with self._lock:
            self._metrics.extend(metrics)
            full = len(self._metrics) >= self.max_items
        self._after_add(full)

    def add_params(self, params: Mapping[str, str]) -> None:
        with self._lock:
            self._params.update(params)
        self._after_add(False)

    def add_tags(self, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._tags.update(tags)
        self._after_add(False)

    def _after_add(self, full: bool) -> None:
        if self._error is not None:
            self._retry_after_background_failure()
        elif full:
            self.flush()
        elif not self._registered and self._flusher is not None:
            self._registered = True
            self._flusher.register(self)

    def __len__(self) -> int:
        return len(self._metrics)

    @property
    def pending(self) -> bool:
        return bool(self._metrics or self._params or self._tags)

    # -- writing -----------------------------------------------------------------------------------------
    def take(self) -> Batch:
        """Remove and return everything pending (for a caller that writes it itself, e.g. ending the run)."""
        with self._lock:
            batch = (self._metrics, self._params, self._tags)
            self._metrics, self._params, self._tags = [], {}, {}
        return batch

    def restore(self, batch: Batch) -> None:
        """Put back a batch whose write failed, ahead of anything logged since."""
        metrics, params, tags = batch
        with self._lock:
            self._metrics[:0] = metrics
            self._params = {**params, **self._params}
            self._tags = {**tags, **self._tags}

    def flush(self) -> int:
        """Write everything pending in one transaction; returns how many metric values were written."""
        with self._write_lock:
            batch = self.take()
            if not any(batch):
                return 0
            try:
                self._write(*batch)
            except BaseException:
                self.restore(batch)  # nothing is lost: a later flush (or the end of the run) retries
                raise
            return len(batch[0])

    def close(self) -> None:
        """Stop background flushing (the owner writes what is left, see :meth:`take`)."""
        if self._flusher is not None and self._registered:
            self._flusher.unregister(self)
        self._error = None

    def _retry_after_background_failure(self) -> None:
        """The flusher thread failed: retry here, and raise in the caller if it fails again."""
        error, self._error = self._error, None
        try:
            self.flush()
        except BaseException as exc:
            raise MloopError(
                f"Writing buffered values failed: {exc} (first failure: {error}). "
                "The values are still buffered; they are written at the next flush or when the run ends."
            ) from exc


class Flusher:
    """One background thread per client that flushes every registered buffer every ``interval_s``."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self._buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def register(self, buffer: MetricBuffer) -> None:
        with self._lock:
            self._buffers.add(buffer)
            if self._thread is None and self.interval_s > 0:
                self._thread = threading.Thread(target=self._run, name="mloop-flusher", daemon=True)
                self._thread.start()

    def unregister(self, buffer: MetricBuffer) -> None:
        with self._lock:
            self._buffers.discard(buffer)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _is_stopped(self) -> bool:
        return self._stopped

    def _run(self) -> None:
        while not self._is_stopped():
            self._wake.wait(self.interval_s)
            with self._lock:
                buffers = list(self._buffers)
            for buffer in buffers:
                if self._is_stopped():
                    return
                try:
                    if buffer.pending:
                        buffer.flush()
                except Exception as exc:  # surfaced in the caller's thread at its next call
                    buffer._error = exc
