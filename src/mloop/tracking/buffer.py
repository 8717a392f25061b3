"""The buffered metric writer: per-call logging costs a list append; values reach the store in batches.

A batch is written (one transaction) when it reaches ``max_items``, when ``max_delay_s`` has passed since
the oldest buffered value (checked by a background flusher thread), and always when the run ends. A failed
write keeps the values buffered and raises in the caller's thread, at the next log call or at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from mloop.entities import Metric
from mloop.errors import MloopError

__all__ = ["MetricBuffer"]


class MetricBuffer:
    def __init__(
        self,
        write: Callable[[Sequence[Metric]], None],
        *,
        max_items: int = 5000,
        max_delay_s: float = 2.0,
    ) -> None:
        self._write = write
        self.max_items = max_items
        self.max_delay_s = max_delay_s
        self._items: list[Metric] = []
        self._lock = threading.Lock()  # guards _items
        self._write_lock = threading.Lock()  # one batch write at a time
        self._error: BaseException | None = None
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, metric: Metric) -> None:
        with self._lock:
            self._items.append(metric)
            full = len(self._items) >= self.max_items
        self._after_add(full)

    def extend(self, metrics: Sequence[Metric]) -> None:
        with self._lock:
            self._items.extend(metrics)
            full = len(self._items) >= self.max_items
        self._after_add(full)

    def _after_add(self, full: bool) -> None:
        if self._error is not None:
            self._retry_after_background_failure()
        elif full:
            self.flush()
        elif self._thread is None and self.max_delay_s > 0:
            self._start_thread()

    def __len__(self) -> int:
        return len(self._items)

    def flush(self) -> int:
        """Write everything buffered; returns how many values were written."""
        with self._write_lock:
            with self._lock:
                batch, self._items = self._items, []
            if not batch:
                return 0
            try:
                self._write(batch)
            except BaseException:
                with self._lock:  # keep them: nothing is lost, a later flush retries
                    self._items[:0] = batch
                raise
            return len(batch)

    def close(self) -> None:
        """Stop the flusher and write what is left (raises if that fails)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._error = None
        self.flush()

    def _retry_after_background_failure(self) -> None:
        """The flusher thread failed: retry here, and raise in the caller if it fails again."""
        error, self._error = self._error, None
        try:
            self.flush()
        except BaseException as exc:
            raise MloopError(
                f"Writing buffered metrics failed: {exc} (first failure: {error}). "
                "The values are still buffered; they are written at the next flush or when the run ends."
            ) from exc

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mloop-metric-flusher", daemon=True)
        self._thread.start()

    def _stopping(self) -> bool:
        return self._closed

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.max_delay_s)
            if self._stopping():  # set by close() in another thread
                return
            try:
                if self._items:
                    self.flush()
            except Exception as exc:  # surfaced in the caller's thread at the next call
                self._error = exc
