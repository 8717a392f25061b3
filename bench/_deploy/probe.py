"""The engine's endpoint server with bench-only instruments, to say where a shadow's cost goes.

    python bench/_deploy/probe.py ENDPOINT [--replay]    (MLOOP_URI, MLOOP_ARTIFACT_URI: the workspace)

It serves the endpoint exactly as ``python -m mloop.deployments.worker http ENDPOINT`` does with one worker
(``EndpointApp(...).load()``, which ends with ``gc.freeze()``, then ``run_one`` on the stored spec's port), and
adds, to the live version's ``/metrics`` (each sample gets that version's ``model`` label when merged):

* ``bench_drain_rows``: a histogram of the rows of each bulk batch of :class:`mloop.deployments.shadow.ShadowDrain`
  (the engine counts the shadow's requests but not its batches);
* ``bench_drain_cpu_seconds``: the thread CPU time spent in ``ShadowDrain._drain`` (stack, one ``predict``, the
  per-request metrics and collector records), so the shadow's CPU a request splits into the drain and the rest
  (the deque append, the router's second draw, the scope's parsed input kept alive);
* ``bench_gc_pause_seconds{generation}``: every cyclic collection's wall time (``gc.callbacks``), so full
  collections that stop the event loop show up with their count and length.

``--replay`` turns the bulk drain off (``same_input`` answers False): every mirrored request is replayed through
the shadow's whole scoring app as before 4c965c4, with the engine's ``gc.freeze()`` kept, so one run compares
both shadow designs on the same engine.

``--tuned``: a bench-only sketch of the drain changes RESULTS §19 proposes (:func:`tune`): a 20 ms gather cut
short by an event once ``max_queue // 2`` requests or 128 rows are queued, batches of at most 128 rows, and the
shadow's request counter and latency histogram updated once a batch instead of once a request.

The instruments cost a few µs a batch and ≈ 1 µs a collection; the ``shadow-probe`` / ``shadow`` pair in the
report shows what they add.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from typing import Any

__all__ = ["instrument", "tune"]


def instrument(app: Any, live_ref: str) -> None:
    """Register the instruments above in the registry of ``app``'s live version ``live_ref``."""
    from prometheus_client import Counter, Histogram

    from mloop.deployments import shadow

    registry = app.table.apps[live_ref].state.metrics.registry
    rows_hist = Histogram("bench_drain_rows", "Rows per bulk shadow batch.",
                          buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=registry)  # fmt: skip
    drain_cpu = Counter("bench_drain_cpu_seconds", "Thread CPU seconds in ShadowDrain._drain.", registry=registry)
    pauses = Histogram("bench_gc_pause_seconds", "Wall time of each cyclic garbage collection.", ["generation"],
                       buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5), registry=registry)  # fmt: skip
    original = shadow.ShadowDrain._drain

    def _drain(self: Any) -> None:
        before, t0 = self.rows, time.thread_time()
        original(self)
        drain_cpu.inc(time.thread_time() - t0)
        rows_hist.observe(before - self.rows)

    shadow.ShadowDrain._drain = _drain  # type: ignore[method-assign]
    started: list[float] = [0.0]

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.labels(str(info["generation"])).observe(time.perf_counter() - started[0])

    gc.callbacks.append(_on_gc)


def tune(wait: float = 0.02, max_rows: int = 128) -> type:
    """The engine's ``ShadowDrain`` with the proposed changes (``--tuned`` above)."""
    from collections import Counter as Tally

    from mloop.deployments import shadow
    from mloop.serving.metrics import route_of

    class TunedDrain(shadow.ShadowDrain):
        def __init__(self, state: Any, collector: Any, **kwargs: Any) -> None:
            super().__init__(state, collector, wait=wait)
            self.max_rows = max_rows
            self.full = asyncio.Event()
            self.tally: Tally[int] = Tally()
            self.seconds = 0.0

        def offer(self, request_id: str, data: Any, proba: bool) -> None:
            super().offer(request_id, data, proba)
            if self.rows >= self.max_rows or len(self.queue) >= self.max_queue // 2:
                self.full.set()

        async def _run(self) -> None:
            while True:
                if not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                if self.rows < self.max_rows:
                    self.full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.full.wait(), self.wait)
                self._drain()

        def _drain(self) -> None:
            super()._drain()
            metrics = self.state.metrics
            route = route_of("/predict")
            for status, n in self.tally.items():
                metrics._requests.labels(metrics.model, route, str(status)).inc(n)
            metrics._latency.labels(metrics.model, route).observe(self.seconds)  # one observation a batch
            self.tally.clear()

        def _record(self, item: Any, out: Any, seconds: float, status: int) -> None:
            self.tally[status] += 1
            self.seconds = seconds
            if self.collector is not None:
                metrics, self.state.metrics = self.state.metrics, _NoMetrics()
                try:
                    super()._record(item, out, seconds, status)
                finally:
                    self.state.metrics = metrics

    return TunedDrain


class _NoMetrics:
    def observe(self, path: str, status: int, seconds: float) -> None:
        return None


def main() -> None:
    from mloop.context import Context
    from mloop.deployments import endpoint_app
    from mloop.deployments.worker import _collector
    from mloop.serving.server import run_one

    name, flags = sys.argv[1], set(sys.argv[2:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if "--replay" in flags:
        endpoint_app.same_input = lambda live, shadow: False  # type: ignore[assignment]
    if "--tuned" in flags:
        endpoint_app.ShadowDrain = tune()  # type: ignore[misc]
    with Context() as context:
        spec = dict(context.store.get_endpoint(name).spec)
        app = endpoint_app.EndpointApp(context, name, collector=_collector(context, name, spec))
        app.load()
        assert app.table is not None
        instrument(app, app.table.router.choose(None))
        run_one(app, str(spec.get("host", "127.0.0.1")), int(spec["port"]), "info", False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
