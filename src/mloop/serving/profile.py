"""Profiling a model's scoring server: throughput, latency and memory at rising concurrency, and the requests
a Kubernetes pod needs (``mloop profile``).

:func:`profile_model` pins the reference to one version, starts the real scoring server (``mloop serve``,
one worker) in a child process on a free loopback port, waits for ``/health/ready``, checks that the model's
stored input example scores (200), then drives ``POST /predict`` with that example through the closed-loop
generator (:mod:`mloop.serving.loadgen`) at each concurrency in turn: a short unrecorded warm-up, then
``duration`` recorded seconds. Per level it reports throughput, p50/p99 latency, errors (transport errors and
non-2xx answers), the CPU the server process used (CPU seconds per wall second over the recorded window) and
its peak RSS so far (the kernel's high-water mark, ``VmHWM``).

The **knee** is the lowest concurrency whose throughput reaches 90% of the best level's: past it, more
concurrent requests only queue. The recommendation is recorded on the model version as tags (see
:data:`TAGS`): ``mloop.profile.cpu_request`` is the CPU the server used at the knee, rounded up to 50
millicores (at least 100m); ``mloop.profile.memory_request`` is the peak RSS over all levels plus 25%
headroom, rounded up to 16 MiB; ``mloop.profile.results`` holds the figures as JSON. ``mloop package
--kubernetes`` reads the first two as the pod's resource requests.

The load generator runs in this process and shares the machine with the server: on a small machine it takes
CPU the server would otherwise use, so figures are a lower bound of what the server can do alone.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, MloopError, shown

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.serving.loadgen import LoadResult

__all__ = ["DEFAULT_CONCURRENCY", "TAGS", "ProfileLevel", "ProfileReport", "parse_concurrency", "profile_model"]

DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16, 32)
TAGS = {
    "cpu": "mloop.profile.cpu_request",
    "memory": "mloop.profile.memory_request",
    "results": "mloop.profile.results",
}
KNEE_SHARE = 0.9  # the knee: the first level within this share of the best throughput
MEMORY_HEADROOM = 1.25
MAX_CONCURRENCY = 4096


@dataclass(frozen=True)
class ProfileLevel:
    """The figures of one concurrency level (latencies in milliseconds, memory in bytes)."""

    concurrency: int
    requests: int
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    server_cpu: float  # CPU seconds the server used per wall second (1.0 = one core busy)
    peak_rss: int  # the server's peak RSS so far (VmHWM)

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests, "throughput": round(self.throughput, 1),
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "errors": self.errors,
                "server_cpu": round(self.server_cpu, 3), "peak_rss_mib": round(self.peak_rss / 2**20, 1)}  # fmt: skip


@dataclass(frozen=True)
class ProfileReport:
    """The levels, the knee, the recommended requests, and the tags recorded (empty with ``record=False``)."""

    ref: str
    levels: tuple[ProfileLevel, ...]
    knee: int
    cpu_request: str
    memory_request: str
    duration: float
    rows: int
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "duration": self.duration, "rows": self.rows, "cpu_count": os.cpu_count(),
                "levels": [lv.to_dict() for lv in self.levels], "knee": self.knee, "cpu_request": self.cpu_request,
                "memory_request": self.memory_request, "tags": dict(self.tags)}  # fmt: skip


def parse_concurrency(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``: whole numbers from 1 to 4096, rising, no repeats."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InvalidInput(
            f"--concurrency {shown(text)} is not a comma-separated list of whole numbers; use e.g. 1,2,4,8,16,32."
        ) from None
    bad = [v for v in values if not 1 <= v <= MAX_CONCURRENCY]
    if bad:
        raise InvalidInput(f"--concurrency level {bad[0]} is out of range; use 1 to {MAX_CONCURRENCY} connections.")
    if list(values) != sorted(set(values)):
        raise InvalidInput(f"--concurrency {shown(text)} must rise with no repeats, e.g. 1,2,4,8,16,32.")
    return values


def cpu_request(cores: float) -> str:
    """Kubernetes CPU quantity: ``cores`` rounded up to 50 millicores, at least 100m (e.g. 0.93 -> "950m")."""
    milli = max(100, math.ceil(cores * 1000 / 50 - 1e-9) * 50)
    return f"{milli}m"


def memory_request(peak_rss: int) -> str:
    """Kubernetes memory quantity: peak RSS plus 25% headroom, rounded up to 16 MiB (e.g. "256Mi")."""
    mib = peak_rss * MEMORY_HEADROOM / 2**20
    return f"{max(16, math.ceil(mib / 16) * 16)}Mi"


def knee_of(levels: Sequence[ProfileLevel]) -> ProfileLevel:
    """The lowest-concurrency level whose throughput is within :data:`KNEE_SHARE` of the best one."""
    best = max(lv.throughput for lv in levels)
    return next(lv for lv in levels if lv.throughput >= KNEE_SHARE * best)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss(pid: int) -> int:
    """The process's RSS high-water mark (``VmHWM`` in /proc), else its current RSS (psutil)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class _Server:
    """``mloop serve REF`` in a child process on a free loopback port; its output goes to a temporary file."""

    def __init__(self, context: Context, ref: str, ready_timeout: float) -> None:
        settings = context.settings
        self.port = _free_port()
        cmd, env, cwd = [sys.executable, "-m", "mloop.cli.app"], dict(os.environ), None
        if settings.workspace is not None:  # the same workspace (and its verified model cache), found from its folder
            cwd = settings.workspace.parent
            env.pop("MLOOP_URI", None)
            env.pop("MLOOP_ARTIFACT_URI", None)
        else:
            cmd += ["--uri", settings.store_uri] + (["--artifacts", settings.artifact_uri] if settings.artifact_uri
                                                    else [])  # fmt: skip
        cmd += ["serve", ref, "--host", "127.0.0.1", "--port", str(self.port)]
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd, env=env, text=True)
        self.ref = ref
        self._wait_ready(ready_timeout)

    def _output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-2000:].strip()

    def _wait_ready(self, timeout: float) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self._output()
                self.stop()
                raise MloopError(
                    f"The scoring server for {self.ref} exited with code {self.proc.returncode} before it was ready:"
                    f"\n{output}\nFix what it names, then run `mloop profile` again."
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health/ready")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        output = self._output()
        self.stop()
        raise MloopError(
            f"The scoring server for {self.ref} was not ready within {timeout:g} s:\n{output}\n"
            "Check that the model loads (`mloop serve` it by hand), then run `mloop profile` again."
        )

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def _request_body(context: Context, version: Any, rows: int | None) -> tuple[bytes, int]:
    from mloop.registry.loader import example_input

    frame = example_input(context, version)
    if frame is None or len(frame) == 0:
        raise InvalidInput(
            f"{version.ref} has no stored input example to profile with. Register the model with one (log it "
            "with input_example=..., e.g. a few rows of its training data), then run `mloop profile` again."
        )
    if rows is not None:
        if rows < 1:
            raise InvalidInput(f"--rows must be at least 1, got {rows}.")
        frame = frame.head(rows)
    return frame.to_json(orient="records", date_format="iso").encode(), len(frame)


def _level(server: _Server, body: bytes, concurrency: int, duration: float, warmup: float) -> ProfileLevel:
    from mloop.serving.loadgen import generate_load

    url = f"http://127.0.0.1:{server.port}/predict"
    if warmup > 0:
        generate_load(url, body, concurrency=concurrency, duration=warmup)
    pid = server.proc.pid
    cpu0, wall0 = _cpu_seconds(pid), time.perf_counter()
    result: LoadResult = generate_load(url, body, concurrency=concurrency, duration=duration)
    cpu = (_cpu_seconds(pid) - cpu0) / (time.perf_counter() - wall0)
    ok = sum(n for status, n in result.status_counts.items() if 200 <= status < 300)

    def ms(q: float) -> float | None:
        value = result.percentile(q)
        return None if value is None else round(value * 1000, 3)

    return ProfileLevel(concurrency, result.requests, result.throughput, ms(50), ms(99),
                        result.errors + result.requests - ok, cpu, _peak_rss(pid))  # fmt: skip


def profile_model(
    context: Context, ref: str, *, concurrency: Sequence[int] = DEFAULT_CONCURRENCY, duration: float = 5.0,
    warmup: float = 1.0, rows: int | None = None, record: bool = True, ready_timeout: float = 120.0,
    on_level: Callable[[ProfileLevel], None] | None = None,
) -> ProfileReport:  # fmt: skip
    """Profile the scoring server of ``ref`` (see the module's documentation) and, with ``record``, tag the
    version with the recommended CPU and memory requests and the figures."""
    from mloop.registry.loader import resolve_model
    from mloop.registry.versions import set_version_tags

    levels_wanted = tuple(concurrency)
    if not levels_wanted:
        raise InvalidInput("--concurrency needs at least one level, e.g. 1,2,4,8,16,32.")
    parse_concurrency(",".join(str(c) for c in levels_wanted))
    if not 0 < duration <= 3600:
        raise InvalidInput(f"--duration must be more than 0 and at most 3600 seconds, got {duration}.")
    if not 0 <= warmup <= 600:
        raise InvalidInput(f"--warmup must be 0 to 600 seconds, got {warmup}.")
    version = resolve_model(context, ref)
    body, n_rows = _request_body(context, version, rows)
    server = _Server(context, version.ref, ready_timeout)
    try:
        status, reply = server.post("/predict", body)
        if status != 200:
            raise InvalidInput(
                f"The input example of {version.ref} does not score: /predict answered {status} "
                f"{shown(reply.decode(errors='replace'), 300)}. Register the model with an example it accepts."
            )
        levels: list[ProfileLevel] = []
        for c in levels_wanted:
            level = _level(server, body, c, duration, warmup)
            levels.append(level)
            if on_level is not None:
                on_level(level)
    finally:
        server.stop()
    knee = knee_of(levels)
    cpu, memory = cpu_request(knee.server_cpu), memory_request(max(lv.peak_rss for lv in levels))
    report = ProfileReport(version.ref, tuple(levels), knee.concurrency, cpu, memory, duration, n_rows)
    if not record:
        return report
    tags = {
        TAGS["cpu"]: cpu,
        TAGS["memory"]: memory,
        TAGS["results"]: json.dumps({k: v for k, v in report.to_dict().items() if k != "tags"}, sort_keys=True),
    }
    set_version_tags(context, version.ref, tags)  # fmt: skip
    return ProfileReport(version.ref, tuple(levels), knee.concurrency, cpu, memory, duration, n_rows, tags)
