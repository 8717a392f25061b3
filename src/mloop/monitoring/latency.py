"""A latency histogram that adds up across parts: fixed log-spaced buckets, so percentiles have a bound.

Bucket ``b`` holds the latencies in ``[LOW * GROWTH**b, LOW * GROWTH**(b + 1))`` ms (``LOW`` = 0.001 ms, ``GROWTH``
= 1.01, ``BUCKETS`` = 2316 up to 10,000 s); smaller values go to bucket 0, larger ones to the last bucket, NaN is
left out. A percentile is computed as numpy's default (``np.percentile``, linear interpolation between the order
statistics ``x_(lo)`` and ``x_(hi)`` around rank ``(n - 1) q``) with each order statistic replaced by the
geometric middle of its bucket, clamped to the exact minimum and maximum. Each order statistic is then within a
factor ``sqrt(GROWTH)`` of the truth, and so is the interpolation between two of them:

    |estimate - exact| <= RELATIVE_ERROR * exact   (RELATIVE_ERROR = sqrt(1.01) - 1 < 0.5%)

for latencies of at least ``LOW``; below it the error is at most ``LOW * GROWTH`` ms absolute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BUCKETS", "GROWTH", "LOW", "RELATIVE_ERROR", "LatencyHistogram", "latency_histogram"]

LOW = 0.001
GROWTH = 1.01
BUCKETS = math.ceil(math.log(1e7 / LOW) / math.log(GROWTH))
RELATIVE_ERROR = math.sqrt(GROWTH) - 1.0
_LOG_GROWTH = math.log(GROWTH)


@dataclass(frozen=True)
class LatencyHistogram:
    """Latencies (ms) per bucket and their exact minimum and maximum; ``a + b`` is both together."""

    counts: npt.NDArray[np.int64]
    low: float = math.inf
    high: float = -math.inf

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram(self.counts + other.counts, min(self.low, other.low), max(self.high, other.high))

    def percentiles(self, qs: list[float]) -> list[float]:
        """``np.percentile(latencies, qs)`` within :data:`RELATIVE_ERROR` (``nan`` when empty)."""
        n = self.n
        if n == 0:
            return [math.nan for _ in qs]
        cum = np.cumsum(self.counts)
        out = []
        for q in qs:
            h = (n - 1) * q / 100.0
            lo, hi = math.floor(h), math.ceil(h)
            a, b = self._order_statistic(cum, lo), self._order_statistic(cum, hi)
            out.append(a + (h - lo) * (b - a))
        return out

    def _order_statistic(self, cum: npt.NDArray[np.int64], rank: int) -> float:
        bucket = int(np.searchsorted(cum, rank, side="right"))
        middle = LOW * GROWTH ** (bucket + 0.5)
        return float(min(max(middle, self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        nz = np.flatnonzero(self.counts)
        return {"buckets": nz.tolist(), "counts": self.counts[nz].tolist(), "low": self.low, "high": self.high}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LatencyHistogram:
        counts = np.zeros(BUCKETS, np.int64)
        counts[np.asarray(data["buckets"], np.intp)] = np.asarray(data["counts"], np.int64)
        return LatencyHistogram(counts, float(data["low"]), float(data["high"]))


def latency_histogram(values: Any) -> LatencyHistogram:
    """The histogram of ``values`` (ms; NaN left out)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not x.size:
        return LatencyHistogram(np.zeros(BUCKETS, np.int64))
    with np.errstate(divide="ignore"):
        b = np.floor(np.log(np.maximum(x, LOW) / LOW) / _LOG_GROWTH)
    index = np.clip(b, 0, BUCKETS - 1).astype(np.intp)
    return LatencyHistogram(np.bincount(index, minlength=BUCKETS).astype(np.int64), float(x.min()), float(x.max()))
