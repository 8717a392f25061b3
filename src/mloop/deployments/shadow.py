"""Shadow traffic scored in bulk: a mirrored request's parsed input goes to a queue per shadow version, and one
task drains it with one ``predict`` call per batch, after the live answers were sent.

Replaying each mirrored request through the shadow's scoring app (a task, an app call, a parse and a batcher
future per request) cost 60-70 µs of CPU a request on the benchmark's model, several times the shadow's share
of one combined model call (bench/RESULTS.md §19). Here the live request's parsed input (left in the ASGI scope
by the scoring handler) is appended to a bounded deque; the drain wakes, waits ``wait`` seconds unless a full
batch is queued (nobody waits for a shadow's answer, and the pause lets live requests run first), stacks up to
``max_rows`` rows, scores them in one call and records each request's answer with the collector (role
``shadow``, the live request's id, its share of the batch's scoring time as latency) and in the shadow's
metrics (each request counted under its route; the latency histogram observes once a batch: the batch's scoring
time). The pause ends early once half the queue bound or a full batch is waiting. Past ``max_queue`` (4x the
live bound) queued requests a mirrored request is shed and counted (``mloop_shed_requests_total``): a shadow
never slows live traffic down by queueing. A batch the model refuses is scored request by request, so each gets
its own answer or error.

Used when the shadow reads the same input as the live version (the same signature columns and input path);
otherwise the endpoint replays the body to the shadow's app (:meth:`EndpointApp._mirror`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.serving.app import ServerState

__all__ = ["ShadowDrain", "same_input"]

_log = logging.getLogger("mloop.deployments")


def same_input(live: ServerState, shadow: ServerState) -> bool:
    """Whether the shadow takes the live version's parsed input as it is."""
    a, b = live.schema, shadow.schema
    if a is None or b is None or a.columns is None or b.columns is None or shadow.calls is None:
        return False
    return (a.names, a.numeric_matrix, a.named_matrix, a.frames) == (b.names, b.numeric_matrix, b.named_matrix,
                                                                    b.frames)  # fmt: skip


def _combine(parts: list[Any]) -> Any:
    import numpy as np

    if isinstance(parts[0], np.ndarray):
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    import pandas as pd

    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True, copy=False)


def _plain(values: Any) -> Any:
    import numpy as np

    return np.asarray(values)


class ShadowDrain:
    """The queue and the draining task of one shadow version (``state``), recording into ``collector``."""

    def __init__(self, state: ServerState, collector: Any, *, wait: float = 0.005) -> None:
        self.state = state
        self.collector = collector
        self.wait = wait
        config = state.batcher.config
        self.max_queue = 4 * config.max_queue  # its own bound: nobody waits on it, so it may hold more
        self.max_rows = max(config.max_rows, 256)
        self.wake_at = min(self.max_rows, self.max_queue // 2)  # requests queued that end the pause early
        self.queue: deque[tuple[str, Any, bool, int, str]] = deque()
        self.full = asyncio.Event()
        self.rows = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def offer(self, request_id: str, data: Any, proba: bool, path: str = "/predict") -> None:
        """Queue one mirrored request (shed and counted past the bound; never blocks)."""
        if len(self.queue) >= self.max_queue:
            self.state.metrics.shed()
            return
        rows = int(data.shape[0])
        self.queue.append((request_id, data, proba, rows, path))
        self.rows += rows
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())
        self.wake.set()
        if self.rows >= self.max_rows or len(self.queue) >= self.wake_at:
            self.full.set()

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
            if self.rows < self.max_rows and len(self.queue) < self.wake_at and self.wait > 0:
                self.full.clear()
                with contextlib.suppress(TimeoutError):  # gather more, and let live requests go first
                    await asyncio.wait_for(self.full.wait(), self.wait)
            self._drain()

    def _drain(self) -> None:
        batch: list[tuple[str, Any, bool, int, str]] = []
        rows = 0
        proba = self.queue[0][2]
        while self.queue and rows < self.max_rows and self.queue[0][2] == proba:
            item = self.queue.popleft()
            batch.append(item)
            rows += item[3]
        self.rows -= rows
        calls = self.state.calls
        fn = None if calls is None else (calls.proba if proba else calls.predict)
        if fn is None:
            for item in batch:
                self._record(item, None, 0.0, 422)
            return
        started = time.perf_counter()
        try:
            out = _plain(fn(_combine([item[1] for item in batch])))
            if out.ndim == 0 or out.shape[0] != rows:
                raise ValueError("the answer is not one row per input row")
        except Exception:
            self._one_by_one(batch, fn)
            return
        seconds = time.perf_counter() - started
        metrics = self.state.metrics
        metrics.batch(rows)
        paths: dict[str, int] = {}
        for item in batch:
            paths[item[4]] = paths.get(item[4], 0) + 1
        for path, n in paths.items():  # counted per request, the latency once a batch (its scoring time)
            metrics.observe_many(path, 200, seconds, n)
        if self.collector is None:
            return
        start, each = 0, seconds / len(batch)
        for item in batch:
            self._collect(item, out[start : start + item[3]], each, 200)
            start += item[3]

    def _one_by_one(self, batch: list[tuple[str, Any, bool, int, str]], fn: Any) -> None:
        for item in batch:
            started = time.perf_counter()
            try:
                out = _plain(fn(item[1]))
            except Exception:
                _log.debug("shadow %s refused request %s", self.state.version_ref, item[0], exc_info=True)
                self._record(item, None, time.perf_counter() - started, 500)
                continue
            self._record(item, out, time.perf_counter() - started, 200)

    def _record(self, item: tuple[str, Any, bool, int, str], out: Any, seconds: float, status: int) -> None:
        self.state.metrics.observe(item[4], status, seconds)
        if self.collector is not None:
            self._collect(item, out, seconds, status)

    def _collect(self, item: tuple[str, Any, bool, int, str], out: Any, seconds: float, status: int) -> None:
        request_id, data, proba, _, _ = item
        assert self.collector is not None
        if out is None:
            self.collector.record(request_id, self.state.version_ref, None, None, seconds, status, "shadow")
            return
        result: dict[str, Any] = {"probabilities" if proba else "predictions": out}
        if proba and self.state.classes is not None:
            result["classes"] = self.state.classes
        schema = self.state.schema
        self.collector.record(request_id, self.state.version_ref, data, result, seconds, status, "shadow",
                              columns=(schema.names or None) if schema else None)  # fmt: skip

    async def close(self) -> None:
        if self.task is not None:
            if self.queue:
                self._drain_all()
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def _drain_all(self) -> None:
        while self.queue:
            self._drain()
