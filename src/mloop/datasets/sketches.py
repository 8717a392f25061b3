"""Mergeable summaries of streams of values (numpy only): quantiles, distinct counts, histograms.

:class:`QuantileSketch` -- each chunk of ``n`` sorted values is kept whole when ``n <= points``, otherwise
summarised by ``points`` order statistics (the middle of ``points`` equal-size blocks, each standing for
``n / points`` values). Quantiles are read from the merged summary by linear interpolation between the blocks'
centre ranks, anchored at the exact minimum and maximum. Error: when everything arrived in one chunk, or no
chunk had more than ``points`` values and there was no compaction (below), the quantiles are exact (numpy's
default "linear" method); otherwise the rank of a returned value is within ``+-N / points`` of the exact
quantile's rank (+-0.025 % of the rows at the default 4096 points; the tests check this bound, typical errors
are a quarter of it). When the summary grows past ``max_points`` (32 x points) it is resampled to
``8 x points`` points, which happens about once every 24 chunks and widens the bound by ``N / (8 x points)``
each time: ``(1 + c / 8) x N / points`` after ``c`` compactions (e.g. 0.15 % for a billion rows profiled in
chunks of a million).

:class:`DistinctSketch` -- "k minimum values": keeps the ``k`` smallest 64-bit hashes; exact (up to hash
collisions) below ``k`` distinct values, otherwise an estimate with relative standard error ~``1/sqrt(k)``
(0.8 % at k = 16384).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "QUANTILES",
    "DistinctSketch",
    "QuantileSketch",
    "hash_bytes",
    "histogram_edges",
    "histogram_sorted",
    "histogram_values",
    "linear_quantiles",
]

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FloatArray = npt.NDArray[np.float64]
_P = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime, as the polynomial base
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finaliser
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def linear_quantiles(sorted_values: npt.NDArray[np.generic], probabilities: Sequence[float]) -> FloatArray:
    """Quantiles of already sorted values, numpy's default "linear" method, without re-sorting."""
    s = sorted_values
    n = len(s)
    pos = np.asarray(probabilities, dtype=np.float64) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    t = pos - lo
    a = s[lo].astype(np.float64)
    b = s[hi].astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.where((t == 0) | (a == b), a, a + (b - a) * t)


class QuantileSketch:
    """Quantiles of a stream of sorted chunks; see the module docstring for the error bound."""

    def __init__(self, points: int = 4096, probabilities: Sequence[float] = QUANTILES, max_points: int = 0) -> None:
        self.points = max(int(points), 2)
        self.probabilities = tuple(probabilities)
        self.max_points = max_points or 32 * self.points
        self._segments: list[tuple[FloatArray, float]] = []
        self._stored = 0
        self.n = 0
        self.compactions = 0
        self._chunks = 0
        self._exact: FloatArray | None = None
        self._min = np.inf
        self._max = -np.inf

    def add_sorted(self, values: npt.NDArray[np.generic]) -> None:
        """Add one chunk of values sorted ascending, without NaN."""
        n = len(values)
        if n == 0:
            return
        self._chunks += 1
        self._exact = linear_quantiles(values, self.probabilities) if self._chunks == 1 else None
        self._min = min(self._min, float(values[0]))
        self._max = max(self._max, float(values[-1]))
        if n <= self.points:
            segment = (np.array(values, dtype=np.float64), 1.0)
        else:
            ranks = ((np.arange(self.points) + 0.5) * (n / self.points)).astype(np.int64)
            segment = (values[ranks].astype(np.float64), n / self.points)
        self._segments.append(segment)
        self._stored += len(segment[0])
        self.n += n
        if self._stored > self.max_points:
            self._compact()

    def _merged(self) -> tuple[FloatArray, FloatArray]:
        """All summary points sorted by value, with the rank each one stands at the centre of."""
        values = np.concatenate([v for v, _ in self._segments])
        weights = np.concatenate([np.full(len(v), w) for v, w in self._segments])
        order = np.argsort(values, kind="stable")
        values, weights = values[order], weights[order]
        centres = np.cumsum(weights) - (weights + 1) / 2
        return values, centres

    def _compact(self) -> None:
        values, centres = self._merged()
        m = 8 * self.points
        targets = (np.arange(m) + 0.5) * (self.n / m) - 0.5
        with np.errstate(invalid="ignore"):
            resampled = np.interp(targets, centres, values)
        self._segments = [(resampled, self.n / m)]
        self._stored = m
        self.compactions += 1

    def quantiles(self) -> dict[float, float]:
        if self.n == 0:
            return {}
        if self._exact is not None:
            result = self._exact
        else:
            values, centres = self._merged()
            xs = np.concatenate(([0.0], centres, [self.n - 1.0]))
            ys = np.concatenate(([self._min], values, [self._max]))
            with np.errstate(invalid="ignore"):
                result = np.interp(np.asarray(self.probabilities) * (self.n - 1), xs, ys)
        return {p: float(v) for p, v in zip(self.probabilities, result, strict=True)}


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    return h ^ (h >> np.uint64(31))


def hash_bytes(offsets: npt.NDArray[np.integer], data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """Deterministic 64-bit hashes of the byte strings ``data[offsets[i]:offsets[i+1]]`` (Arrow's layout)."""
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    starts = offsets[:-1] - offsets[0]
    body = data[offsets[0] : offsets[-1]]
    out = np.zeros(len(lengths), dtype=np.uint64)
    if body.size:
        maxlen = int(lengths.max())
        powers = np.ones(maxlen, dtype=np.uint64)
        if maxlen > 1:
            powers[1:] = np.cumprod(np.full(maxlen - 1, _P, dtype=np.uint64))
        position = np.arange(body.size, dtype=np.int64) - np.repeat(starts, lengths)
        terms = (body.astype(np.uint64) + np.uint64(1)) * powers[position]
        nonempty = lengths > 0
        out[nonempty] = np.add.reduceat(terms, starts[nonempty])
    return _mix(out ^ (lengths.astype(np.uint64) * _GOLDEN))


class DistinctSketch:
    """Estimated number of distinct values from their 64-bit hashes ("k minimum values")."""

    def __init__(self, k: int = 16384) -> None:
        self.k = max(int(k), 16)
        self._hashes = np.empty(0, dtype=np.uint64)
        self.saturated = False

    def add_hashes(self, hashes: npt.NDArray[np.uint64]) -> None:
        if self.saturated:
            hashes = hashes[hashes < self._hashes[-1]]
        merged = np.union1d(self._hashes, hashes)
        if len(merged) > self.k:
            merged = merged[: self.k]
            self.saturated = True
        self._hashes = merged

    def estimate(self) -> int:
        if not self.saturated:
            return len(self._hashes)
        kth = float(self._hashes[-1]) / 2.0**64
        return round((self.k - 1) / kth)


def histogram_edges(lo: float, hi: float, bins: int) -> FloatArray:
    """``bins`` equal-width bins between ``lo`` and ``hi`` (numpy's edges); one bin when ``lo == hi``."""
    if lo == hi:
        return np.array([lo, hi], dtype=np.float64)
    return np.linspace(float(lo), float(hi), bins + 1)


def histogram_sorted(sorted_values: npt.NDArray[np.generic], edges: FloatArray) -> npt.NDArray[np.int64]:
    """Counts per bin of sorted finite values that all lie within ``[edges[0], edges[-1]]``."""
    left = np.searchsorted(sorted_values, edges[:-1], side="left")
    end = np.searchsorted(sorted_values, edges[-1], side="right")
    return np.diff(np.append(left, end)).astype(np.int64)


def histogram_values(values: npt.NDArray[np.generic], edges: FloatArray) -> npt.NDArray[np.int64]:
    """Counts per bin of unsorted values; values outside the edges (and NaN) are not counted."""
    if len(edges) == 2 and edges[0] == edges[1]:
        return np.array([np.count_nonzero(values == edges[0])], dtype=np.int64)
    counts, _ = np.histogram(values, bins=len(edges) - 1, range=(float(edges[0]), float(edges[-1])))
    return counts.astype(np.int64)
