"""The serving process of an endpoint, started by its supervisor: ``python -m mloop.deployments.worker http|stream
NAME`` (the workspace comes from ``MLOOP_URI`` / ``MLOOP_ARTIFACT_URI``).

``http`` serves the :class:`~mloop.deployments.endpoint_app.EndpointApp` under uvicorn on the spec's host and
port (``workers`` processes share the port; their ``/metrics`` add up through prometheus-client's
multiprocess mode). ``stream`` consumes the spec's stream (:func:`mloop.deployments.streaming.run_stream`) with
a router that follows the stored spec (polled every half second). Both collect every scored request when the
spec's ``collect.enabled`` is true, and flush the collector on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.deployments.endpoint_app import EndpointApp
    from mloop.deployments.router import Router
    from mloop.serving.collector import Collector

__all__ = ["app_from_env", "main"]

_ENDPOINT = "MLOOP_ENDPOINT"
_log = logging.getLogger("mloop.deployments")


def _collector(context: Context, name: str, spec: dict[str, Any]) -> Collector | None:
    options = dict(spec.get("collect") or {})
    if not options.pop("enabled", True):
        return None
    from mloop.serving.collector import collector_for

    return collector_for(context, name, **options)


def app_from_env() -> EndpointApp:
    """The app a uvicorn worker builds (``mloop.deployments.worker:app_from_env``, factory)."""
    from mloop.context import Context
    from mloop.deployments.endpoint_app import EndpointApp

    name = os.environ.get(_ENDPOINT)
    if not name:
        raise InvalidInput(f"{_ENDPOINT} is not set; endpoints are started by `mloop deploy create|start`.")
    context = Context()
    spec = dict(context.store.get_endpoint(name).spec)
    return EndpointApp(context, name, collector=_collector(context, name, spec))


def serve_http(context: Context, name: str) -> None:
    from mloop.deployments.endpoint_app import EndpointApp
    from mloop.serving.server import run_one, run_workers

    spec = dict(context.store.get_endpoint(name).spec)
    host, port, workers = str(spec.get("host", "127.0.0.1")), int(spec["port"]), int(spec.get("workers", 1))
    if workers == 1:
        app = EndpointApp(context, name, collector=_collector(context, name, spec))
        app.load()  # verified loads before listening: a bad version stops here, named in the log
        run_one(app, host, port, "info", False)  # type: ignore[arg-type]
        return
    run_workers("mloop.deployments.worker:app_from_env", {_ENDPOINT: name}, host, port, workers, "info", False)


class _FollowedRouter:
    """The router of the stored spec, refreshed every ``interval`` seconds by a background thread."""

    def __init__(self, context: Context, name: str, stop: threading.Event, interval: float = 0.5) -> None:
        from mloop.deployments.spec import router_of

        self.context, self.name, self.stop, self.interval = context, name, stop, interval
        endpoint = context.store.get_endpoint(name)
        self.generation, self.router = endpoint.generation, router_of(endpoint.spec)
        threading.Thread(target=self._poll, name=f"mloop-router-{name}", daemon=True).start()

    def _poll(self) -> None:
        from mloop.deployments.spec import router_of

        while not self.stop.wait(self.interval):
            try:
                endpoint = self.context.store.get_endpoint(self.name)
                if endpoint.generation != self.generation:
                    self.router, self.generation = router_of(endpoint.spec), endpoint.generation
            except Exception:  # keep the last router; say why
                _log.exception("endpoint %s: could not read its spec", self.name)

    def __call__(self) -> Router:
        return self.router


def serve_stream(context: Context, name: str) -> None:
    """Consume the endpoint's stream; its metrics (and the collector's) are served at
    ``http://HOST:PORT/metrics`` on the spec's port."""
    from prometheus_client import CollectorRegistry, start_http_server

    from mloop.deployments.streaming import StreamMetrics, run_stream

    spec = dict(context.store.get_endpoint(name).spec)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    collector = _collector(context, name, spec)
    registry = CollectorRegistry(auto_describe=True)
    metrics = StreamMetrics(name, registry)
    if collector is not None:
        registry.register(_Forward(collector.metrics.registry))
    server, _ = start_http_server(int(spec["port"]), addr=str(spec.get("host", "127.0.0.1")), registry=registry)
    try:
        run_stream(context, str(spec["stream"]), endpoint=name, router_provider=_FollowedRouter(context, name, stop),
                   collector=collector, stop=stop, metrics=metrics)  # fmt: skip
    finally:
        server.shutdown()
        if collector is not None:
            collector.close()


class _Forward:
    """Another registry's metrics, collected through this one (one exposition for the stream and the collector)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Any:
        return self.registry.collect()


def main(argv: list[str] | None = None) -> int:
    from mloop.context import Context

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("http", "stream"):
        raise InvalidInput("Usage: python -m mloop.deployments.worker http|stream ENDPOINT")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with Context() as context:
        (serve_http if args[0] == "http" else serve_stream)(context, args[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
