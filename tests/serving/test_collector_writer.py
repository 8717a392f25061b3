"""The collector's writer process and its ring: what the ring carries comes out as the same table the in-process
builder makes, a full ring drops and counts, a dead writer is restarted (and reported), a writer that keeps
dying makes the collector drop and count without blocking, and a hung writer does not stop a graceful close
from writing everything."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mloop.deployments.collected import read_collected
from mloop.serving.collected_files import make_record, matrix_table, requests_table
from mloop.serving.collector import Collector
from mloop.serving.collector_ring import Layout, Ring, open_ring


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _record(c: Collector, rid: str, rows: int = 1) -> None:
    x = np.arange(rows * 2, dtype=float).reshape(rows, 2)
    c.record(rid, "model:m/1", x, {"predictions": np.arange(rows)}, 0.001, columns=("a", "b"))


def _ready(c: Collector) -> None:
    """Wait until the writer process is up and has written once."""
    _record(c, "ready")
    c.flush()
    assert c.stats()["rows"] >= 1


def test_ring_runs_tabulate_like_the_in_process_builder() -> None:
    ring = open_ring(1 << 16)
    try:
        layout = Layout("model:m/2", "live", ("a", "b"), "<f8", 2, "<f8", 3, True)
        data = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        proba = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
        assert ring.put_object(("layout", 2, layout))
        for i, ts in enumerate((1_000, 2_000)):  # two single-row records: one strided run
            assert ring.put(2, ts, 1.5, 200, 1, f"r{i}".encode(), data[i : i + 1].tobytes(), proba[i : i + 1].tobytes())
        assert ring.put(2, 3_000, 2.5, 200, 2, b"multi", data.tobytes()[:32], proba[:2].tobytes())  # two rows
        layouts: dict[int, Layout] = {}
        taken: list[Any] = []
        assert ring.take(layouts, taken) == 4 and layouts == {2: layout} and len(taken) == 2 and ring.used() == 0
        records = [make_record(1_000, "r0", "model:m/2", "live", data[:1], ("a", "b"), proba[:1], True, 1.5, 200, 1),
                   make_record(2_000, "r1", "model:m/2", "live", data[1:2], ("a", "b"), proba[1:2], True, 1.5, 200, 1),
                   make_record(3_000, "multi", "model:m/2", "live", data[:2], ("a", "b"), proba[:2], True, 2.5, 200,
                               2)]  # fmt: skip
        expected = requests_table("ep", records)
        runs = taken
        got = pa.concat_tables([
            matrix_table("ep", layout.model, layout.role, True, layout.columns, r["ts"], r["id"], r["latency"],
                         r["status"], r["rows"], r["data"], r["out"]) for r in runs
        ])  # fmt: skip
        assert got.schema == expected.schema and got.to_pylist() == expected.to_pylist()
    finally:
        ring.close()


def test_ring_wraps_and_refuses_when_full() -> None:
    ring = open_ring(1 << 16)
    consumer = Ring(os.dup(ring.fd), ring.capacity)  # the writer's view of the same memory
    try:
        layout = Layout("model:m/1", "live", None, "<f8", 4, "<i8", 0, False)
        assert ring.put_object(("layout", 2, layout))
        layouts: dict[int, Layout] = {}
        seen: list[int] = []
        sent = 0
        for _ in range(5):  # several laps of the ring
            while ring.put(2, sent, 0.1, 200, 1, b"x", np.full(4, sent, float).tobytes(), np.array([sent]).tobytes()):
                sent += 1
            assert ring.used() > ring.capacity - 200  # full: refused, not overwritten
            taken: list[Any] = []
            consumer.take(layouts, taken)
            seen.extend(int(v) for run in taken for v in run["out"])
        assert seen == list(range(sent)) and sent > 5 * 500
    finally:
        consumer.close()
        ring.close()


def test_a_killed_writer_is_restarted_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    c = Collector(str(tmp_path), endpoint="ep", flush_interval=0.1)
    try:
        _ready(c)
        first = c._proc.pid
        os.kill(first, signal.SIGKILL)
        with caplog.at_level(logging.ERROR, "mloop.serving.collector"):
            _wait(lambda: c.stats()["writer_restarts"] == 1)
        assert c._proc.pid != first and "exited with code -9; starting another" in caplog.text
        started = time.perf_counter()
        for i in range(50):
            _record(c, f"after{i}")
        assert time.perf_counter() - started < 5  # recording never waits for the writer (50 records)
        c.flush()
        _wait(lambda: c.stats()["rows"] >= 51)
        assert 'mloop_collector_writer_restarts_total{endpoint="ep"} 1.0' in _metrics(c)
    finally:
        c.close()
    ids = set(read_collected_root(tmp_path, "ep"))
    assert {f"after{i}" for i in range(50)} <= ids


def test_a_writer_dying_again_and_again_degrades_to_dropping(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    c = Collector(str(tmp_path), endpoint="ep", flush_interval=0.1)
    try:
        for _ in range(4):
            pid = c._proc.pid
            os.kill(pid, signal.SIGKILL)
            _wait(lambda p=pid: c._proc.pid != p or not c._monitor.is_alive())  # type: ignore[misc]
        _wait(lambda: not c._monitor.is_alive())
        assert "no longer collecting" in caplog.text and c.stats()["writer_restarts"] == 3
        started = time.perf_counter()
        for i in range(100):
            _record(c, f"gone{i}")
        assert time.perf_counter() - started < 5
        assert c.stats()["dropped"] >= 100
        assert 'mloop_collector_dropped_rows_total{endpoint="ep"}' in _metrics(c)
    finally:
        c.close()


def test_close_writes_everything_even_when_the_writer_hangs(tmp_path: Path) -> None:
    c = Collector(str(tmp_path), endpoint="ep", flush_interval=0.1)
    _ready(c)
    os.kill(c._proc.pid, signal.SIGSTOP)  # a writer that takes nothing more out of the ring
    try:
        for i in range(30):
            _record(c, f"late{i}", rows=2)
        assert c.stats()["buffered"] == 60
        c.close(timeout=1)  # it is killed after the timeout; the serving process writes the ring itself
    finally:
        if c._proc.poll() is None:
            os.kill(c._proc.pid, signal.SIGKILL)
    ids = read_collected_root(tmp_path, "ep")
    assert sorted(set(ids) - {"ready"}) == sorted(f"late{i}" for i in range(30)) and len(ids) == 61
    assert c.stats()["dropped"] == 0


def _metrics(c: Collector) -> str:
    from prometheus_client import generate_latest

    return generate_latest(c.metrics.registry).decode()


def read_collected_root(root: Path, endpoint: str) -> list[str]:
    from types import SimpleNamespace

    context: Any = SimpleNamespace(artifacts=SimpleNamespace(uri=str(root)))
    return list(read_collected(context, endpoint).column("request_id").to_pylist())
