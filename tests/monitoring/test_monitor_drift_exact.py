"""Exact-mode drift statistics against scipy's reference implementations, to 1e-9, on random inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mloop.monitoring import drift_stats
from mloop.monitoring.drift import feature_drift

# Continuous values and heavily tied ones (small integers): ties are where CDF conventions differ.
floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.one_of(
    st.lists(floats, min_size=1, max_size=300),
    st.lists(st.integers(min_value=-5, max_value=5).map(float), min_size=1, max_size=300),
)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=300, deadline=None)
@given(samples, samples)
def test_ks_matches_scipy_ks_2samp(ref: list[float], cur: list[float]) -> None:
    with warnings.catch_warnings():  # scipy warns when its exact path falls back to the asymptotic one
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ks_2samp(ref, cur)
    result = feature_drift("x", np.array(ref), np.array(cur), method="ks", mode="exact")
    assert result.statistic is not None and result.p_value is not None
    assert close(result.statistic, float(expected.statistic))
    assert close(result.p_value, float(expected.pvalue))
    assert result.drifted == (result.p_value < 0.05)


def test_ks_asymptotic_pvalue_matches_scipy_for_large_samples() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=20_000), rng.normal(0.02, 1, size=15_000)
    expected = stats.ks_2samp(ref, cur)
    result = feature_drift("x", ref, cur, method="ks", mode="exact")
    assert result.statistic is not None and result.p_value is not None
    assert close(result.statistic, float(expected.statistic))
    assert close(result.p_value, float(expected.pvalue))


@settings(max_examples=300, deadline=None)
@given(samples, samples)
def test_wasserstein_matches_scipy(ref: list[float], cur: list[float]) -> None:
    std = float(np.std(ref))
    expected = stats.wasserstein_distance(ref, cur) / (std if std > 0 else 1.0)
    result = feature_drift("x", np.array(ref), np.array(cur), method="wasserstein", mode="exact")
    assert result.statistic is not None
    assert math.isclose(result.statistic, expected, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, abs(expected)))


counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=30)


@settings(max_examples=300, deadline=None)
@given(counts, st.data())
def test_chisquare_matches_scipy(ref: list[int], data: st.DataObject) -> None:
    cur = data.draw(st.lists(st.integers(min_value=0, max_value=10_000), min_size=len(ref), max_size=len(ref)))
    if sum(cur) == 0 or min(ref) == 0:
        ref = [r + 1 for r in ref]
        cur = [c + 1 for c in cur]
    n = sum(cur)
    expected_counts = n * np.array(ref, dtype=float) / sum(ref)
    expected = stats.chisquare(cur, expected_counts)
    stat, p = drift_stats.chisquare_counts(cur, expected_counts)
    assert close(stat, float(expected.statistic))
    assert close(p, float(expected.pvalue))


@settings(max_examples=300, deadline=None)
@given(counts, st.data())
def test_jensenshannon_matches_scipy(ref: list[int], data: st.DataObject) -> None:
    cur = data.draw(st.lists(st.integers(min_value=0, max_value=10_000), min_size=len(ref), max_size=len(ref)))
    if sum(ref) == 0 or sum(cur) == 0:
        ref, cur = [r + 1 for r in ref], [c + 1 for c in cur]
    expected = float(jensenshannon(ref, cur))
    assert close(drift_stats.jensenshannon_counts(ref, cur), expected)


def test_categorical_features_end_to_end_match_scipy() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(["a", "b", "c", "d"], size=3000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "d"], size=700, p=[0.35, 0.3, 0.25, 0.1])
    keys = ["a", "b", "c", "d"]
    rc = np.array([np.count_nonzero(ref == k) for k in keys])
    cc = np.array([np.count_nonzero(cur == k) for k in keys])
    chi = feature_drift("c", ref, cur, method="chisquare", mode="exact")
    expected = stats.chisquare(cc, cc.sum() * rc / rc.sum())
    assert chi.statistic is not None and chi.p_value is not None
    assert close(chi.statistic, float(expected.statistic)) and close(chi.p_value, float(expected.pvalue))
    js = feature_drift("c", ref, cur, method="jensenshannon", mode="exact")
    assert js.statistic is not None and close(js.statistic, float(jensenshannon(rc, cc)))
    fast = feature_drift("c", ref, cur, method="chisquare")  # categorical counts are exact in fast mode too
    assert fast.statistic == chi.statistic and fast.mode == "fast" and fast.error_bound == 0.0


def test_unseen_category_gets_a_pseudo_count_and_drifts() -> None:
    ref = np.array(["a"] * 500 + ["b"] * 500)
    cur = np.array(["a"] * 300 + ["b"] * 290 + ["zzz"] * 10)
    result = feature_drift("c", ref, cur, method="chisquare", mode="exact")
    assert result.statistic is not None and math.isfinite(result.statistic)
    assert result.drifted and result.p_value is not None and result.p_value < 1e-6


@pytest.mark.parametrize(
    ("ref", "cur", "psi"),
    [
        # deciles of 0..99 are the order statistics at floor(k * 99 / 10) = 9, 19, ..., 89: bins of 9, 10 x 8
        # and 11 values; the current sits in the first bin, the other 9 get epsilon = 1e-4
        (
            np.arange(100.0),
            np.zeros(50),
            (1 - 0.09) * math.log(1 / 0.09)
            + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
            + (1e-4 - 0.11) * math.log(1e-4 / 0.11),
        ),
        (np.arange(100.0), np.arange(100.0), 0.0),
    ],
)
def test_psi_by_hand(ref: np.ndarray, cur: np.ndarray, psi: float) -> None:
    result = feature_drift("x", ref, cur, method="psi", mode="exact")
    assert result.statistic is not None and math.isclose(result.statistic, psi, rel_tol=1e-12, abs_tol=1e-12)
