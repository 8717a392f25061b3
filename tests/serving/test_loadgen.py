"""The load generator against a real uvicorn server process: counts, statuses, chunked replies, fixed rate."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from mloop.errors import InvalidInput
from mloop.serving.loadgen import build_request, generate_load

BODY = b'[{"x": 1.5}]'


SERVER = """
import asyncio, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

seen = [0]
bodies = set()

async def echo(request):
    seen[0] += 1
    bodies.add(await request.body())
    return Response(b"x" * (seen[0] % 700), media_type="text/plain")  # varying lengths

async def odd(request):
    seen[0] += 1
    return Response(b"{}", status_code=200 if seen[0] % 2 else 503, headers={"Retry-After": "1"})

async def chunked(request):
    seen[0] += 1

    async def parts():
        for piece in (b"ab", b"0\\r\\n\\r\\n", b"", b"cd" * 3000):  # a piece that looks like the last chunk
            yield piece

    return StreamingResponse(parts())

async def slow(request):
    seen[0] += 1
    await asyncio.sleep(0.05)
    return Response(b"ok")

async def count(request):
    return Response(f"{seen[0]} {len(bodies)}".encode())

app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/odd", odd, methods=["POST"]),
                        Route("/chunked", chunked), Route("/slow", slow, methods=["POST"]), Route("/count", count)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
"""


class Server:
    """A Starlette app under uvicorn in its own process on a free loopback port; it counts what it answered."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port)])
        deadline = time.monotonic() + 30
        while True:
            try:
                self.count()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise
                time.sleep(0.05)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self) -> tuple[int, int]:
        """(requests answered, distinct request bodies seen)."""
        seen, bodies = httpx.get(self.url("/count"), timeout=5).text.split()
        return int(seen), int(bodies)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def test_closed_loop_counts_every_answer(server: Server) -> None:
    before, _ = server.count()
    r = generate_load(server.url("/echo"), BODY, concurrency=4, duration=0.6)
    assert r.requests > 50 and r.errors == 0 and r.status_counts == {200: r.requests}
    seen, bodies = server.count()
    assert seen - before == r.requests and bodies == 1  # none lost or counted twice (no warm-up here); one body
    assert r.latencies.shape == r.statuses.shape == (r.requests,)
    assert 0 < r.percentile(50) <= r.percentile(99) < 1.0  # type: ignore[operator]
    assert r.throughput == pytest.approx(r.requests / r.seconds) and 0.6 <= r.seconds < 1.5
    s = r.summary()
    assert s["requests"] == r.requests and s["statuses"] == {"200": r.requests} and s["p50_ms"] > 0


def test_statuses_by_code_and_warmup_unrecorded(server: Server) -> None:
    before, _ = server.count()
    r = generate_load(server.url("/odd"), b"{}", concurrency=2, duration=0.5, warmup=0.2)
    assert set(r.status_counts) == {200, 503} and abs(r.count(200) - r.count(503)) <= 2
    assert server.count()[0] - before > r.requests  # the warm-up's requests were answered but not recorded
    assert r.percentile(99, status=503) is not None and r.percentile(99, status=404) is None


def test_chunked_replies_are_parsed(server: Server) -> None:
    before, _ = server.count()
    r = generate_load(server.url("/chunked"), None, concurrency=2, duration=0.4)
    assert r.requests > 5 and r.errors == 0 and r.status_counts == {200: r.requests}
    assert server.count()[0] - before == r.requests


def test_fixed_rate_holds_the_rate(server: Server) -> None:
    r = generate_load(server.url("/echo"), BODY, concurrency=4, duration=1.0, rate=200)
    assert r.rate == 200 and r.unsent == 0 and r.requests == 200 and r.errors == 0


def test_fixed_rate_counts_latency_from_when_due(server: Server) -> None:
    # one connection, 50 ms a request, 100 requests/s due: the backlog grows, so latency does too
    r = generate_load(server.url("/slow"), b"{}", concurrency=1, duration=1.0, rate=100)
    assert 14 <= r.requests <= 21 and r.unsent > 50
    assert r.percentile(99) > 0.5 and r.percentile(1) > 0.04  # type: ignore[operator]
    assert r.service is not None and r.service.shape == r.latencies.shape  # sent -> answered: ~50 ms each
    assert 0.045 < r.service_percentile(50) < 0.2 < r.percentile(50)  # type: ignore[operator]


def test_refused_connections_are_errors_not_exceptions() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connects are refused
        r = generate_load(f"http://127.0.0.1:{port}/x", BODY, concurrency=2, duration=0.3)
    assert r.requests == 0 and r.errors >= 2 and "ConnectionRefusedError" in r.error_samples[0]


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(InvalidInput, match="Concurrency must be at least 1 connection, got 0"):
        generate_load("http://127.0.0.1:9/x", concurrency=0)
    with pytest.raises(InvalidInput, match="Duration must be positive seconds, got -1"):
        generate_load("http://127.0.0.1:9/x", duration=-1)
    with pytest.raises(InvalidInput, match=r"Rate must be positive.*got 0"):
        generate_load("http://127.0.0.1:9/x", rate=0)
    with pytest.raises(InvalidInput, match="'https://h:1/x' must be http://HOST:PORT/PATH"):
        generate_load("https://h:1/x")


def test_request_bytes() -> None:
    raw = build_request("h", 8, "/p?q=1", b"[1]")
    assert raw == (b"POST /p?q=1 HTTP/1.1\r\nHost: h:8\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 3\r\n\r\n[1]")  # fmt: skip
    assert build_request("h", 8, "/", None).startswith(b"GET / HTTP/1.1\r\n")
