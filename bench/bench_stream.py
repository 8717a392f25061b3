"""Streaming scoring throughput (issue #12): consume -> predict -> publish -> ack, NATS JetStream and Redis Streams.

    .venv/bin/python bench/bench_stream.py [--events 200000] [--rounds 3] [--batch 1000] [--transports nats,redis]
                                           [--kill-events 50000] [--json] [--save PATH]

(``bench/run.sh`` installs mloop without the ``stream`` extra; run it with the project's venv, which has nats-py
and redis, against the brokers on this machine: NATS with JetStream at 127.0.0.1:4222, Redis at :6379.)

Set-up (untimed): a scikit-learn LogisticRegression on 10 float columns registered in a fresh workspace; per
round and transport, fresh uniquely named input and output streams are created and ``--events`` JSON events
(``{"id": "e<n>", "f0": ..., ..., "f9": ...}``) are pre-loaded into the input (core publishes / pipelined
``XADD``), then deleted afterwards.

Timed: :func:`mloop.deployments.streaming.run_stream` (the code an endpoint runs) in a thread, from ``ready``
(connected, model loaded) until its ``mloop_stream_predictions_published_total`` reaches ``--events``: every
event fetched, decoded, validated, scored (one predict call per micro-batch), its prediction published and
confirmed by the broker, and the event acknowledged. Each round then reads the output back: one prediction per
event, and the predictions of a sample equal the model's own.

CPU: the consumer's CPU time (this process, all threads) and the broker's (``nats-server`` / ``redis-server``
read from /proc) per event over the same interval: less sensitive than wall time to other jobs on the machine.

Ceiling: the same transport classes with no scoring (each event's bytes published as its "prediction"): what the
broker plus its Python client allow on this machine, so the scoring share can be read off.

Kill -9: ``--kill-events`` events; a consumer process is killed with SIGKILL once about a third of them have
predictions, a new one is started with the same URL (``ack_wait=2`` for NATS), and when it is done every event
id is counted: lost (no prediction) must be 0; duplicates (at least once) are reported.

Bar (issue #12): >= 20,000 events/s end to end for the logistic regression, zero lost across kill -9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

NATS, REDIS = "nats://127.0.0.1:4222", "redis://127.0.0.1:6379"
COLUMNS = [f"f{i}" for i in range(10)]


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--transports", default="nats,redis")
    p.add_argument("--kill-events", type=int, default=50_000)
    p.add_argument("--json", action="store_true")
    p.add_argument("--save", default=None)
    return p.parse_args()


def setup(workdir: Path) -> tuple[Any, Any, list[bytes], pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.tracking.client import Client

    client = Client(workspace=mloop.init_workspace(workdir / "ws"))
    mloop.use_client(client)
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(1000, 10)), columns=COLUMNS)
    model = LogisticRegression().fit(x, (x["f0"] + x["f1"] - x["f2"] > 0).astype(int))
    with mloop.start_run("bench-stream") as run:
        run.log_model(model, "lr", signature_data=x)
    return client, model, [orjson.dumps(r) for r in x.to_dict("records")], x


class Streams:
    """One round's uniquely named input/output streams on one broker (pre-load, count, read, delete)."""

    def __init__(self, kind: str) -> None:
        self.kind, self.uid = kind, uuid.uuid4().hex[:10]
        if kind == "nats":
            self.input, self.out = f"bench{self.uid}.in", f"bench{self.uid}.out"
            self.names = [f"BIN_{self.uid}", f"BOUT_{self.uid}"]
            asyncio.run(self._nats(self._create))
        else:
            import redis

            self.input, self.out = f"bench{self.uid}:in", f"bench{self.uid}:out"
            self.r = redis.Redis.from_url(REDIS)

    async def _nats(self, fn: Any, *args: Any) -> Any:
        import nats

        nc = await nats.connect(NATS)
        try:
            return await fn(nc, *args)
        finally:
            await nc.close()

    async def _create(self, nc: Any) -> None:
        js = nc.jetstream()
        await js.add_stream(name=self.names[0], subjects=[self.input])
        await js.add_stream(name=self.names[1], subjects=[self.out])

    def url(self, batch: int, **extra: Any) -> str:
        base = NATS if self.kind == "nats" else REDIS
        query = "&".join(f"{k}={v}" for k, v in {"out": self.out, "batch": batch, "key": "id", **extra}.items())
        return f"{base}/{self.input}?{query}"

    def preload(self, rows: list[bytes], n: int) -> None:
        payloads = (b'{"id":"e%d",' % i + rows[i % len(rows)][1:] for i in range(n))
        if self.kind == "nats":

            async def go(nc: Any) -> None:
                for i, p in enumerate(payloads):
                    await nc.publish(self.input, p)
                    if i % 20_000 == 19_999:
                        await nc.flush()
                await nc.flush()

            asyncio.run(self._nats(go))
            while self.count(0) < n:
                time.sleep(0.05)
        else:
            pipe = self.r.pipeline(transaction=False)
            for i, p in enumerate(payloads):
                pipe.xadd(self.input, {"data": p})
                if i % 10_000 == 9_999:
                    pipe.execute()
            pipe.execute()

    def count(self, which: int = 1) -> int:
        if self.kind == "redis":
            return int(self.r.xlen(self.out if which else self.input))

        async def go(nc: Any) -> int:
            return int((await nc.jetstream().stream_info(self.names[which])).state.messages)

        result: int = asyncio.run(self._nats(go))
        return result

    def read(self) -> list[dict[str, Any]]:
        if self.kind == "redis":
            out: list[dict[str, Any]] = []
            start = "-"
            while True:
                chunk = self.r.xrange(self.out, min=start, count=20_000)
                if not chunk:
                    return out
                out.extend(orjson.loads(f[b"data"]) for _, f in chunk)
                start = "(" + chunk[-1][0].decode()  # exclusive

        async def go(nc: Any) -> list[dict[str, Any]]:
            from nats.js.api import AckPolicy, ConsumerConfig

            js, got = nc.jetstream(), []
            total = (await js.stream_info(self.names[1])).state.messages
            sub = await js.pull_subscribe(self.out, stream=self.names[1], config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, max_ack_pending=-1))  # fmt: skip
            while len(got) < total:
                got.extend(orjson.loads(m.data) for m in await sub.fetch(min(5000, total - len(got)), timeout=10))
            return got

        result: list[dict[str, Any]] = asyncio.run(self._nats(go))
        return result

    def delete(self) -> None:
        if self.kind == "redis":
            self.r.delete(self.input, self.out)
            self.r.close()
            return

        async def go(nc: Any) -> None:
            for name in self.names:
                await nc.jetstream().delete_stream(name)

        asyncio.run(self._nats(go))


def broker_pid(kind: str) -> int | None:
    """The broker's process on this machine (read-only: its CPU time from /proc), if there is one."""
    name = "nats-server" if kind == "nats" else "redis-server"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    return int(entry.name)
            except OSError:
                continue
    return None


def cpu_now(pid: int | None) -> tuple[float, float]:
    """(this process's CPU seconds, all threads; the broker's CPU seconds or nan)."""
    broker = float("nan")
    if pid is not None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            broker = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return time.process_time(), broker


class Timing:
    """One timed run: wall seconds, and CPU seconds of the consumer (this process) and of the broker."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.wall, self.cpu, self.broker = 0.0, 0.0, 0.0

    def start(self) -> None:
        self._t, (self._c, self._b) = time.perf_counter(), cpu_now(self.pid)

    def stop(self) -> None:
        c, b = cpu_now(self.pid)
        self.wall, self.cpu, self.broker = time.perf_counter() - self._t, c - self._c, b - self._b

    def per_event(self, n: int) -> dict[str, float]:
        return {
            "events_s": n / self.wall,
            "consumer_cpu_us": self.cpu / n * 1e6,
            "broker_cpu_us": self.broker / n * 1e6,
        }


def scored_round(client: Any, streams: Streams, n: int, batch: int, timing: Timing) -> None:
    from mloop.deployments.router import Router
    from mloop.deployments.streaming import StreamMetrics, run_stream

    stop, ready, metrics = threading.Event(), threading.Event(), StreamMetrics("bench")

    def watch() -> None:
        ready.wait()
        timing.start()
        while (metrics.registry.get_sample_value("mloop_stream_predictions_published_total",
                                                 {"endpoint": "bench"}) or 0) < n:  # fmt: skip
            time.sleep(0.01)  # a scrape of the registry costs CPU: not too often
        timing.stop()
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    run_stream(client, streams.url(batch), endpoint="bench", router_provider=lambda: Router({"model:lr/1": 1}),
               stop=stop, ready=ready, metrics=metrics)  # fmt: skip


def ceiling_round(streams: Streams, n: int, batch: int, timing: Timing) -> None:
    """The transport alone: fetch, publish each event's bytes back, wait for the broker, acknowledge."""
    from mloop.deployments.streaming import parse_stream_url, transport_for

    async def go() -> None:
        transport = transport_for(parse_stream_url(streams.url(batch), "bench"))
        await transport.open()
        done = 0
        timing.start()
        while done < n:
            events = await transport.fetch(batch, 0.25)
            if events:
                await transport.commit([e.data for e in events], events)
                done += len(events)
        timing.stop()
        await transport.close()

    asyncio.run(go())


def check(streams: Streams, n: int, model: Any, frame: pd.DataFrame) -> dict[str, Any]:
    outputs = streams.read()
    ids = Counter(o["id"] for o in outputs)
    sample = [o for o in outputs[:2000] if "prediction" in o]
    rows = [int(o["id"][1:]) % len(frame) for o in sample]
    expected = model.predict(frame.iloc[rows])
    wrong = sum(int(o["prediction"] != e) for o, e in zip(sample, expected, strict=True))
    return {"outputs": len(outputs), "lost": n - len(ids), "duplicates": len(outputs) - len(ids), "wrong": wrong}


_CONSUMER = """
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
run_stream(context, sys.argv[2], endpoint="bench", router_provider=lambda: Router({"model:lr/1": 1}), stop=stop,
           ready=ready)
"""


def _process(workdir: Path, url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _CONSUMER, str(workdir / "ws"), url], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "consumer did not start"
    return proc


def kill_round(workdir: Path, streams: Streams, rows: list[bytes], n: int, batch: int, model: Any,
               frame: pd.DataFrame) -> dict[str, Any]:  # fmt: skip
    streams.preload(rows, n)
    url = streams.url(batch, ack_wait=2) if streams.kind == "nats" else streams.url(batch)
    first = _process(workdir, url)
    while streams.count() < n // 3:
        time.sleep(0.005)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = streams.count()
    second = _process(workdir, url)
    deadline = time.monotonic() + 120
    result: dict[str, Any] = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if streams.count() >= n:
            result = check(streams, n, model, frame)
            if result["lost"] == 0:
                break
    second.send_signal(signal.SIGTERM)
    second.wait(30)
    for proc in (first, second):
        assert proc.stdout is not None
        proc.stdout.close()
    return {"events": n, "predictions_at_kill": killed_at, **result}


def _fmt(t: dict[str, float]) -> str:
    return (f"{t['events_s']:,.0f} events/s, CPU {t['consumer_cpu_us']:.1f} µs consumer + "
            f"{t['broker_cpu_us']:.1f} µs broker per event")  # fmt: skip


def main() -> None:
    args = _args()
    kinds = [k for k in args.transports.split(",") if k]
    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    client, model, rows, frame = setup(workdir)
    doc: dict[str, Any] = {"events": args.events, "batch": args.batch, "rounds": args.rounds, "by": {},
                           "load_before": os.getloadavg()}  # fmt: skip
    for kind in kinds:
        pid = broker_pid(kind)
        scored: list[dict[str, float]] = []
        ceiling: list[dict[str, float]] = []
        checks: list[dict[str, Any]] = []
        for r in range(args.rounds):
            for mode in ("scored", "ceiling") if r % 2 == 0 else ("ceiling", "scored"):
                streams = Streams(kind)
                try:
                    streams.preload(rows, args.events)
                    timing = Timing(pid)
                    if mode == "scored":
                        scored_round(client, streams, args.events, args.batch, timing)
                        scored.append(timing.per_event(args.events))
                        checks.append(check(streams, args.events, model, frame))
                    else:
                        ceiling_round(streams, args.events, args.batch, timing)
                        ceiling.append(timing.per_event(args.events))
                finally:
                    streams.delete()
            print(f"{kind} round {r + 1} (load {os.getloadavg()[0]:.1f}): scored {_fmt(scored[-1])}; ceiling "
                  f"{_fmt(ceiling[-1])}; check {checks[-1]}", file=sys.stderr)  # fmt: skip
        streams = Streams(kind)
        try:
            killed = kill_round(workdir, streams, rows, args.kill_events, args.batch, model, frame)
        finally:
            streams.delete()
        print(f"{kind} kill -9: {killed}", file=sys.stderr)
        median = {m: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                  for m, runs in (("scored", scored), ("ceiling", ceiling))}  # fmt: skip
        doc["by"][kind] = {"scored": scored, "ceiling": ceiling, "checks": checks, "kill": killed, "median": median}
    doc["load_after"] = os.getloadavg()
    print(f"\nStreaming scoring, {args.events:,} events, batch {args.batch}, {args.rounds} rounds (medians; CPU in "
          "µs per event)")  # fmt: skip
    print(f"{'transport':10} {'scored ev/s':>12} {'consumer CPU':>13} {'broker CPU':>11} {'ceiling ev/s':>13} "
          f"{'consumer CPU':>13} {'broker CPU':>11} {'lost':>5} {'dups':>5}")  # fmt: skip
    for kind, d in doc["by"].items():
        s_, c_ = d["median"]["scored"], d["median"]["ceiling"]
        print(f"{kind:10} {s_['events_s']:12,.0f} {s_['consumer_cpu_us']:13.1f} {s_['broker_cpu_us']:11.1f} "
              f"{c_['events_s']:13,.0f} {c_['consumer_cpu_us']:13.1f} {c_['broker_cpu_us']:11.1f} "
              f"{d['kill'].get('lost', '?'):>5} {d['kill'].get('duplicates', '?'):>5}")  # fmt: skip
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    if args.save:
        Path(args.save).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    client.close()


if __name__ == "__main__":
    main()
