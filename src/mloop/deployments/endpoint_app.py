"""The ASGI app of an endpoint: one scoring app per model version behind a traffic router, with shadow traffic,
feedback, merged metrics and live spec changes.

Every version of the spec (:func:`mloop.deployments.spec.versions_of`) gets its own
:class:`~mloop.serving.app.ScoringApp` (loaded through the registry's verified loader, with its own batcher and
metrics, all sharing the endpoint's collector). A scoring request (``/predict``, ``/invocations``, ``/v2/...``)
is routed by the :class:`~mloop.deployments.router.Router`: sticky by the spec's header (default
``X-Routing-Key``) when the request has it, by weight otherwise; the answer says which version answered (the
``model`` field and the ``X-Model-Version`` header). A request chosen for the shadow is replayed to the shadow
version *after* the live answer was sent, from the body the live app read; the shadow's answer is collected with
role ``shadow`` and discarded, and a busy shadow sheds (its own queue bound) instead of queueing.

The app polls the store for the endpoint's generation (``poll_interval``); a new spec is applied without
dropping requests: new versions are loaded first, then the router and the table of apps are swapped in one
assignment, and versions no longer served are closed a few seconds later, once their in-flight requests are done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool

from mloop.deployments.router import Router
from mloop.deployments.shadow import ShadowDrain, same_input
from mloop.deployments.spec import DEFAULT_STICKY_HEADER, router_of, versions_of
from mloop.serving.app import DEFAULT_MAX_BODY_BYTES, ScoringApp, create_app
from mloop.serving.batching import BatchConfig

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["EndpointApp", "freeze_heap"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_log = logging.getLogger("mloop.deployments")
_SCORING = ("/predict", "/invocations")
_RETIRE_AFTER = 5.0  # seconds a replaced version keeps running for its in-flight requests


async def _discard(message: Message) -> None:
    return None


def freeze_heap() -> None:
    """Move every object alive now (libraries, loaded models) out of the collector's reach: a full collection
    over them stops the event loop for 100-200 ms under load (bench/RESULTS.md §19); requests' garbage is still
    collected as usual."""
    import gc

    gc.collect()
    gc.freeze()


class _Table:
    """What the endpoint serves at one generation: the router and the app of each version (swapped whole)."""

    def __init__(self, generation: int, router: Router, apps: Mapping[str, ScoringApp], sticky: bytes) -> None:
        self.generation = generation
        self.router = router
        self.apps = dict(apps)
        self.sticky = sticky
        self.drains: dict[tuple[str, str], ShadowDrain | None] = {}  # (live, shadow) -> its drain (None: replay)

    def drain(self, live: str, shadow: str, collector: Any) -> ShadowDrain | None:
        """The bulk drain of ``shadow`` when it takes ``live``'s parsed input as it is, else None (replay)."""
        key = (live, shadow)
        if key not in self.drains:
            live_state, shadow_state = self.apps[live].state, self.apps[shadow].state
            found = next((d for (_, s), d in self.drains.items() if s == shadow and d is not None), None)
            usable = same_input(live_state, shadow_state)
            self.drains[key] = (found or ShadowDrain(shadow_state, collector)) if usable else None
        return self.drains[key]


class EndpointApp:
    """Serve endpoint ``name`` of ``context``; ``collector`` (optional) records every scored request."""

    def __init__(
        self, context: Context, name: str, *, collector: Any = None, poll_interval: float = 0.5,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, seed: int | None = None,
    ) -> None:  # fmt: skip
        self.context = context
        self.name = name
        self.collector = collector
        self.poll_interval = poll_interval
        self.max_body_bytes = max_body_bytes
        self.seed = seed
        self.table: _Table | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._feedback: Callable[..., Awaitable[Any]] | None = None
        if collector is not None:
            from mloop.serving.feedback import feedback_handler

            self._feedback = feedback_handler(collector)

    # -- loading and live changes ---------------------------------------------------------------------------------
    def _build(self, spec: Mapping[str, Any], generation: int, current: _Table | None) -> _Table:
        """Load what ``spec`` needs (reusing the current table's apps) and return the new table (in a thread)."""
        batching = BatchConfig(**spec["batching"]) if spec.get("batching") else None
        apps: dict[str, ScoringApp] = {}
        for ref in versions_of(spec):
            app = current.apps.get(ref) if current else None
            if app is None:
                app = create_app(ref, self.context, max_body_bytes=self.max_body_bytes, batching=batching,
                                 collector=self.collector)  # fmt: skip
                app.state.load()  # verified load; a failure keeps the current table (the caller logs it)
            apps[ref] = app
        sticky = str(spec.get("sticky_header") or DEFAULT_STICKY_HEADER).lower().encode("latin-1")
        return _Table(generation, router_of(spec, self.seed), apps, sticky)

    def load(self) -> None:
        """Load the endpoint's current spec (before serving, or from the lifespan)."""
        endpoint = self.context.store.get_endpoint(self.name)
        self.table = self._build(endpoint.spec, endpoint.generation, None)
        freeze_heap()

    async def refresh(self) -> bool:
        """Apply the stored spec if its generation changed; True if a new table was installed."""
        endpoint = await run_in_threadpool(self.context.store.get_endpoint, self.name)
        current = self.table
        if current is not None and endpoint.generation == current.generation:
            return False
        table = await run_in_threadpool(self._build, endpoint.spec, endpoint.generation, current)
        freeze_heap()  # the new models too: full collections never walk them (long pauses under load)
        self.table = table  # one assignment: a request sees the old table or the new one, never a mix
        if current is not None:
            gone = [app for ref, app in current.apps.items() if ref not in table.apps]
            drains = [d for d in current.drains.values() if d is not None]
            if gone or drains:
                self._spawn(self._retire(gone, drains))
        _log.info("endpoint %s: generation %d, traffic %s", self.name, table.generation, table.router.shares)
        return True

    async def _retire(self, apps: Iterable[ScoringApp], drains: Iterable[ShadowDrain] = ()) -> None:
        await asyncio.sleep(_RETIRE_AFTER)
        for drain in drains:
            await drain.close()
        for app in apps:
            await app.state.batcher.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # a deleted endpoint or a version that fails to load: keep serving, say why
                _log.exception("endpoint %s: could not apply the stored spec; still serving the last one", self.name)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        if self.table is None:
            await run_in_threadpool(self.load)
        poller = asyncio.ensure_future(self._poll())
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            for task in list(self._tasks):
                task.cancel()
            if self.table is not None:
                for drain in self.table.drains.values():
                    if drain is not None:
                        await drain.close()  # what was mirrored is scored and collected before the end
                for app in self.table.apps.values():
                    await app.state.batcher.close()
            if self.collector is not None:
                await run_in_threadpool(self.collector.close)

    # -- requests ---------------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        table = self.table
        if table is not None and (path in _SCORING or path.startswith("/v2")):
            await self._score(table, scope, receive, send)
        elif path == "/feedback" and scope["method"] == "POST" and self._feedback is not None:
            status, body, extra = await self._feedback(scope, receive)
            await _reply(send, status, body, extra)
        elif path == "/metrics" and table is not None:
            extra = [self.collector.metrics.registry] if self.collector is not None else []
            body, content_type = _merged_metrics(table.apps.values(), extra)
            await _reply(send, 200, body, [], content_type.encode())
        elif path in ("/health/live", "/health/ready", "/endpoint"):
            await self._health(path, table, send)
        else:
            message = {"error": {"message": f"No route {path}; score with POST /predict or /invocations, send "
                                            "ground truth to POST /feedback."}}  # fmt: skip
            await _reply(send, 404, orjson.dumps(message), [])

    async def _score(self, table: _Table, scope: Scope, receive: Receive, send: Send) -> None:
        key = None
        for name, value in scope["headers"]:
            if name == table.sticky:
                key = value
                break
        ref = table.router.choose(key)
        shadow = table.router.mirror(key)
        header = (b"x-model-version", ref.encode())

        async def send_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        if shadow is None or shadow not in table.apps:
            await table.apps[ref](scope, receive, send_version)
            return
        drain = table.drain(ref, shadow, self.collector)
        if drain is not None:  # the shadow takes the parsed input: no body to keep
            await table.apps[ref](scope, receive, send_version)
            parsed = scope.get("mloop.input")
            if parsed is not None:  # nothing to mirror when the live request was refused before parsing
                drain.offer(str(scope.get("mloop.request_id", "")), parsed[0], parsed[1], scope["path"])
            return
        chunks: list[bytes] = []

        async def capture() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        await table.apps[ref](scope, capture, send_version)
        self._spawn(self._mirror(table.apps[shadow], scope, b"".join(chunks)))

    async def _mirror(self, app: ScoringApp, scope: Scope, body: bytes) -> None:
        """Replay a live request to the shadow version; its answer is collected (role shadow) and dropped."""
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        rid = str(scope.get("mloop.request_id", "")).encode("ascii")  # the live request's id: joins both answers
        headers = [(k, v) for k, v in scope["headers"] if k != b"x-request-id"] + (
            [(b"x-request-id", rid)] if rid else []
        )
        shadow_scope = {**scope, "mloop.role": "shadow", "headers": headers}
        try:
            await app(shadow_scope, replay, _discard)
        except Exception:  # a failing shadow never touches live traffic
            _log.exception("endpoint %s: shadow request failed", self.name)

    async def _health(self, path: str, table: _Table | None, send: Send) -> None:
        if path == "/health/live":
            await _reply(send, 200, orjson.dumps({"status": "live"}), [])
            return
        if table is None:
            await _reply(send, 503, orjson.dumps({"status": "loading", "endpoint": self.name}), [])
            return
        body = {"status": "ready", "endpoint": self.name, "generation": table.generation,
                "traffic": table.router.shares, "shadow": table.router.shadow,
                "shadow_percent": table.router.shadow_share * 100}  # fmt: skip
        await _reply(send, 200, orjson.dumps(body), [])

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            async with self._lifespan():
                await send({"type": "lifespan.startup.complete"})
                message = await receive()  # lifespan.shutdown
        except BaseException as exc:
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})


async def _reply(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]], content_type: bytes = b"application/json"
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _merged_metrics(apps: Iterable[ScoringApp], extra: Iterable[Any] = ()) -> tuple[bytes, str]:
    """Every version's metrics (and the collector's, ``extra`` registries) in one exposition: one family per
    name, a ``model`` label on every version's series. With several workers, prometheus-client's multiprocess
    collector already holds every series of every worker."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    apps = list(apps)
    if not apps or apps[0].state.metrics.multiprocess:
        return apps[0].state.metrics.render() if apps else (b"", CONTENT_TYPE_LATEST)
    families: dict[str, Any] = {}
    sources = [(app.state.metrics.registry, app.state.metrics.model) for app in apps]
    for registry_, model in [*sources, *((r, None) for r in extra)]:
        for family in registry_.collect():
            samples = [s if model is None or "model" in s.labels else s._replace(labels={**s.labels, "model": model})
                       for s in family.samples]  # fmt: skip
            merged = families.get(family.name)
            if merged is None:
                family.samples = samples
                families[family.name] = family
            else:
                merged.samples.extend(samples)

    class _Merged:
        def collect(self) -> Iterable[Any]:
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged())
    return generate_latest(registry), CONTENT_TYPE_LATEST
