"""Helpers of the streaming tests: a broker per transport (real NATS JetStream and Redis on this machine, with
uniquely named streams deleted afterwards), registered models, and a consumer running in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379"


class NatsBroker:
    """Input stream IN_<uid> on s<uid>.in and output stream OUT_<uid> on s<uid>.out (made here, deleted here)."""

    kind = "nats"

    def __init__(self) -> None:
        self.uid = uuid.uuid4().hex[:12]
        self.subject, self.out = f"s{self.uid}.in", f"s{self.uid}.out"
        self.streams = [f"IN_{self.uid}", f"OUT_{self.uid}"]
        self._run(self._setup())

    def _run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    async def _connect(self) -> Any:
        import nats

        return await nats.connect(NATS_URL)

    async def _setup(self) -> None:
        nc = await self._connect()
        js = nc.jetstream()
        await js.add_stream(name=self.streams[0], subjects=[self.subject])
        await js.add_stream(name=self.streams[1], subjects=[self.out])
        await nc.close()

    def url(self, **options: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"out": self.out, **options}.items())
        return f"{NATS_URL}/{self.subject}?{query}"

    def publish(self, payloads: Sequence[bytes]) -> None:
        async def go() -> None:
            nc = await self._connect()
            for i, p in enumerate(payloads):
                await nc.publish(self.subject, p)
                if i % 5000 == 4999:
                    await nc.flush()
            await nc.flush()
            await nc.close()

        self._run(go())

    def read(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """At least ``n`` output messages (all there are once ``n`` arrived or the time is up), in order."""

        async def go() -> list[dict[str, Any]]:
            from nats.js.api import AckPolicy, ConsumerConfig

            nc = await self._connect()
            js = nc.jetstream()
            deadline = time.monotonic() + timeout
            while True:
                info = await js.stream_info(self.streams[1])
                if info.state.messages >= n or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            out: list[dict[str, Any]] = []
            try:
                config = ConsumerConfig(ack_policy=AckPolicy.NONE)
                sub = await js.pull_subscribe(self.out, stream=self.streams[1], config=config)
                while len(out) < info.state.messages:
                    msgs = await sub.fetch(min(1000, info.state.messages - len(out)), timeout=5)
                    out.extend(orjson.loads(m.data) for m in msgs)
            finally:
                await nc.close()
            return out

        result: list[dict[str, Any]] = self._run(go())
        return result

    def pending(self, group: str) -> int:
        """Events delivered to ``group`` and not acknowledged, plus those not delivered yet."""

        async def go() -> int:
            nc = await self._connect()
            info = await nc.jetstream().consumer_info(self.streams[0], group)
            await nc.close()
            return int(info.num_ack_pending + info.num_pending)

        result: int = self._run(go())
        return result

    def close(self, extra_streams: Sequence[str] = ()) -> None:
        async def go() -> None:
            nc = await self._connect()
            js = nc.jetstream()
            for name in [*self.streams, *extra_streams]:
                with contextlib.suppress(Exception):  # not created (e.g. the consumer never started)
                    await js.delete_stream(name)
            await nc.close()

        self._run(go())


class RedisBroker:
    """Input stream s<uid>:in and output s<uid>:out (keys deleted afterwards)."""

    kind = "redis"

    def __init__(self) -> None:
        import redis

        self.uid = uuid.uuid4().hex[:12]
        self.subject, self.out = f"s{self.uid}:in", f"s{self.uid}:out"
        self.r = redis.Redis.from_url(REDIS_URL)

    def url(self, **options: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"out": self.out, **options}.items())
        return f"{REDIS_URL}/{self.subject}?{query}"

    def publish(self, payloads: Sequence[bytes], field: str = "data") -> None:
        for start in range(0, len(payloads), 5000):
            pipe = self.r.pipeline(transaction=False)
            for p in payloads[start : start + 5000]:
                pipe.xadd(self.subject, {field: p})
            pipe.execute()

    def read(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while self.r.xlen(self.out) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return [orjson.loads(fields[b"data"]) for _, fields in self.r.xrange(self.out)]

    def pending(self, group: str) -> int:
        info = {g["name"].decode(): g for g in self.r.xinfo_groups(self.subject)}[group]
        return int(info["pending"]) + int(info.get("lag") or 0)

    def close(self, extra_streams: Sequence[str] = ()) -> None:
        self.r.delete(self.subject, self.out, *extra_streams)
        self.r.close()


class Consumer:
    """``run_stream`` in a thread until :meth:`close` (graceful stop); start-up errors are raised here."""

    def __init__(self, context: Any, url: str, router: Callable[[], Any], *, endpoint: str = "ep",
                 collector: Any = None) -> None:  # fmt: skip
        from mloop.deployments.streaming import StreamMetrics, run_stream

        self.stop, self.ready = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.metrics = StreamMetrics(endpoint)

        def target() -> None:
            try:
                run_stream(context, url, endpoint=endpoint, router_provider=router, collector=collector,
                           stop=self.stop, ready=self.ready, metrics=self.metrics)  # fmt: skip
            except BaseException as exc:
                self.error = exc
                self.ready.set()

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error

    def value(self, name: str, **labels: str) -> float:
        got = self.metrics.registry.get_sample_value(name, {"endpoint": "ep", **labels})
        return float(got or 0.0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the consumer did not stop within 30 s"
        if self.error is not None:
            raise self.error


def events(frame: Any, start: int = 0) -> list[bytes]:
    """One JSON event per row of ``frame``, with an ``id`` field (``e<n>``)."""
    return [orjson.dumps({"id": f"e{start + i}", **row}) for i, row in enumerate(frame.to_dict("records"))]


CONSUMER_SCRIPT = """
import signal, sys, threading
from pathlib import Path
from mloop.context import Context
from mloop.deployments.router import Router
from mloop.deployments.streaming import run_stream
from mloop.workspace import open_workspace

context = Context(workspace=open_workspace(cwd=Path(sys.argv[1])))
stop, ready = threading.Event(), threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
threading.Thread(target=lambda: ready.wait() and print("ready", flush=True), daemon=True).start()
run_stream(context, sys.argv[2], endpoint="ep", router_provider=lambda: Router({sys.argv[3]: 1}), stop=stop,
           ready=ready)
"""


def consumer_process(workspace: Any, url: str, ref: str = "model:lr/1") -> Any:
    """A consumer in its own process (for kill -9), started and ready (its first stdout line)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", CONSUMER_SCRIPT, str(workspace), url, ref],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"the consumer process did not start (exit {proc.wait()})")
    return proc
