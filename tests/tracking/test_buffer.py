"""The metric buffer: batching, background flushes, and failures that surface and lose nothing."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from mloop.entities import Metric
from mloop.errors import MloopError
from mloop.tracking.buffer import MetricBuffer


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Metric]] = []
        self.fail = False

    def __call__(self, batch: Sequence[Metric]) -> None:
        if self.fail:
            raise OSError("disk gone")
        self.batches.append(list(batch))


def test_batches_by_size() -> None:
    sink = Sink()
    buf = MetricBuffer(sink, max_items=100, max_delay_s=0)
    for i in range(250):
        buf.add(Metric("m", float(i), i, 0))
    assert [len(b) for b in sink.batches] == [100, 100]
    buf.close()
    assert sum(len(b) for b in sink.batches) == 250


def test_background_flush() -> None:
    sink = Sink()
    buf = MetricBuffer(sink, max_items=10_000, max_delay_s=0.05)
    buf.add(Metric("m", 1.0, 0, 0))
    deadline = time.monotonic() + 5
    while not sink.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.batches == [[Metric("m", 1.0, 0, 0)]]
    buf.close()


def test_failed_flush_raises_and_keeps_values() -> None:
    sink = Sink()
    buf = MetricBuffer(sink, max_items=3, max_delay_s=0)
    sink.fail = True
    buf.add(Metric("m", 0.0, 0, 0))
    buf.add(Metric("m", 1.0, 1, 0))
    with pytest.raises(OSError, match="disk gone"):
        buf.add(Metric("m", 2.0, 2, 0))
    assert len(buf) == 3
    sink.fail = False
    buf.close()
    assert [m.step for m in sink.batches[0]] == [0, 1, 2]


def test_background_failure_surfaces_in_caller() -> None:
    sink = Sink()
    sink.fail = True
    buf = MetricBuffer(sink, max_items=1000, max_delay_s=0.02)
    buf.add(Metric("m", 0.0, 0, 0))
    deadline = time.monotonic() + 5
    while buf._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(MloopError, match="disk gone"):
        buf.add(Metric("m", 1.0, 1, 0))
    sink.fail = False
    buf.close()
    assert sorted(m.step for b in sink.batches for m in b) == [0, 1]
