"""Prototypes, for this benchmark only, of two engine changes that cut what a shadow costs the live traffic.

    python bench/_deploy/bulk_shadow.py ENDPOINT [--bulk] [--freeze]    (MLOOP_URI, MLOOP_ARTIFACT_URI: the workspace)

It serves the endpoint like ``python -m mloop.deployments.worker http ENDPOINT`` (one uvicorn process, the
stored spec's port, the engine's ``EndpointApp``), with two changes to try, each on its own flag:

``--freeze``: ``gc.collect(); gc.freeze()`` once the versions are loaded, so the ≈ 170,000 objects of the
imported libraries and the models move to the permanent generation and a full (generation 2) collection no
longer walks them: measured on this machine, such a collection stops the event loop for 70-220 ms during
serving (it sets the p99 of every side at concurrency 32), 7 ms after ``gc.freeze()``.

``--bulk``: :class:`BulkShadowApp` in place of ``EndpointApp``. Where ``EndpointApp._score`` spawns a task per
mirrored request that calls the shadow's whole ``ScoringApp`` (request id, admission, body, parse, batcher
future, JSON answer, all per request), this appends ``(body, request id, time)`` to a bounded deque (past
``max_queue``: shed and counted, as now) and wakes one drain task per shadow version. The drain task lets a
batch fill (it sleeps ``gather``, 5 ms, unless ``max_rows`` are queued: nobody waits for a shadow's answer, and
live work runs meanwhile), then takes up to ``max_rows`` bodies, parses
each (``orjson`` + ``parse_invocations`` / ``parse_predict``: the same checks), stacks them and calls the
shadow's ``predict`` once, and counts each answer in the shadow's metrics (and collector, role ``shadow``, when
it has one). A body the shadow refuses is counted with its status. Other routes (``/v2``), and models whose
requests cannot be combined, keep the per-request replay.

What the engine would need instead of this copy: ``scoring_handler`` leaving the parsed input in the scope
(``scope["mloop.input"] = data``) so the shadow does not parse again, and ``EndpointApp`` handing it to a
per-shadow drain like this one.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from typing import Any

import orjson

from mloop.deployments.endpoint_app import EndpointApp, Message, Receive, Scope, Send, _Table
from mloop.serving.app import ScoringApp
from mloop.serving.protocols.invocations import parse_invocations
from mloop.serving.protocols.native import parse_predict
from mloop.serving.schema import RequestError

__all__ = ["BulkShadowApp", "ShadowDrain"]

_log = logging.getLogger("bench.bulk_shadow")


class ShadowDrain:
    """Mirrored bodies for one shadow app, scored in bulk by one task."""

    def __init__(self, app: ScoringApp, spawn: Any, gather: float = 0.005) -> None:
        self.app = app
        state = app.state
        self.max_queue = state.batcher.config.max_queue
        self.max_rows = state.batcher.config.max_rows
        self.items: deque[tuple[str, bytes, str, float]] = deque()
        self.wake = asyncio.Event()
        self.gather = gather
        spawn(self._run())

    def offer(self, path: str, body: bytes, rid: str) -> None:
        if len(self.items) >= self.max_queue:
            self.app.state.metrics.shed()
            self.app.state.metrics.observe(path, 503, 0.0)
            return
        self.items.append((path, body, rid, time.perf_counter()))
        self.wake.set()

    async def _run(self) -> None:
        while True:
            if not self.items:
                self.wake.clear()
                await self.wake.wait()
            # nobody waits for a shadow's answer: let a batch fill (live requests run meanwhile, and first)
            await asyncio.sleep(self.gather if len(self.items) < self.max_rows else 0)
            batch = [self.items.popleft() for _ in range(min(len(self.items), self.max_rows))]
            try:
                self._score(batch)
            except Exception:  # a failing shadow never touches live traffic
                _log.exception("shadow batch failed")

    def _score(self, batch: list[tuple[str, bytes, str, float]]) -> None:
        import numpy as np

        from mloop.serving.batching import _combine

        state = self.app.state
        schema, calls, metrics = state.schema, state.calls, state.metrics
        if schema is None or calls is None:
            return
        parsed, kept = [], []
        for path, body, rid, t in batch:
            try:
                raw = orjson.loads(body)
                data = (
                    parse_invocations(raw, schema) if path == "/invocations" else parse_predict(raw, schema, False)[0]
                )
            except RequestError as exc:
                metrics.observe(path, exc.status, time.perf_counter() - t)
                continue
            except orjson.JSONDecodeError:
                metrics.observe(path, 400, time.perf_counter() - t)
                continue
            parsed.append(data)
            kept.append((path, rid, t, int(data.shape[0])))
        if not parsed:
            return
        stacked = _combine(parsed) if len(parsed) > 1 else parsed[0]
        metrics.batch(int(stacked.shape[0]))
        try:
            out = np.asarray(calls.predict(stacked))
            status = 200
        except Exception:
            out, status = None, 500
        now, start = time.perf_counter(), 0  # latency: from the offer to the answer (the gather included)
        collector = state.collector
        for (path, rid, t, rows), data in zip(kept, parsed, strict=True):
            metrics.observe(path, status, now - t)
            if collector is not None and out is not None:
                result = {"predictions": out[start : start + rows], "model": state.version_ref}
                collector.record(rid, state.version_ref, data, result, now - t, status, "shadow",
                                 columns=schema.names or None)  # fmt: skip
            start += rows


class BulkShadowApp(EndpointApp):
    """``EndpointApp`` with the mirrored requests of ``/predict`` and ``/invocations`` scored by a drain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drains: dict[int, ShadowDrain] = {}

    def _drain(self, app: ScoringApp) -> ShadowDrain:
        drain = self._drains.get(id(app))
        if drain is None:
            drain = self._drains[id(app)] = ShadowDrain(app, self._spawn)
        return drain

    async def _score(self, table: _Table, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        key = None
        for name, value in scope["headers"]:
            if name == table.sticky:
                key = value
                break
        shadow = table.router.mirror(key)
        shadow_app = table.apps.get(shadow) if shadow is not None else None
        if shadow_app is None or path not in ("/predict", "/invocations") or not shadow_app.state.combine:
            await super()._score(table, scope, receive, send)  # the engine's own path (its router draw again)
            return
        ref = table.router.choose(key)
        header = (b"x-model-version", ref.encode())

        async def send_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        chunks: list[bytes] = []

        async def capture() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        await table.apps[ref](scope, capture, send_version)
        self._drain(shadow_app).offer(path, b"".join(chunks), str(scope.get("mloop.request_id", "")))


def main() -> None:
    from mloop.context import Context
    from mloop.deployments.worker import _collector
    from mloop.serving.server import run_one

    name, flags = sys.argv[1], set(sys.argv[2:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with Context() as context:
        spec = dict(context.store.get_endpoint(name).spec)
        kind = BulkShadowApp if "--bulk" in flags else EndpointApp
        app = kind(context, name, collector=_collector(context, name, spec))
        app.load()
        if "--freeze" in flags:
            import gc

            gc.collect()
            gc.freeze()
        run_one(app, str(spec.get("host", "127.0.0.1")), int(spec["port"]), "info", False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
