"""The sides of ``bench_deploy.py``, set up untimed: the model versions, the servers, their CPU and metrics.

* ``serve``     ``mloop serve model:bench/1`` (one uvicorn worker, default batching, no collector): the baseline.
* ``endpoint``  an endpoint with one version (``endpoints.create(ctx, "plain", ["bench/1"], collect=False)``):
                the supervisor and its server process; what the router adds over ``serve``.
* ``shadow``    an endpoint answering with ``bench/1`` and mirroring 100% of the requests to ``bench/2``
                (the same LogisticRegression refitted with ``C=0.05``), collector off.
* ``shadow-probe``, ``endpoint-probe``, ``shadow-replay``, ``shadow-tuned``: the same endpoints served by
                ``probe.py`` (the engine's ``EndpointApp`` with bench-only instruments: drain batch sizes and CPU,
                GC pauses; ``shadow-replay`` with the bulk drain off, ``shadow-tuned`` with the drain changes that
                RESULTS §19 proposes), without a supervisor.

Pinning: each server must run on CPU 0 and nothing of the driver there. ``mloop serve`` is started with
``Popen`` and pinned before it imports anything (its threads inherit the affinity); an endpoint's supervisor is
started by ``endpoints.start`` from the driver's own thread, so the driver's thread is moved to CPU 0 for that
call only (:func:`on_cpus`): the supervisor, the server process it starts and all their threads inherit it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from _serve.servers import BIN, Server, free_port

__all__ = [
    "ALL_SIDES",
    "ENDPOINT_SIDES",
    "SIDES",
    "EndpointSide",
    "ScriptSide",
    "ServeSide",
    "metric_sum",
    "on_cpus",
    "setup",
]

SIDES = ("serve", "endpoint", "shadow", "shadow-probe")  # the default run
# name: (endpoint name, with the shadow, served by probe.py with these flags or None: the supervisor's worker)
ENDPOINT_SIDES: dict[str, tuple[str, bool, list[str] | None]] = {
    "endpoint": ("plain", False, None),
    "shadow": ("shadowed", True, None),
    "shadow-probe": ("probe", True, []),
    "endpoint-probe": ("plain-probe", False, []),
    "shadow-replay": ("replay", True, ["--replay"]),
    "shadow-tuned": ("tuned", True, ["--tuned"]),
}
ALL_SIDES = ("serve", *ENDPOINT_SIDES)
FEATURES = [f"f{i}" for i in range(10)]
LIVE, SHADOW = "model:bench/1", "model:bench/2"


def setup(folder: Path) -> dict[str, Any]:
    """``model:bench/1`` (LogisticRegression, C=1) and ``model:bench/2`` (C=0.05, same data) in a fresh
    workspace; the single-row request body of ``bench_serve.py`` and each version's expected answer."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.tracking.client import Client

    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(5000, len(FEATURES))), columns=FEATURES)
    y = (train["f0"] + train["f1"] * 0.5 > 0).astype(int)
    client = Client(workspace=mloop.init_workspace(folder / "ws"))
    models = [LogisticRegression(C=c).fit(train, y) for c in (1.0, 0.05)]
    for model in models:
        with client.start_run("bench", "train") as run:
            run.log_model(model, "bench", signature_data=train, input_example=train.head(1))
    row = {c: round(float(v), 6) for c, v in zip(FEATURES, rng.normal(size=len(FEATURES)), strict=True)}
    body = json.dumps({"dataframe_records": [row]}, separators=(",", ":")).encode()
    expected = [int(m.predict(pd.DataFrame([row]))[0]) for m in models]
    return {"workspace": folder / "ws", "client": client, "body": body, "expected": expected, "row": row,
            "models": models, "train": train}  # fmt: skip


@contextlib.contextmanager
def on_cpus(cpus: set[int] | None) -> Iterator[None]:
    """Run the block with this thread on ``cpus`` (processes started meanwhile inherit it), then restore."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (Prometheus text format)."""
    total = 0.0
    for m in re.finditer(rf"^{name}(?:{{([^}}]*)}})? ([0-9.e+-]+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


class ServeSide(Server):
    """``mloop serve model:bench/1`` on a free loopback port, pinned to ``cpus`` (reuses bench_serve's Server)."""

    def __init__(self, env_setup: dict[str, Any], *, cpus: set[int] | None) -> None:
        import subprocess

        self.side = "mloop"  # Server.wait_ready's readiness path
        self.name = "serve"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
        env.update({"PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                    "MLOOP_HOME": str(env_setup["workspace"].parent / "home")})  # fmt: skip
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        cmd = [str(BIN / "mloop"), "serve", LIVE, "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=env_setup["workspace"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)
        self.url = f"http://127.0.0.1:{self.port}"

    def server_cpu(self) -> float:
        return self.cpu_seconds()

    def control_cpu(self) -> float:
        return 0.0

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as reply:
            return str(reply.read().decode())

    def server_pid(self) -> int:
        return self.proc.pid


class EndpointSide:
    """An endpoint (supervisor + server process) of ``models`` with an optional 100% shadow, collector off."""

    def __init__(self, name: str, env_setup: dict[str, Any], *, shadow: str | None, cpus: set[int] | None) -> None:
        from mloop.deployments import endpoints

        self.name = name
        self.ctx = env_setup["client"]
        endpoints.create(self.ctx, name, [LIVE.removeprefix("model:")], shadow=shadow, shadow_percent=100.0,
                         collect=False, start_now=False, cause="bench_deploy")  # fmt: skip
        self.cpus = cpus

    def wait_ready(self, timeout: float = 180.0) -> float:
        import time

        from mloop.deployments import endpoints

        started = time.monotonic()
        with on_cpus(self.cpus):  # the supervisor and its server inherit CPU 0 (this thread goes back after)
            endpoints.start(self.ctx, self.name, timeout=timeout)
        shown = endpoints.show(self.ctx, self.name)
        self.url = str(shown["url"])
        self.status = dict(shown["status"])
        return time.monotonic() - started

    def server_pid(self) -> int:
        return int(self.status["pid"])

    def server_cpu(self) -> float:
        """CPU seconds of the serving process (router, live and shadow apps: everything on the request path)."""
        return _cpu([self.server_pid()])

    def control_cpu(self) -> float:
        """CPU seconds of the supervisor (its ticks: /health/ready every 0.5 s and the status heartbeat)."""
        return _cpu([int(self.status["supervisor_pid"])])

    def rss(self) -> int:
        with contextlib.suppress(psutil.NoSuchProcess):
            return int(psutil.Process(self.server_pid()).memory_info().rss)
        return 0

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as reply:
            return str(reply.read().decode())

    def output(self) -> str:
        from mloop.deployments import endpoints

        return endpoints.logs(self.ctx, self.name, lines=40)

    def stop(self) -> None:
        from mloop.deployments import endpoints

        with contextlib.suppress(Exception):
            endpoints.delete(self.ctx, self.name, cause="bench_deploy done")


class ScriptSide(EndpointSide):
    """An endpoint served by ``bench/_deploy/probe.py`` with ``flags`` (instruments) instead of the supervisor's
    worker: same spec and port, no supervisor (so no supervisor CPU to count)."""

    def __init__(self, name: str, env_setup: dict[str, Any], *, shadow: str | None, cpus: set[int] | None,
                 flags: list[str]) -> None:  # fmt: skip
        super().__init__(name, env_setup, shadow=shadow, cpus=cpus)
        self.flags = flags

    def wait_ready(self, timeout: float = 180.0) -> float:
        import subprocess
        import sys
        import time

        from mloop.deployments import endpoints

        started = time.monotonic()
        shown = endpoints.show(self.ctx, self.name)
        self.url = str(shown["url"])
        env = {**os.environ, "MLOOP_URI": self.ctx.settings.store_uri, "MLOOP_ARTIFACT_URI": self.ctx.artifacts.uri}
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        script = Path(__file__).resolve().parent / "probe.py"
        self.proc = subprocess.Popen([sys.executable, str(script), self.name, *self.flags], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        if self.cpus:
            os.sched_setaffinity(self.proc.pid, self.cpus)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"probe server exited ({self.proc.returncode}):\n{self.output()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/health/ready", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"probe server not ready in {timeout} s:\n{self.output()}")

    def server_pid(self) -> int:
        return int(self.proc.pid)

    def control_cpu(self) -> float:
        return 0.0

    def output(self) -> str:
        self.log.seek(0)
        return str(self.log.read()[-3000:])

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        super().stop()
