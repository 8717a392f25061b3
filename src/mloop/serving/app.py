"""The scoring server: a Starlette ASGI app for one registered model version.

:func:`create_app` resolves the reference and, at startup (the ASGI lifespan), loads the model through the
registry's verified loader (:func:`mloop.registry.loader.load_model`): a file that does not match its registered
digest stops the server from starting, naming the file. Until the model is loaded ``/health/ready`` and the
scoring routes answer 503; ``/health/live`` answers as soon as the process does.

Routes: ``GET /health/live``, ``GET /health/ready``, ``GET /metrics`` (Prometheus), ``POST /predict``
(native), ``POST /invocations`` (MLflow), and the Open Inference Protocol v2 routes under ``/v2``
(:mod:`mloop.serving.protocols.v2`); with a request collector (``collector=``), every request answered on
``/predict`` and ``/invocations`` is recorded (:mod:`mloop.serving.collector`) and ``POST /feedback`` takes
ground truth (:mod:`mloop.serving.feedback`). Every response carries ``X-Request-ID`` (the caller's, or a
generated one). Bad input gets a 400/413/422 JSON body naming the field, the expected type and what was
sent; a 500 means a fault of the server. Scoring goes through the app's
:class:`~mloop.serving.batching.Batcher`: concurrent requests are combined into one ``predict`` call, and past
the queue bound requests get 503 with ``Retry-After`` at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mloop.errors import InvalidInput
from mloop.serving.batching import BatchConfig, Batcher, combinable
from mloop.serving.metrics import ServerMetrics
from mloop.serving.modelcall import ModelCalls, model_calls
from mloop.serving.openapi import openapi_route
from mloop.serving.protocols.v2 import v2_routes
from mloop.serving.schema import Schema
from mloop.serving.scoring import Handler, scoring_handler

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.entities.models import ModelVersion
    from mloop.flavors import LoadedModel
    from mloop.serving.collector import Collector

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ScoringApp", "ServerState", "create_app"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_log = logging.getLogger("mloop.serving")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServerState:
    """What one app serves: the reference, and once loaded the model and its input schema."""

    def __init__(
        self, ref: str, context: Context, max_body_bytes: int, batching: BatchConfig, collector: Collector | None = None
    ) -> None:
        self.ref = ref
        self.collector = collector  # records every scored request (None: nothing is recorded)
        self.context = context
        self.max_body_bytes = max_body_bytes
        self.model: LoadedModel | None = None
        self.schema: Schema | None = None
        self.version_ref = ref
        self.classes: list[Any] | None = None
        self.combine = False  # whether requests may share one predict call (row-wise flavor with a signature)
        self.calls: ModelCalls | None = None
        self.metrics = ServerMetrics(ref)
        self.batcher = self._batcher(batching)

    def load(self) -> None:
        from mloop.registry.loader import load_model, resolve_model

        version = resolve_model(self.context, self.ref)
        self.install(version, load_model(version.ref, client=self.context))

    def install(self, version: ModelVersion, model: LoadedModel) -> None:
        """Serve ``model`` (already verified) as ``version``: its schema, classes, metrics and batcher."""
        raw = model.raw
        names_needed = model.flavor != "sklearn" or hasattr(raw, "feature_names_in_")
        self.schema = Schema(version.signature, names_needed=names_needed)
        classes = getattr(raw, "classes_", None)
        self.classes = None if classes is None else _plain(classes)
        self.version_ref = version.ref
        self.combine = combinable(model.flavor) and self.schema.columns is not None
        self.calls = model_calls(model, self.schema)
        self.metrics = ServerMetrics(version.ref)
        self.batcher = self._batcher(self.batcher.config)
        self.model = model

    def _batcher(self, config: BatchConfig) -> Batcher:
        m = self.metrics
        batcher = Batcher(config, on_batch=m.batch, on_shed=m.shed)
        batcher.on_depth = m.watch_depth(lambda: batcher.pending)
        return batcher


def _plain(values: Any) -> list[Any]:
    import numpy as np

    return list(np.asarray(values).tolist())


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


def _error(status: int, message: str, **extra: Any) -> Response:
    return _json({"error": {"message": message, **extra}}, status)


class ScoringApp:
    """The ASGI app: takes ``X-Request-ID`` (up to 200 visible ASCII characters) or makes one, and returns it
    on every response; ``state`` is what it serves."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], state: ServerState,
        direct: dict[str, Handler] | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self.state = state
        self.direct = direct or {}  # POST routes answered without the router (their handlers catch everything)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                if 0 < len(value) <= 200 and all(33 <= b <= 126 for b in value):
                    rid = value.decode("ascii")
                break
        rid = rid or os.urandom(16).hex()
        scope["mloop.request_id"] = rid
        header = (b"x-request-id", rid.encode("ascii"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            handler = self.direct.get(scope["path"]) if scope["method"] == "POST" else None
            if handler is None:
                await self.app(scope, receive, send_with_id)
            else:
                status, body, extra = await handler(scope, receive)
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                           header, *extra]  # fmt: skip
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
        finally:
            self.state.metrics.observe(scope["path"], status, time.perf_counter() - started)


def _routed(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A scoring handler as a Starlette endpoint (the same answer when reached through the router)."""

    async def endpoint(request: Request) -> Response:
        status, body, extra = await handler(request.scope, request.receive)
        return Response(body, status, headers={k.decode(): v.decode() for k, v in extra},
                        media_type="application/json")  # fmt: skip

    return endpoint


def create_app(
    ref: str, context: Context, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, batching: BatchConfig | None = None,
    collector: Collector | None = None,
) -> ScoringApp:  # fmt: skip
    """The ASGI app serving ``ref`` (``model:<name>/<version>`` or ``model:<name>@<alias>``) from ``context``;
    ``batching`` bounds the queue and sets how concurrent requests are combined (:class:`BatchConfig`);
    ``collector`` records every scored request and backs ``POST /feedback`` (its owner closes it: several
    apps of one endpoint share one collector)."""
    if max_body_bytes < 1:
        raise InvalidInput(f"max_body_bytes must be at least 1, got {max_body_bytes}.")
    state = ServerState(ref, context, max_body_bytes, batching or BatchConfig(), collector)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.model is None:  # not loaded before the server started (mloop.serving.server.serve loads first)
            await run_in_threadpool(state.load)  # raises (e.g. IntegrityError naming the file): no start
        import gc

        gc.collect()
        gc.freeze()  # libraries and the model out of the collector's reach: no 100+ ms full collections under load
        _log.info("serving %s", state.version_ref)
        yield
        await state.batcher.close()

    async def live(request: Request) -> Response:
        return _json({"status": "live"})

    async def ready(request: Request) -> Response:
        if state.model is None:
            return _json({"status": "loading", "model": state.ref}, 503)
        return _json({"status": "ready", "model": state.version_ref})

    async def metrics(request: Request) -> Response:
        body, content_type = state.metrics.render(*([collector.metrics.registry] if collector else []))
        return Response(body, 200, headers={"Content-Type": content_type})

    direct = {"/predict": scoring_handler(state, native=True), "/invocations": scoring_handler(state, native=False)}
    routes = [
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        openapi_route(state),  # GET /openapi.json
        Route("/predict", _routed(direct["/predict"]), methods=["POST"]),  # answered past the router
        Route("/invocations", _routed(direct["/invocations"]), methods=["POST"]),
        *v2_routes(lambda: state.model, max_body_bytes=max_body_bytes, batcher=lambda: state.batcher),  # OIP v2
    ]
    if collector is not None:
        from mloop.serving.feedback import feedback_handler

        direct["/feedback"] = feedback_handler(collector, max_body_bytes)
        routes.append(Route("/feedback", _routed(direct["/feedback"]), methods=["POST"]))
    return ScoringApp(Starlette(routes=routes, lifespan=lifespan), state, direct)
