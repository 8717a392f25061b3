"""Adaptive micro-batching with a bounded queue: concurrent requests share one ``predict`` call.

Every scoring request goes through one :class:`Batcher` per app. A request is *admitted* if fewer than
``max_queue`` requests are waiting or being scored; otherwise :class:`~mloop.errors.Overloaded` is raised at
once (the app answers 503 with ``Retry-After``), so the excess is shed in microseconds and the accepted
requests' latency stays bounded by ``max_queue`` instead of growing with the offered load.

One task takes work from the queue. Requests of a row-wise model (scikit-learn) that ask for the same output
are *combined*: their inputs are stacked (2-D arrays) or concatenated (DataFrames), scored with one call, and
the answer is split back by row counts. The wait is adaptive and never longer than ``max_wait``: after the
first request the task takes what is already queued, yields to the event loop while admitted requests are
still being read, and then waits only if fewer requests are in the batch than were in the server at once
lately (the peak of the last half second or so): with N clients that send again as soon as they are answered,
it waits for the ones just answered, so batches hold about N requests instead of the two or three that arrive
in one read of the sockets. A lone client never waits. A combined batch stops at
``max_rows`` rows. If the combined call fails (one request's value refused by the model), every request of the
batch is scored alone, so each gets its own answer or error. Other work (a ``score.py`` model, the V2 routes)
goes through the same queue one request at a time, under the same bound. Batches of more than ``inline_rows``
rows are scored in a worker thread so the event loop keeps reading and shedding meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidInput, Overloaded

__all__ = ["BatchConfig", "Batcher", "combinable"]

ROW_WISE_FLAVORS = frozenset({"sklearn"})  # flavors whose predict(X) answers row i from row i alone


@dataclass(frozen=True)
class BatchConfig:
    """``max_rows`` per combined call (1 turns combining off), ``max_wait`` seconds to gather, ``max_queue``
    requests admitted at once, ``inline_rows``: larger batches are scored in a worker thread."""

    max_rows: int = 64
    max_wait: float = 0.002
    max_queue: int = 256
    inline_rows: int = 64

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise InvalidInput(f"The batch size must be at least 1 row, got {self.max_rows} (1 turns batching off).")
        if not 0 <= self.max_wait <= 1:
            raise InvalidInput(f"The batch wait must be between 0 and 1000 ms, got {self.max_wait * 1000:g} ms.")
        if self.max_queue < 1:
            raise InvalidInput(f"The queue bound must be at least 1 request, got {self.max_queue}.")


def combinable(flavor: str) -> bool:
    """Whether requests to a model of this flavor may be scored together in one call."""
    return flavor in ROW_WISE_FLAVORS


@dataclass
class _Item:
    fn: Callable[[Any], Any]  # what scores ``data`` (predict or predict_proba), or a whole unit of work
    data: Any
    rows: int
    key: str | None  # items with the same key may be combined; None: scored alone
    heavy: bool  # scored in a worker thread whatever its row count
    future: asyncio.Future[Any] = field(repr=False)


class Batcher:
    """The queue and the task that drains it; ``on_batch(rows)``, ``on_depth(n)`` and ``on_shed()`` feed the
    metrics."""

    def __init__(
        self, config: BatchConfig, *, on_batch: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None, on_shed: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self._on_batch = on_batch or (lambda rows: None)
        self.on_depth = on_depth  # told every change of ``pending`` (None: nobody asks per change)
        self._on_shed = on_shed or (lambda: None)
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pending = 0  # admitted and not yet answered
        self.arriving = 0  # reading their body: likely to join the next batch
        self._peak = self._last_peak = 0  # most requests in at once, this window and the last
        self._window_start = 0.0

    def admit(self) -> None:
        """Count one request in, or raise :class:`Overloaded` when ``max_queue`` are already in."""
        if self.pending >= self.config.max_queue:
            self._on_shed()
            raise Overloaded(
                f"The server is at capacity ({self.pending} requests queued or scoring, the bound is "
                f"{self.config.max_queue}); retry shortly or add workers/replicas.",
                retry_after=1,
            )
        self.pending += 1
        self.arriving += 1
        self._peak = max(self._peak, self.pending)
        if self.on_depth is not None:
            self.on_depth(self.pending)

    def release(self) -> None:
        """Count one admitted request out (always called once per :meth:`admit`, answered or not)."""
        self.pending -= 1
        if self.on_depth is not None:
            self.on_depth(self.pending)

    def arrived(self) -> None:
        """The admitted request has been read (queued next, or refused as bad input)."""
        self.arriving -= 1

    async def score(
        self, fn: Callable[[Any], Any], data: Any, rows: int, key: str | None, *, heavy: bool = False
    ) -> Any:
        """``fn(data)``, possibly inside a combined call with other requests of the same ``key``; ``heavy``
        work goes to a worker thread whatever its row count."""
        queue = self._ensure_running()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Item(fn, data, rows, key, heavy, future))
        return await future

    async def close(self) -> None:
        """Stop the task (queued requests were answered first by the server's drain)."""
        task, self._task, self._queue = self._task, None, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_running(self) -> asyncio.Queue[_Item]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.done() or self._loop is not loop:
            self._queue, self._loop = asyncio.Queue(), loop
            self._task = loop.create_task(self._drain(self._queue), name="mloop-batcher")
        return self._queue

    async def _drain(self, queue: asyncio.Queue[_Item]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await queue.get()
            batch = [first]
            if first.key is not None and self.config.max_rows > 1:
                await self._gather(queue, batch, loop.time() + self.config.max_wait)
            await self._run(batch)

    def _expected(self, now: float) -> int:
        """How many requests a batch may expect: the most that were in at once lately (windows of 0.5 s)."""
        if now - self._window_start > 0.5:
            self._last_peak, self._peak, self._window_start = self._peak, self.pending, now
        return max(self._peak, self._last_peak)

    async def _gather(self, queue: asyncio.Queue[_Item], batch: list[_Item], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        rows, held = batch[0].rows, list[_Item]()
        expected = self._expected(loop.time())
        while rows < self.config.max_rows:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                if self.arriving > 0:
                    await asyncio.sleep(0)  # let the requests being read reach the queue
                    continue
                if len(batch) + len(held) >= expected:
                    break
                try:  # the clients just answered are likely to send again: wait for them, within the bound
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            if item.key == batch[0].key and rows + item.rows <= self.config.max_rows:
                batch.append(item)
                rows += item.rows
            else:
                held.append(item)
                if item.key == batch[0].key:
                    break  # the batch is full
        for item in held:  # scored next, in arrival order among themselves
            queue.put_nowait(item)

    async def _run(self, batch: list[_Item]) -> None:
        rows = sum(item.rows for item in batch)
        self._on_batch(rows)
        if rows > self.config.inline_rows or any(item.heavy for item in batch):
            await asyncio.to_thread(_settle, batch, True)
        else:
            _settle(batch, False)


def _settle(batch: list[_Item], threaded: bool) -> None:
    """Score the batch and set each future: one call for several items, each alone when that fails."""
    if len(batch) > 1:
        try:
            parts = _split(batch[0].fn(_combine([item.data for item in batch])), [item.rows for item in batch])
        except Exception:  # one request's value may spoil the batch: score each alone below
            parts = None
        if parts is not None:
            for item, part in zip(batch, parts, strict=True):
                _resolve(item, part, None, threaded)
            return
    for item in batch:
        try:
            result = item.fn(item.data)
        except BaseException as exc:  # handed to the request that caused it
            _resolve(item, None, exc, threaded)
        else:
            _resolve(item, result, None, threaded)


def _resolve(item: _Item, result: Any, exc: BaseException | None, threaded: bool) -> None:
    future = item.future

    def done() -> None:
        if future.done():  # the client went away and the request was cancelled
            return
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)

    if threaded:
        future.get_loop().call_soon_threadsafe(done)
    else:
        done()


def _combine(parts: list[Any]) -> Any:
    import numpy as np

    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, axis=0)
    import pandas as pd

    return pd.concat(parts, ignore_index=True, copy=False)


def _split(result: Any, sizes: list[int]) -> list[Any] | None:
    """The combined answer cut back into one part per request, or ``None`` if it is not row-aligned."""
    import numpy as np

    arr = np.asarray(result)
    if arr.ndim == 0 or arr.shape[0] != sum(sizes):
        return None
    parts, start = [], 0
    for size in sizes:
        parts.append(arr[start : start + size])
        start += size
    return parts
