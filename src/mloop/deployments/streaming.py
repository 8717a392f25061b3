"""Streaming scoring: consume events from NATS JetStream or Redis Streams, score them in micro-batches, publish
one prediction per event, and acknowledge the events only once their predictions are stored (at least once).

The endpoint's stream is a URL (:func:`parse_stream_url`)::

    nats://[user:pass@]127.0.0.1:4222/SUBJECT[?options]     JetStream: a durable pull consumer
    redis://[:pass@]127.0.0.1:6379/STREAM[?options]         Redis Streams: a consumer group

Options (query parameters; the defaults in brackets):

- ``out``: the output subject / stream [``<SUBJECT>.predictions`` / ``<STREAM>:predictions``];
- ``group``: the durable consumer / consumer group [``mloop-<endpoint>``], so a restarted consumer resumes
  where its predecessor stopped;
- ``batch``: the most events per micro-batch [1000]; a batch is what is available, up to that many;
- ``key``: the event field that is the event id and the routing key (sticky routing) [none];
- ``proba``: ``true`` adds ``probabilities`` to each prediction [false];
- ``start``: where a new consumer / group begins: ``all`` (the stream's first event) or ``new`` [all];
- ``ack_wait``: seconds before an event delivered and not acknowledged is delivered again [30];
- NATS only: ``stream``: the name of the input stream created when no stream captures SUBJECT
  [SUBJECT with ``.`` as ``_``]; the output subject is captured by a stream created the same way when none does;
- Redis only: ``consumer`` [``consumer-1``], ``field`` (the entry field holding the JSON event) [``data``],
  ``maxlen`` (trim the output stream to about this many entries) [no trim], ``db`` [0].

The loop (:func:`run_stream`): fetch a batch; route each event with the router of the moment
(``router_provider()`` is called per batch, so a weight change applies at once); score it
(:func:`~mloop.deployments.eventscoring.score_events`: one predict call per version, a bad event gets an error
message); publish every output and wait for the broker to confirm each one; only then acknowledge the batch
(:meth:`Transport.commit`).
A consumer killed at any point loses nothing: unacknowledged events are delivered again (a Redis consumer
re-reads its own pending entries at start; JetStream redelivers after ``ack_wait``), so an event may get two
predictions (at least once, never zero). Events mirrored to a shadow version are scored after the live
answers are published and only recorded by the collector.

After loading a version the consumer calls ``gc.freeze()`` (process-wide): the cyclic collector then no longer
rescans the ~200,000 long-lived objects of the loaded libraries and models on each full collection (scoring CPU
6.7 -> 4.7 µs an event). Transports live in :mod:`.stream_nats` and :mod:`.stream_redis`; both implement
:class:`Transport`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from mloop.deployments.eventscoring import Collector, Event, Versions, score_events, score_shadow
from mloop.errors import InvalidInput, shown

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.deployments.router import Router

__all__ = ["StreamMetrics", "StreamSpec", "Transport", "parse_stream_url", "run_stream", "transport_for"]

_log = logging.getLogger("mloop.deployments.stream")
_COMMON = {"out", "group", "batch", "key", "proba", "start", "ack_wait"}
_ONLY = {"nats": {"stream"}, "redis": {"consumer", "field", "maxlen", "db"}}
_DEFAULT_PORT = {"nats": 4222, "redis": 6379}
MAX_BATCH = 10_000
_MAX_FAILURES = 12  # consecutive failed fetches (about 15 s with the back-off) before run_stream raises


@dataclass(frozen=True)
class StreamSpec:
    """A parsed stream URL (see the module docstring for every option and its default)."""

    transport: str  # "nats" or "redis"
    server: str  # the broker URL without path or query (credentials included: never log it)
    input: str  # the subject / stream consumed
    out: str
    group: str
    batch: int = 1000
    key: str | None = None
    proba: bool = False
    start: str = "all"
    ack_wait: float = 30.0
    options: dict[str, str] = field(default_factory=dict)  # transport-only options, as given

    def describe(self) -> str:
        """The URL without credentials (for logs and messages)."""
        host = self.server.rsplit("@", 1)[-1]
        return f"{host.split('://')[-1] if '://' in host else host}/{self.input} -> {self.out}"


def _bad(url: str, message: str) -> InvalidInput:
    return InvalidInput(f"Stream URL {shown(_redacted(url))}: {message}")


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _name_from(endpoint: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in endpoint)
    return f"mloop-{safe}"


def _number(url: str, name: str, raw: str, kind: type, low: float, high: float) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        raise _bad(url, f"?{name}= must be a number, got {raw!r}.") from None
    if not low <= value <= high:
        raise _bad(url, f"?{name}= must be between {low:g} and {high:g}, got {raw!r}.")
    return value


def _check_subject(url: str, subject: str, what: str, wildcards: bool) -> None:
    tokens = subject.split(".")
    if any(not t or any(c.isspace() for c in t) for t in tokens):
        raise _bad(url, f"{what} {subject!r} is not a NATS subject: tokens separated by '.', none empty, no spaces.")
    if not wildcards and any(t in ("*", ">") for t in tokens):
        raise _bad(url, f"{what} {subject!r} has a wildcard; name one subject.")
    if ">" in tokens[:-1]:
        raise _bad(url, f"{what} {subject!r}: '>' may only be the last token.")


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether NATS ``subject`` is matched by ``pattern`` (``*`` one token, ``>`` the rest)."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def parse_stream_url(url: str, endpoint: str) -> StreamSpec:
    """The :class:`StreamSpec` of ``url`` for ``endpoint``; :class:`InvalidInput` names the bad part."""
    parts = urlsplit(url)
    transport = parts.scheme.lower()
    if transport not in _DEFAULT_PORT:
        raise _bad(url, f"scheme {parts.scheme!r} is not supported; use nats://HOST:PORT/SUBJECT (JetStream) or "
                   "redis://HOST:PORT/STREAM (Redis Streams).")  # fmt: skip
    if not parts.hostname:
        raise _bad(url, f"no host; write {transport}://127.0.0.1:{_DEFAULT_PORT[transport]}/NAME.")
    try:
        port = parts.port or _DEFAULT_PORT[transport]
    except ValueError:
        raise _bad(url, f"the port in {parts.netloc!r} is not a number from 1 to 65535.") from None
    name = unquote(parts.path.lstrip("/"))
    if not name:
        what = "SUBJECT" if transport == "nats" else "STREAM"
        raise _bad(url, f"no {what.lower()}; write {transport}://{parts.hostname}:{port}/{what}.")
    query: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k in query:
            raise _bad(url, f"option {k!r} is given twice.")
        query[k] = v
    known = _COMMON | _ONLY[transport]
    unknown = sorted(set(query) - known)
    if unknown:
        raise _bad(url, f"unknown option(s) {', '.join(map(repr, unknown))} for {transport}; the options are "
                   f"{', '.join(sorted(known))}.")  # fmt: skip
    empty = sorted(k for k, v in query.items() if not v)
    if empty:
        raise _bad(url, f"option {empty[0]!r} is empty; give it a value or leave it out.")
    if transport == "nats":
        _check_subject(url, name, "subject", wildcards=True)
        if "out" not in query and any(t in ("*", ">") for t in name.split(".")):
            raise _bad(url, f"subject {name!r} has a wildcard, so there is no default output; add ?out=SUBJECT.")
        out = query.get("out", f"{name}.predictions")
        _check_subject(url, out, "output subject", wildcards=False)
        if subject_matches(name, out):
            raise _bad(url, f"output subject {out!r} is matched by the input subject {name!r}: predictions would be "
                       "consumed as events. Choose another ?out=.")  # fmt: skip
    else:
        out = query.get("out", f"{name}:predictions")
        if out == name:
            raise _bad(url, f"the output stream is the input stream {name!r}; choose another ?out=.")
    proba = query.get("proba", "false").lower()
    if proba not in ("true", "false", "1", "0"):
        raise _bad(url, f"?proba= must be true or false, got {query['proba']!r}.")
    start = query.get("start", "all")
    if start not in ("all", "new"):
        raise _bad(url, f"?start= must be 'all' (from the stream's first event) or 'new', got {start!r}.")
    group = query.get("group", _name_from(endpoint))
    if transport == "nats" and any(c in group for c in ".*> /\\\t"):
        raise _bad(url, f"?group= {group!r} cannot name a JetStream consumer: no '.', '*', '>', spaces or slashes.")
    if "maxlen" in query:
        _number(url, "maxlen", query["maxlen"], int, 1, 2**63 - 1)
    if "db" in query:
        _number(url, "db", query["db"], int, 0, 1 << 16)
    host = parts.netloc.rsplit("@", 1)
    server = f"{transport}://{host[0] + '@' if len(host) == 2 else ''}{parts.hostname}:{port}"
    if parts.hostname and ":" in parts.hostname:  # IPv6 literal
        server = f"{transport}://{host[0] + '@' if len(host) == 2 else ''}[{parts.hostname}]:{port}"
    return StreamSpec(
        transport=transport, server=server, input=name, out=out, group=group,
        batch=_number(url, "batch", query.get("batch", "1000"), int, 1, MAX_BATCH),
        key=query.get("key"), proba=proba in ("true", "1"), start=start,
        ack_wait=_number(url, "ack_wait", query.get("ack_wait", "30"), float, 0.1, 86400.0),
        options={k: v for k, v in query.items() if k in _ONLY[transport]},
    )  # fmt: skip


class Transport(Protocol):
    """One broker connection as the loop uses it (:mod:`.stream_nats`, :mod:`.stream_redis`)."""

    async def open(self) -> None:
        """Connect; create what must exist (streams, consumer, group); re-read this consumer's pending events."""

    async def fetch(self, max_events: int, timeout: float) -> list[Event]:
        """Up to ``max_events`` events available now, waiting up to ``timeout`` s for the first one."""

    async def commit(self, messages: list[bytes], events: list[Event]) -> None:
        """Publish ``messages`` to the output, wait until the broker has stored every one, and only then
        acknowledge ``events``; raise (acknowledging nothing) when any message is not confirmed stored."""

    async def nack(self, events: list[Event]) -> None:
        """Give ``events`` back for delivery again soon (their predictions could not be published)."""

    async def close(self) -> None: ...


class StreamMetrics:
    """Per-consumer Prometheus metrics in their own registry (``registry``; the supervisor exposes it)."""

    def __init__(self, endpoint: str, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.consumed = Counter("mloop_stream_events_consumed", "Events taken from the input stream.",
                                ["endpoint"], registry=reg).labels(endpoint)  # fmt: skip
        self.scored = Counter("mloop_stream_events_scored", "Events scored, by model version.",
                              ["endpoint", "model"], registry=reg)  # fmt: skip
        self.published = Counter("mloop_stream_predictions_published", "Output messages stored by the broker.",
                                 ["endpoint"], registry=reg).labels(endpoint)  # fmt: skip
        self.errors = Counter("mloop_stream_errors", "Events answered with an error message (kind=event) and "
                              "batches that failed to publish (kind=publish).", ["endpoint", "kind"],
                              registry=reg)  # fmt: skip
        self.batch = Histogram("mloop_stream_batch_events", "Events per micro-batch.", ["endpoint"],
                               buckets=(1, 4, 16, 64, 128, 256, 512, 1000, 2000, 5000, 10000),
                               registry=reg).labels(endpoint)  # fmt: skip
        self.latency = Histogram("mloop_stream_batch_seconds", "Fetch-to-acknowledge time of a micro-batch (s).",
                                 ["endpoint"], registry=reg).labels(endpoint)  # fmt: skip
        self.endpoint = endpoint


def transport_for(spec: StreamSpec) -> Transport:
    """The (unopened) transport of ``spec``."""
    if spec.transport == "nats":
        from mloop.deployments.stream_nats import NatsTransport

        return NatsTransport(spec)
    from mloop.deployments.stream_redis import RedisTransport

    return RedisTransport(spec)


def run_stream(
    context: Context, url: str, *, endpoint: str, router_provider: Callable[[], Router],
    collector: Collector | None = None, stop: threading.Event, ready: threading.Event | None = None,
    metrics: StreamMetrics | None = None,
) -> None:  # fmt: skip
    """Consume ``url`` for ``endpoint`` until ``stop`` is set (then finish the batch in hand, acknowledge it,
    and return). ``ready`` is set once connected, set up, and the router's versions are loaded; a bad URL, an
    unreachable broker or a version that cannot be loaded raises before that."""
    spec = parse_stream_url(url, endpoint)
    loop = _Loop(spec, context, router_provider, collector, stop, metrics or StreamMetrics(endpoint))
    asyncio.run(loop.run(ready))


class _Loop:
    def __init__(
        self, spec: StreamSpec, context: Context, router_provider: Callable[[], Router],
        collector: Collector | None, stop: threading.Event, metrics: StreamMetrics,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.versions = Versions(context)
        self.router_provider = router_provider
        self.collector = collector
        self.stop = stop
        self.metrics = metrics
        self.transport = transport_for(spec)

    async def run(self, ready: threading.Event | None) -> None:
        self.versions.preload(self.router_provider())  # each load ends with gc.freeze()
        await self.transport.open()
        try:
            _log.info("stream %s: consuming %s", self.metrics.endpoint, self.spec.describe())
            if ready is not None:
                ready.set()
            failures = 0
            while not self.stop.is_set():
                try:
                    events = await self.transport.fetch(self.spec.batch, 0.25)
                except Exception as exc:  # e.g. the connection dropped: retry a while, then give up (restart)
                    failures += 1
                    if failures > _MAX_FAILURES:
                        raise
                    _log.warning("stream %s: fetching failed (%s); retrying", self.metrics.endpoint, exc)
                    await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                    continue
                if not events:
                    continue
                if await self._batch(events):
                    failures = 0
                else:  # the broker refused or timed out: back off a little, then carry on
                    failures += 1
                    await asyncio.sleep(min(0.05 * 2**failures, 2.0))
        finally:
            await self.transport.close()

    async def _batch(self, events: list[Event]) -> bool:
        started = time.perf_counter()
        m = self.metrics
        m.consumed.inc(len(events))
        m.batch.observe(len(events))
        mirror = self.collector is not None
        result = score_events(events, self.router_provider(), self.versions, key=self.spec.key,
                              proba=self.spec.proba, mirror=mirror)  # fmt: skip
        try:
            await self.transport.commit(result.messages, events)
        except Exception as exc:  # not acknowledged: they come again (a duplicate at worst, never a loss)
            _log.warning("stream %s: publishing %d predictions failed (%s); the events will be delivered again",
                         m.endpoint, len(events), exc)  # fmt: skip
            m.errors.labels(m.endpoint, "publish").inc()
            try:
                await self.transport.nack(events)
            except Exception:
                _log.debug("stream: nack failed too", exc_info=True)
            return False
        latency = time.perf_counter() - started
        m.published.inc(len(events))
        m.latency.observe(latency)
        if result.errors:
            m.errors.labels(m.endpoint, "event").inc(result.errors)
        for ref, ids, data, predictions, columns in result.scored:
            m.scored.labels(m.endpoint, ref).inc(len(ids))
            if self.collector is not None:
                self.collector.record_rows(ids, ref, data, predictions, latency, columns=columns)
        if self.collector is not None and result.shadow:
            score_shadow(result, self.versions, self.collector, latency, self.spec.key)
        return True
