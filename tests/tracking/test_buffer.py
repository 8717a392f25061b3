"""The run buffer: batching, the client's background flusher, and failures that surface and lose nothing."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pytest

from mloop.entities import Metric
from mloop.errors import MloopError
from mloop.tracking.buffer import Flusher, MetricBuffer


class Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[list[Metric], dict[str, str], dict[str, str]]] = []
        self.fail = False

    def __call__(self, metrics: Sequence[Metric], params: Mapping[str, str], tags: Mapping[str, str]) -> None:
        if self.fail:
            raise OSError("disk gone")
        self.batches.append((list(metrics), dict(params), dict(tags)))

    def steps(self) -> list[int]:
        return sorted(m.step for b in self.batches for m in b[0])


def test_batches_by_size_and_take() -> None:
    sink = Sink()
    buf = MetricBuffer(sink, max_items=100)
    for i in range(250):
        buf.add(Metric("m", float(i), i, 0))
    buf.add_params({"p": "1"})
    buf.add_tags({"t": "x"})
    assert [len(b[0]) for b in sink.batches] == [100, 100]
    metrics, params, tags = buf.take()
    assert len(metrics) == 50 and params == {"p": "1"} and tags == {"t": "x"}
    assert not buf.pending


def test_background_flusher() -> None:
    sink = Sink()
    flusher = Flusher(interval_s=0.05)
    buf = MetricBuffer(sink, max_items=10_000, flusher=flusher)
    buf.add(Metric("m", 1.0, 0, 0))
    buf.add_params({"a": "b"})
    deadline = time.monotonic() + 5
    while not sink.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.batches == [([Metric("m", 1.0, 0, 0)], {"a": "b"}, {})]
    buf.close()
    flusher.stop()


def test_failed_flush_raises_and_keeps_values() -> None:
    sink = Sink()
    buf = MetricBuffer(sink, max_items=3)
    sink.fail = True
    buf.add(Metric("m", 0.0, 0, 0))
    buf.add(Metric("m", 1.0, 1, 0))
    with pytest.raises(OSError, match="disk gone"):
        buf.add(Metric("m", 2.0, 2, 0))
    assert len(buf) == 3
    sink.fail = False
    buf.flush()
    assert sink.steps() == [0, 1, 2]


def test_background_failure_surfaces_in_caller() -> None:
    sink = Sink()
    sink.fail = True
    flusher = Flusher(interval_s=0.02)
    buf = MetricBuffer(sink, max_items=1000, flusher=flusher)
    buf.add(Metric("m", 0.0, 0, 0))
    deadline = time.monotonic() + 5
    while buf._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    flusher.stop()
    with pytest.raises(MloopError, match="disk gone"):
        buf.add(Metric("m", 1.0, 1, 0))
    sink.fail = False
    buf.flush()
    assert sink.steps() == [0, 1]
