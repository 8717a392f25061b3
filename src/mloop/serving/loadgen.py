"""A closed-loop (or fixed-rate) HTTP/1.1 keep-alive load generator in pure asyncio.

Each of ``concurrency`` connections is one :class:`asyncio.Protocol` on a raw transport: the request bytes
(one fixed body) are built once, and the reply is parsed from the socket's bytes (status line,
``Content-Length`` or chunked), with no per-request client objects. **Closed loop** (the default): every
connection sends its next request as soon as the previous answer arrives, so throughput is what the server
sustains at that concurrency. **Fixed rate** (``rate=R``): request *k* is due at ``start + k / R`` whatever
the server does; a free connection takes the next due request, and its latency is counted from when it was
due, not from when it was sent (no coordinated omission: a stalled server shows up as latency, as in wrk2).
With too few connections for the rate, due requests wait for one and that wait is part of their latency.

:func:`generate_load` returns a :class:`LoadResult`: per-request latency and status (numpy arrays, in
completion order), transport errors, the measured span and throughput. ``bench/bench_serve.py`` compares it
with ``wrk`` on a bare Starlette app; ``mloop profile`` (:mod:`mloop.serving.profile`) drives the scoring
server with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LoadResult", "build_request", "generate_load", "run_load"]

_HEADER_END = b"\r\n\r\n"


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured. ``latencies`` (seconds) and ``statuses`` are per completed request."""

    latencies: np.ndarray
    statuses: np.ndarray
    seconds: float
    concurrency: int
    rate: float | None = None
    errors: int = 0
    error_samples: tuple[str, ...] = ()
    status_counts: dict[int, int] = field(default_factory=dict)
    unsent: int = 0  # fixed rate: requests that fell due but found no free connection before the end
    service: np.ndarray | None = None  # seconds from sending to the answer (fixed rate; closed loop: = latencies)

    @property
    def requests(self) -> int:
        return int(self.latencies.size)

    @property
    def throughput(self) -> float:
        """Completed requests (any status) a second over the measured span."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float, status: int | None = None) -> float | None:
        """The ``q``-th percentile latency in seconds (of requests answered ``status`` only, if given)."""
        import numpy as np

        values = self.latencies if status is None else self.latencies[self.statuses == status]
        return float(np.percentile(values, q)) if values.size else None

    def service_percentile(self, q: float, status: int | None = None) -> float | None:
        """Like :meth:`percentile`, of the time from sending a request to its answer (no wait for a connection)."""
        import numpy as np

        service = self.latencies if self.service is None else self.service
        values = service if status is None else service[self.statuses == status]
        return float(np.percentile(values, q)) if values.size else None

    def count(self, status: int) -> int:
        return self.status_counts.get(status, 0)

    def summary(self) -> dict[str, Any]:
        """Plain figures: requests, throughput, p50/p90/p99 (ms), status counts and transport errors."""

        def ms(q: float) -> float | None:
            value = self.percentile(q)
            return None if value is None else round(value * 1000, 3)

        return {
            "concurrency": self.concurrency, "rate": self.rate, "seconds": round(self.seconds, 3),
            "requests": self.requests, "throughput": round(self.throughput, 1), "p50_ms": ms(50), "p90_ms": ms(90),
            "p99_ms": ms(99), "statuses": {str(k): v for k, v in sorted(self.status_counts.items())},
            "errors": self.errors, "unsent": self.unsent,
        }  # fmt: skip


def build_request(
    host: str, port: int, path: str, body: bytes | None, *, method: str | None = None,
    content_type: str = "application/json", headers: dict[str, str] | None = None,
) -> bytes:  # fmt: skip
    """The bytes of one HTTP/1.1 keep-alive request (``POST`` when there is a body, else ``GET``)."""
    verb = method or ("POST" if body is not None else "GET")
    lines = [f"{verb} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Connection(asyncio.Protocol):
    """One keep-alive connection, driven by callbacks: a complete reply goes straight to :meth:`_Run.answered`,
    which may write the next request from inside ``data_received`` (no future or task switch per request)."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.status = 0
        self.need = -1  # body bytes still expected; -1: reading headers, -2: chunked body
        self.started: float | None = None  # when the request in flight started (or was due); None: idle
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.run.connected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self, exc)

    def send(self, started: float) -> None:
        assert self.transport is not None
        self.started = started
        self.sent = self.run.clock()
        self.transport.write(self.run.payload)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self._parse():
            pass

    def _parse(self) -> bool:
        buf = self.buf
        if self.need == -1:
            end = buf.find(_HEADER_END)
            if end < 0:
                return False
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            del buf[: end + 4]
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                self.need = int(head[at + 17 : stop if stop >= 0 else len(head)])
            elif b"transfer-encoding: chunked" in head:
                self.need = -2
            else:
                self.need = 0
        if self.need == -2:
            if not self._chunks():
                return False
        else:
            if len(buf) < self.need:
                return False
            del buf[: self.need]
        self.need = -1
        started, self.started = self.started, None
        if started is not None:
            self.run.answered(self, started, self.sent, self.status)
        return bool(buf)

    def _chunks(self) -> bool:
        """Consume the complete chunks of a chunked body; True once the last (zero-length) one and the trailers
        are in."""
        buf = self.buf
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", line_end - 2) if buf[line_end + 2 : line_end + 4] != b"\r\n" else line_end
                if end < 0 or len(buf) < end + 4:
                    return False
                del buf[: end + 4]
                return True
            if len(buf) < line_end + 2 + size + 2:
                return False
            del buf[: line_end + 2 + size + 2]


class _Run:
    """The state of one load run: the connections, what was recorded, and (fixed rate) the due requests."""

    def __init__(self, host: str, port: int, payload: bytes, concurrency: int, rate: float | None,
                 warmup: float, duration: float, timeout: float) -> None:  # fmt: skip
        self.loop = asyncio.get_running_loop()
        self.host, self.port, self.payload = host, port, payload
        self.concurrency, self.rate, self.timeout = concurrency, rate, timeout
        self.clock = time.perf_counter
        self.began = self.clock()
        self.record_from = self.began + warmup
        self.stop_at = self.record_from + duration
        self.lat: list[float] = []
        self.svc: list[float] = []
        self.codes: list[int] = []
        self.errors: list[str] = []
        self.conns: set[_Connection] = set()
        self.idle: deque[_Connection] = deque()
        self.backlog: deque[float] = deque()  # fixed rate: due times waiting for a free connection
        self.next_due = 0  # fixed rate: index of the next request to fall due
        self.unsent = 0  # fixed rate: due requests no connection was free to send before the end
        self.stopping = False
        self.connecting = 0
        self.done: asyncio.Future[None] = self.loop.create_future()

    # ------------------------------------------------------------------ connections

    def open(self) -> None:
        if self.stopping:
            return
        self.connecting += 1
        task = self.loop.create_task(self.loop.create_connection(lambda: _Connection(self), self.host, self.port))
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[Any]) -> None:
        self.connecting -= 1
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._error(f"{type(exc).__name__}: {exc}", self.clock())
            if not self.stopping:
                self.loop.call_later(0.05, self.open)  # a refused connect must not spin
        self._check_done()

    def connected(self, conn: _Connection) -> None:
        self.conns.add(conn)
        if self.stopping:
            self.conns.discard(conn)
            if conn.transport is not None:
                conn.transport.close()
            return
        self._next(conn, self.clock())

    def lost(self, conn: _Connection, exc: Exception | None) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.started is not None:
            self._error(f"ConnectionError: closed with a request in flight ({exc or 'EOF'})", conn.started)
        if not self.stopping:
            self.open()
        self._check_done()

    def _error(self, message: str, started: float) -> None:
        if started >= self.record_from:
            self.errors.append(message)

    # ------------------------------------------------------------------ requests

    def answered(self, conn: _Connection, started: float, sent: float, status: int) -> None:
        now = self.clock()
        if started >= self.record_from:
            self.lat.append(now - started)
            self.svc.append(now - sent)
            self.codes.append(status)
        self._next(conn, now)

    def _next(self, conn: _Connection, now: float) -> None:
        if self.rate is None:
            if now < self.stop_at:
                conn.send(now)
                return
        elif self.backlog:
            conn.send(self.backlog.popleft())
            return
        elif not self.stopping:
            self.idle.append(conn)
            return
        if conn.transport is not None:
            self.conns.discard(conn)
            conn.transport.close()
        self._check_done()

    def tick(self) -> None:
        """Fixed rate: hand every request now due to a free connection (or the backlog); every millisecond."""
        assert self.rate is not None
        now = self.clock()
        while True:
            due = self.began + self.next_due / self.rate
            if due > now or due >= self.stop_at:
                break
            self.next_due += 1
            if self.idle:
                self.idle.popleft().send(due)
            else:
                self.backlog.append(due)
        if now < self.stop_at:
            self.loop.call_later(0.001, self.tick)
        else:
            self.stop()

    def watchdog(self) -> None:
        """Abort connections whose request has waited longer than the timeout (counted as errors)."""
        limit = self.clock() - self.timeout
        for conn in list(self.conns):
            if conn.started is not None and conn.started < limit and conn.transport is not None:
                conn.transport.abort()
        if not self.done.done():
            self.loop.call_later(min(1.0, self.timeout / 4), self.watchdog)

    def stop(self) -> None:
        self.stopping = True
        self.unsent += len(self.backlog)
        self.backlog.clear()
        while self.idle:
            conn = self.idle.popleft()
            self.conns.discard(conn)
            if conn.transport is not None:
                conn.transport.close()
        self._check_done()

    def _check_done(self) -> None:
        if self.stopping and not self.conns and not self.connecting and not self.done.done():
            self.done.set_result(None)


async def run_load(
    host: str, port: int, path: str, body: bytes | None = None, *, concurrency: int = 8, duration: float = 5.0,
    rate: float | None = None, warmup: float = 0.0, timeout: float = 30.0, headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> LoadResult:  # fmt: skip
    """Drive ``http://host:port{path}`` for ``duration`` seconds (after ``warmup`` unrecorded seconds)."""
    if concurrency < 1:
        raise InvalidInput(f"Concurrency must be at least 1 connection, got {concurrency}.")
    if duration <= 0:
        raise InvalidInput(f"Duration must be positive seconds, got {duration}.")
    if rate is not None and rate <= 0:
        raise InvalidInput(f"Rate must be positive requests a second (or None for a closed loop), got {rate}.")
    import numpy as np

    payload = build_request(host, port, path, body, headers=headers, content_type=content_type)
    run = _Run(host, port, payload, concurrency, rate, warmup, duration, timeout)
    for _ in range(concurrency):
        run.open()
    run.watchdog()
    if rate is not None:
        run.tick()
    else:
        run.loop.call_at(run.loop.time() + (run.stop_at - run.clock()), run.stop)
    await run.done
    ended = run.clock()
    seconds = run.stop_at - run.record_from if run.rate is not None else max(ended, run.stop_at) - run.record_from
    return LoadResult(
        latencies=np.asarray(run.lat, dtype=np.float64), statuses=np.asarray(run.codes, dtype=np.int16),
        seconds=seconds, concurrency=concurrency, rate=rate, errors=len(run.errors),
        error_samples=tuple(dict.fromkeys(run.errors))[:5], status_counts=dict(Counter(run.codes)),
        unsent=run.unsent, service=None if rate is None else np.asarray(run.svc, dtype=np.float64),
    )  # fmt: skip


def generate_load(
    url: str, body: bytes | None = None, *, concurrency: int = 8, duration: float = 5.0, rate: float | None = None,
    warmup: float = 0.0, timeout: float = 30.0, headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> LoadResult:  # fmt: skip
    """:func:`run_load` on ``url`` (``http://host:port/path``) from synchronous code (its own event loop)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise InvalidInput(f"Load URL {url!r} must be http://HOST:PORT/PATH (plain HTTP with an explicit port).")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return asyncio.run(
        run_load(parts.hostname, parts.port, path, body, concurrency=concurrency, duration=duration, rate=rate,
                 warmup=warmup, timeout=timeout, headers=headers, content_type=content_type)
    )  # fmt: skip
