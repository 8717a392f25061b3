"""False alarms: on resamples of one distribution, drift is flagged no more often than the configured level.

Each case draws a reference and a current window from the SAME distribution for 400 seeds and counts the
windows flagged as drifted. For the p-value methods (KS, chi-square) the rate must not exceed the level beyond
sampling noise: a one-sided binomial test at 1 % against "rate <= level" must not reject (at 400 seeds a rate
of 0.05 is observed as up to ~0.075). For the distance methods the rate at their default thresholds is
measured and must stay under 5 % at the sizes where the automatic rule picks them.

Measured rates (400 seeds, level 0.05): exact KS 800 vs 150 values 0.030; fast KS (gamma, 20,000-row reference,
600-value windows) 0.028; fast KS on a discrete column (Poisson) 0.005 (KS is conservative with ties);
chi-square 0.053; automatic choice at 5,000 vs 1,000 (exact KS) 0.068 (within the noise of 400 draws: P(X >= 27 |
rate 0.05) = 0.07); Wasserstein >= 0.1 at 1,500-value windows 0.0; Jensen-Shannon >= 0.1 0.0; numeric PSI >= 0.1
0.0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from mloop.monitoring.drift import DriftResult, feature_drift
from mloop.monitoring.reference import build_reference

SEEDS = 400
LEVEL = 0.05


def rate(case: Callable[[np.random.Generator], DriftResult]) -> float:
    flagged = 0
    for seed in range(SEEDS):
        result = case(np.random.default_rng(seed))
        flagged += result.drifted
    return flagged / SEEDS


def assert_calibrated(observed: float, level: float = LEVEL) -> None:
    """A one-sided binomial test at 1 %: is the observed count compatible with a rate of at most ``level``?"""
    k = round(observed * SEEDS)
    p = stats.binom.sf(k - 1, SEEDS, level)  # P(X >= k | rate = level)
    assert p >= 0.01, f"false-alarm rate {observed:.4f} over {SEEDS} seeds exceeds {level} (binomial p={p:.2g})"


def ks_exact_small(rng: np.random.Generator) -> DriftResult:
    return feature_drift("x", rng.normal(size=800), rng.normal(size=150), method="ks", mode="exact")


def ks_fast(rng: np.random.Generator) -> DriftResult:
    ref = build_reference({"x": rng.gamma(2.0, size=20_000)})["x"]
    return feature_drift("x", ref, rng.gamma(2.0, size=600), method="ks")


def ks_fast_ties(rng: np.random.Generator) -> DriftResult:
    ref = build_reference({"x": rng.poisson(3.0, size=20_000).astype(float)})["x"]
    return feature_drift("x", ref, rng.poisson(3.0, size=600).astype(float), method="ks")


def chisquare_fast(rng: np.random.Generator) -> DriftResult:
    p = [0.5, 0.2, 0.15, 0.1, 0.05]
    ref = build_reference({"c": rng.choice(list("abcde"), size=20_000, p=p)})["c"]
    return feature_drift("c", ref, rng.choice(list("abcde"), size=400, p=p), method="chisquare")


def auto_small(rng: np.random.Generator) -> DriftResult:
    result = feature_drift("x", rng.normal(size=5000), rng.normal(size=1000), mode="exact")
    assert result.method == "ks"
    return result


@pytest.mark.parametrize("case", [ks_exact_small, ks_fast, ks_fast_ties, chisquare_fast, auto_small])
def test_p_value_methods_keep_the_false_alarm_rate(case: Callable[[np.random.Generator], DriftResult]) -> None:
    assert_calibrated(rate(case))


def test_fast_ks_is_never_more_alarmed_than_exact() -> None:
    """Fast KS reports D_bin <= D, so its p-value is never below the asymptotic one of the exact D."""
    for seed in range(50):
        rng = np.random.default_rng(seed)
        ref, cur = rng.normal(size=20_000), rng.normal(0.05, 1, size=20_000)
        fast = feature_drift("x", build_reference({"x": ref})["x"], cur, method="ks")
        exact = feature_drift("x", ref, cur, method="ks", mode="exact")  # asymptotic p-value above 10,000
        assert fast.p_value is not None and exact.p_value is not None
        assert fast.p_value >= exact.p_value - 1e-12


def wasserstein_auto(rng: np.random.Generator) -> DriftResult:
    ref = build_reference({"x": rng.lognormal(size=20_000)})["x"]
    result = feature_drift("x", ref, rng.lognormal(size=1500))
    assert result.method == "wasserstein"
    return result


def jensenshannon_auto(rng: np.random.Generator) -> DriftResult:
    p = [0.5, 0.2, 0.15, 0.1, 0.05]
    ref = build_reference({"c": rng.choice(list("abcde"), size=20_000, p=p)})["c"]
    result = feature_drift("c", ref, rng.choice(list("abcde"), size=1500, p=p))
    assert result.method == "jensenshannon"
    return result


def psi_numeric(rng: np.random.Generator) -> DriftResult:
    ref = build_reference({"x": rng.normal(size=20_000)})["x"]
    return feature_drift("x", ref, rng.normal(size=1500), method="psi")


@pytest.mark.parametrize("case", [wasserstein_auto, jensenshannon_auto, psi_numeric])
def test_distance_methods_at_their_thresholds_rarely_alarm(case: Callable[[np.random.Generator], DriftResult]) -> None:
    assert rate(case) <= LEVEL


def test_a_real_shift_is_found() -> None:
    rng = np.random.default_rng(99)
    ref = build_reference({"x": rng.normal(size=50_000)})["x"]
    assert feature_drift("x", ref, rng.normal(0.3, 1, size=500)).drifted  # ks, small window
    assert feature_drift("x", ref, rng.normal(0.3, 1, size=50_000)).drifted  # wasserstein 0.3 > 0.1
    assert not feature_drift("x", ref, rng.normal(0.03, 1, size=50_000)).drifted  # 0.03 sd: below 0.1
