"""Prometheus metrics of one scoring app, served at ``GET /metrics`` (prometheus-client's text format).

Each app has its own registry (no process-wide state), so two apps in one process never mix figures. With
several uvicorn workers, :func:`mloop.serving.server.serve` sets ``PROMETHEUS_MULTIPROC_DIR`` to a private
folder before the workers start, and ``/metrics`` then adds up every worker (prometheus-client's multiprocess
mode), whichever worker answers the scrape.

- ``mloop_requests_total{model, route, status}``: answered requests;
- ``mloop_request_duration_seconds{model, route}``: latency histogram by model version (a canary's analysis
  compares them), from the first byte in to the last byte out;
- ``mloop_batch_rows``: rows per scoring call (1 when requests are scored alone);
- ``mloop_queue_depth``: requests admitted and not yet answered;
- ``mloop_shed_requests_total``: requests answered 503 because the queue was full.

The request collector (:class:`CollectorMetrics`, one per collector, shown on the ``/metrics`` of the apps it
serves): ``mloop_collector_rows_total{endpoint, kind}`` rows written (``requests`` or ``feedback``),
``mloop_collector_dropped_rows_total{endpoint}`` rows dropped because the buffer was full,
``mloop_collector_write_errors_total{endpoint}`` failed writes, ``mloop_collector_buffered_rows{endpoint}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["ROUTES", "CollectorMetrics", "ServerMetrics", "route_of"]

ROUTES = ("predict", "invocations", "v2_infer", "v2", "health", "metrics", "openapi", "other")
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536)


def route_of(path: str) -> str:
    """The bounded route label of a request path (never the raw path: that would make unbounded series)."""
    if path == "/predict":
        return "predict"
    if path == "/invocations":
        return "invocations"
    if path.startswith("/v2"):
        return "v2_infer" if path.endswith("/infer") else "v2"
    if path.startswith("/health"):
        return "health"
    if path == "/metrics":
        return "metrics"
    return "openapi" if path == "/openapi.json" else "other"


class ServerMetrics:
    """The app's metrics; :meth:`observe` is called once per answered request, from the ASGI wrapper."""

    def __init__(self, model: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.model = model
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._requests = Counter("mloop_requests", "Answered requests by model version, route and status.",
                                 ["model", "route", "status"], registry=reg)  # fmt: skip
        self._latency = Histogram("mloop_request_duration_seconds", "Request latency (s) by model version, route.",
                                  ["model", "route"], buckets=_LATENCY_BUCKETS, registry=reg)  # fmt: skip
        self._batch = Histogram("mloop_batch_rows", "Rows per scoring call (several requests when batched).",
                                buckets=_ROW_BUCKETS, registry=reg)  # fmt: skip
        self._depth = Gauge("mloop_queue_depth", "Scoring requests admitted and not yet answered.",
                            registry=reg, multiprocess_mode="livesum")  # fmt: skip
        self._shed = Counter("mloop_shed_requests", "Requests answered 503 because the queue was full.",
                             registry=reg)  # fmt: skip
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        route = route_of(path)
        children = self._children.get((route, status))
        if children is None:  # bind the labelled series once: labels() costs more than inc()
            children = (self._requests.labels(self.model, route, str(status)), self._latency.labels(self.model, route))
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_many(self, path: str, status: int, seconds: float, n: int) -> None:
        """``n`` requests answered together (a shadow's batch): counted ``n`` times, the latency observed once."""
        route = route_of(path)
        children = self._children.get((route, status))
        if children is None:
            children = (self._requests.labels(self.model, route, str(status)), self._latency.labels(self.model, route))
            self._children[(route, status)] = children
        children[0].inc(n)
        children[1].observe(seconds)

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def depth(self, n: int) -> None:
        self._depth.set(n)

    def watch_depth(self, read: Callable[[], int]) -> Callable[[int], None] | None:
        """Read the queue depth at scrape time (nothing per request) where prometheus-client can; otherwise
        (multiprocess mode) return :meth:`depth`, the per-change setter."""
        if self.multiprocess:
            return self.depth
        self._depth.set_function(read)
        return None

    def shed(self) -> None:
        self._shed.inc()

    def render(self, *also: Any) -> tuple[bytes, str]:
        """The exposition body and its content type (every worker's figures in multiprocess mode); ``also``:
        more registries to show (a collector's), which multiprocess mode already adds up with the rest."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return b"".join(generate_latest(r) for r in (self.registry, *also)), CONTENT_TYPE_LATEST


class CollectorMetrics:
    """A request collector's counters (its own registry); called from its flush thread, and on drops."""

    def __init__(self, endpoint: str, buffered: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        rows = Counter("mloop_collector_rows", "Collected rows written to Parquet, by kind (requests, feedback).",
                       ["endpoint", "kind"], registry=reg)  # fmt: skip
        self._rows = {kind: rows.labels(endpoint, kind) for kind in ("requests", "feedback")}
        self._dropped = Counter("mloop_collector_dropped_rows", "Rows the collector dropped: its buffer was full.",
                                ["endpoint"], registry=reg).labels(endpoint)  # fmt: skip
        self._errors = Counter("mloop_collector_write_errors", "Collector writes that failed (retried).",
                               ["endpoint"], registry=reg).labels(endpoint)  # fmt: skip
        self._buffered = Gauge("mloop_collector_buffered_rows", "Rows waiting in the collector's buffer.",
                               ["endpoint"], registry=reg, multiprocess_mode="livesum").labels(endpoint)  # fmt: skip
        self._read = buffered
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._buffered.set_function(buffered)

    def written(self, rows: int, kind: str) -> None:
        self._rows[kind].inc(rows)
        self._buffered.set(self._read())

    def dropped(self, rows: int) -> None:
        self._dropped.inc(rows)

    def write_error(self) -> None:
        self._errors.inc()
