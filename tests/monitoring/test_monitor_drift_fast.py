"""Fast mode: the reference sketch, additive window counts, and error bounds that hold (1M rows and random data)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.errors import InvalidInput
from mloop.monitoring.binned import BinnedCounts, bin_numeric, counts_from_dict
from mloop.monitoring.drift import data_drift, feature_drift, summarise
from mloop.monitoring.reference import (
    NumericReference,
    ReferenceSketch,
    build_reference,
    build_reference_chunked,
)

floats = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
samples = st.one_of(
    st.lists(floats, min_size=1, max_size=400),
    st.lists(st.integers(min_value=-5, max_value=5).map(float), min_size=1, max_size=400),
)
bins = st.sampled_from([10, 50, 2000])


def numeric(sketch: ReferenceSketch, name: str = "x") -> NumericReference:
    ref = sketch[name]
    assert isinstance(ref, NumericReference)
    return ref


@settings(max_examples=300, deadline=None)
@given(samples, samples, bins)
def test_fast_bounds_contain_the_exact_statistics(ref: list[float], cur: list[float], n_bins: int) -> None:
    """Rigour, not luck: exact KS and Wasserstein lie in [statistic, statistic + error_bound]."""
    sketch = build_reference({"x": np.array(ref)}, bins=n_bins)
    for method in ("ks", "wasserstein"):
        fast = feature_drift("x", numeric(sketch), np.array(cur), method=method)
        exact = feature_drift("x", np.array(ref), np.array(cur), method=method, mode="exact")
        assert fast.statistic is not None and exact.statistic is not None
        slack = 1e-9 * max(1.0, abs(exact.statistic))
        assert fast.statistic - slack <= exact.statistic <= fast.statistic + fast.error_bound + slack
    psi_fast = feature_drift("x", numeric(sketch), np.array(cur), method="psi")
    psi_exact = feature_drift("x", np.array(ref), np.array(cur), method="psi", mode="exact")
    assert psi_fast.statistic is not None and psi_exact.statistic is not None
    assert math.isclose(psi_fast.statistic, psi_exact.statistic, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, n: (rng.normal(size=n), rng.normal(0.01, 1.0, size=n)),
        lambda rng, n: (rng.lognormal(size=n), rng.lognormal(0.05, 1.1, size=n)),
        lambda rng, n: (rng.poisson(4, size=n).astype(float), rng.poisson(4.1, size=n).astype(float)),
    ],
    ids=["normal", "lognormal", "poisson-ties"],
)
def test_fast_ks_within_0_005_of_exact_at_a_million_rows(make: Any) -> None:
    rng = np.random.default_rng(11)
    ref, cur = make(rng, 1_000_000)
    sketch = build_reference({"x": ref})
    fast = feature_drift("x", numeric(sketch), cur, method="ks")
    exact = feature_drift("x", ref, cur, method="ks", mode="exact")
    assert fast.statistic is not None and exact.statistic is not None
    assert fast.error_bound <= 0.005  # the bound reported, not only the error seen
    assert abs(fast.statistic - exact.statistic) <= fast.error_bound + 1e-12
    assert fast.drifted == exact.drifted


def test_fast_wasserstein_and_psi_at_a_million_rows() -> None:
    rng = np.random.default_rng(12)
    ref, cur = rng.normal(size=1_000_000), rng.normal(0.05, 1.2, size=1_000_000)
    sketch = build_reference({"x": ref})
    fast = feature_drift("x", numeric(sketch), cur, method="wasserstein")
    exact = feature_drift("x", ref, cur, method="wasserstein", mode="exact")
    assert fast.statistic is not None and exact.statistic is not None
    assert fast.error_bound <= 0.01
    assert fast.statistic <= exact.statistic + 1e-12 <= fast.statistic + fast.error_bound + 2e-12
    assert exact.statistic - fast.statistic <= 1e-4  # the actual error: far inside the bound
    fast_psi = feature_drift("x", numeric(sketch), cur, method="psi")
    exact_psi = feature_drift("x", ref, cur, method="psi", mode="exact")
    assert fast_psi.statistic == pytest.approx(exact_psi.statistic, rel=1e-9)


def test_window_counts_add_up_and_round_trip_through_json() -> None:
    rng = np.random.default_rng(13)
    sketch = build_reference({"x": rng.normal(size=50_000), "c": rng.choice(["a", "b", "c"], size=50_000)})
    sketch = ReferenceSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))  # stored beside the version
    windows = [{"x": rng.normal(0.2, 1, size=n), "c": rng.choice(["a", "b", "d"], size=n)} for n in (700, 1300, 0)]
    summaries = [summarise(sketch, w) for w in windows]
    merged = {name: summaries[0][name] + summaries[1][name] + summaries[2][name] for name in ("x", "c")}
    whole = {name: np.concatenate([w[name] for w in windows]) for name in ("x", "c")}
    direct = summarise(sketch, whole)
    x_merged, x_direct = merged["x"], direct["x"]
    assert isinstance(x_merged, BinnedCounts) and isinstance(x_direct, BinnedCounts)
    assert np.array_equal(x_merged.counts, x_direct.counts)
    assert x_merged.below == pytest.approx(x_direct.below) and x_merged.above == pytest.approx(x_direct.above)
    assert merged["c"].to_dict() == direct["c"].to_dict()
    restored = {name: counts_from_dict(json.loads(json.dumps(s.to_dict()))) for name, s in merged.items()}
    from_counts = data_drift(sketch, restored)
    from_values = data_drift(sketch, whole)
    for a, b in zip(from_counts, from_values, strict=True):
        assert a.statistic == pytest.approx(b.statistic, rel=1e-9) and a.error_bound == pytest.approx(b.error_bound)
        assert (a.method, a.drifted, a.n_current, a.n_reference) == (b.method, b.drifted, b.n_current, b.n_reference)
    assert from_counts[0].n_current == 2000 and from_counts[0].drifted  # a shift of 0.2 sd over 2000 values


def test_counts_from_another_reference_are_refused() -> None:
    rng = np.random.default_rng(14)
    small = build_reference({"x": rng.normal(size=1000)}, bins=10)
    large = build_reference({"x": rng.normal(size=1000)})
    counts = bin_numeric(numeric(small), rng.normal(size=100))
    with pytest.raises(InvalidInput, match="bin the window against this reference"):
        feature_drift("x", numeric(large), counts)
    with pytest.raises(InvalidInput, match="different references"):
        _ = counts + bin_numeric(numeric(large), rng.normal(size=100))
    with pytest.raises(InvalidInput, match="multiple of 10"):
        build_reference({"x": rng.normal(size=100)}, bins=25)


def test_chunked_reference_keeps_exact_counts_and_the_bounds() -> None:
    rng = np.random.default_rng(15)
    parts = [rng.normal(size=200_000) for _ in range(5)]
    labels = [rng.choice(["u", "v"], size=200_000) for _ in range(5)]

    def chunks() -> Iterator[Mapping[str, Any]]:
        for values, cats in zip(parts, labels, strict=True):
            yield {"x": values, "c": cats}

    chunked = build_reference_chunked(chunks)
    whole = np.concatenate(parts)
    ref = numeric(chunked)
    assert ref.n == whole.size and ref.counts[0] == 0
    assert ref.edges[0] == whole.min() and ref.edges[-1] == whole.max()
    assert ref.mean == pytest.approx(whole.mean(), abs=1e-12) and ref.std == pytest.approx(whole.std(), rel=1e-9)
    assert chunked["c"].to_dict()["counts"] == {"u": int((np.concatenate(labels) == "u").sum()),
                                                 "v": int((np.concatenate(labels) == "v").sum())}  # fmt: skip
    cur = rng.normal(0.01, 1, size=300_000)
    fast = feature_drift("x", ref, cur, method="ks")
    exact = feature_drift("x", whole, cur, method="ks", mode="exact")
    assert fast.statistic is not None and exact.statistic is not None
    assert fast.statistic <= exact.statistic + 1e-12 <= fast.statistic + fast.error_bound + 2e-12
    assert fast.error_bound <= 0.005


def test_missing_values_are_left_out_and_counted() -> None:
    ref = np.array([1.0, 2.0, np.nan, 3.0, np.inf] * 100)
    sketch = build_reference({"x": ref, "c": np.array(["a", None, "b", "a"] * 50, dtype=object)})
    assert numeric(sketch).missing == 200 and numeric(sketch).n == 300
    assert sketch["c"].to_dict()["missing"] == 50
    window = bin_numeric(numeric(sketch), np.array([np.nan, -np.inf, 2.0]))
    assert window.missing == 2 and window.n == 1
    empty = feature_drift("x", numeric(sketch), np.array([np.nan, np.nan]))
    assert empty.statistic is None and not empty.drifted and empty.n_current == 0
