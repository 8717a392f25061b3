"""Mergeable summaries: quantile rank bounds, distinct-count estimates, hashes, histograms (vs numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.datasets.sketches import (
    QUANTILES,
    DistinctSketch,
    QuantileSketch,
    hash_bytes,
    histogram_edges,
    histogram_sorted,
    histogram_values,
    linear_quantiles,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def _rank_error(xs: np.ndarray, value: float, q: float) -> float:
    """How far (in ranks) ``value`` is from being a q-quantile of sorted ``xs``."""
    lo, hi = np.searchsorted(xs, value, "left"), np.searchsorted(xs, value, "right")
    target = q * (len(xs) - 1)
    return 0.0 if lo - 1 <= target <= hi else float(min(abs(target - lo), abs(target - hi)))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=400), data=st.data())
def test_linear_quantiles_match_numpy(values: list[float], data: st.DataObject) -> None:
    xs = np.sort(np.array(values))
    assert linear_quantiles(xs, QUANTILES) == pytest.approx(np.quantile(xs, QUANTILES), rel=1e-12, abs=1e-9)
    chunk = data.draw(st.integers(1, len(values)))
    sketch = QuantileSketch(points=4096)  # every chunk fits: the merged summary is exact
    for i in range(0, len(values), chunk):
        sketch.add_sorted(np.sort(np.array(values[i : i + chunk])))
    got = list(sketch.quantiles().values())
    assert got == pytest.approx(np.quantile(xs, QUANTILES), rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3000),
    points=st.integers(2, 64),
    chunk=st.integers(1, 700),
    shape=st.sampled_from(["normal", "few", "sorted", "skewed"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantile_rank_error_is_within_the_documented_bound(
    n: int, points: int, chunk: int, shape: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = {
        "normal": lambda: rng.normal(size=n),
        "few": lambda: rng.integers(0, 4, size=n).astype(float),
        "sorted": lambda: np.sort(rng.uniform(size=n)),
        "skewed": lambda: rng.lognormal(0, 3, size=n),
    }[shape]()
    sketch = QuantileSketch(points=points)
    for i in range(0, n, chunk):
        sketch.add_sorted(np.sort(x[i : i + chunk]))
    xs = np.sort(x)
    bound = (1 + sketch.compactions / 8) * n / points + 1
    for q, value in sketch.quantiles().items():
        assert _rank_error(xs, value, q) <= bound, (q, value, sketch.compactions)
    assert sketch.n == n


def test_single_chunk_quantiles_are_exact_and_empty_is_empty() -> None:
    x = np.random.default_rng(3).normal(size=100_001)
    sketch = QuantileSketch(points=16)
    sketch.add_sorted(np.sort(x))
    assert list(sketch.quantiles().values()) == pytest.approx(np.quantile(x, QUANTILES), rel=1e-12)
    assert QuantileSketch().quantiles() == {}


def test_distinct_sketch_is_exact_below_k_and_close_above() -> None:
    small = DistinctSketch(k=1024)
    small.add_hashes(hash_bytes(*_strings([f"v{i}" for i in range(500)] * 2)))
    assert small.estimate() == 500 and not small.saturated
    big = DistinctSketch(k=4096)
    for start in range(0, 200_000, 50_000):
        big.add_hashes(hash_bytes(*_strings([f"id-{i}" for i in range(start, start + 50_000)])))
    assert big.saturated
    assert big.estimate() == pytest.approx(200_000, rel=4 / np.sqrt(4096))


def _strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [v.encode() for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int32)
    return offsets, np.frombuffer(b"".join(encoded), dtype=np.uint8)


def test_hash_bytes_is_deterministic_and_separates_close_strings() -> None:
    values = ["", "a", "a\x00", "\x00a", "ab", "ba", "abc" * 50, "é"]
    offsets, data = _strings(values)
    hashes = hash_bytes(offsets, data)
    assert len(set(hashes.tolist())) == len(values)
    assert hash_bytes(offsets, data).tolist() == hashes.tolist()
    # A slice of the same buffers (non-zero first offset) hashes the same strings the same way.
    assert hash_bytes(offsets[2:], data).tolist() == hashes[2:].tolist()


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=300), bins=st.integers(1, 30))
def test_histograms_match_numpy(values: list[float], bins: int) -> None:
    x = np.array(values)
    lo, hi = float(x.min()), float(x.max())
    edges = histogram_edges(lo, hi, bins)
    assert histogram_sorted(np.sort(x), edges).tolist() == histogram_values(x, edges).tolist()
    if lo < hi:
        counts, np_edges = np.histogram(x, bins=bins)
        assert edges.tolist() == np_edges.tolist()
        assert histogram_values(x, edges).tolist() == counts.tolist()
    else:
        assert histogram_sorted(np.sort(x), edges).tolist() == [len(x)]
