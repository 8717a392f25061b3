"""Champion/challenger statistics: exact kernels, coverage with a known effect, determinism, McNemar by hand."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mloop.errors import InvalidInput
from mloop.evaluation import (
    METRICS,
    BootstrapResult,
    beats,
    classification_metrics,
    mcnemar,
    paired_bootstrap,
)
from mloop.evaluation.metrics import binary_auc
from mloop.evaluation.resampling import auc_half_samples as _auc_half_samples
from mloop.evaluation.resampling import half_sample_sums as _half_sample_sums
from mloop.evaluation.resampling import halves as _halves


def _kept(seed: int, rounds: int, m: int) -> np.ndarray[Any, Any]:
    packed = _halves(np.random.default_rng(seed), rounds, m)
    return np.unpackbits(packed, axis=1, count=m, bitorder="little").astype(bool)


# ------------------------------------------------------------------------------------------ kernels
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_half_sample_sums_are_the_sums_of_the_kept_rows(m: int, seed: int) -> None:
    columns = np.random.default_rng(seed).normal(size=(m, 3))
    sums, counts = _half_sample_sums(columns, 40, np.random.default_rng(seed))
    kept = _kept(seed, 40, m)
    np.testing.assert_allclose(sums, kept @ columns, rtol=1e-5, atol=1e-5)  # float32 tables
    np.testing.assert_array_equal(counts, kept.sum(axis=1))


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 60), seed=st.integers(0, 2**32 - 1), ties=st.booleans())
def test_half_sample_auc_equals_sklearn_on_each_half(m: int, seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(m) < 0.4
    a, b = rng.random(m), rng.random(m)
    if ties:
        a, b = np.round(a, 1), np.round(b * 3) / 3
    auc_a, auc_b = _auc_half_samples(y, (a, b), 30, np.random.default_rng(seed))
    for i, rows in enumerate(_kept(seed, 30, m)):
        yy = y[rows]
        if 0 < yy.sum() < yy.size:
            reference = skm.roc_auc_score if i < 3 else binary_auc  # binary_auc == sklearn: test_eval_metrics
            assert auc_a[i] == pytest.approx(reference(yy, a[rows]), abs=1e-12)
            assert auc_b[i] == pytest.approx(reference(yy, b[rows]), abs=1e-12)
        else:
            assert math.isnan(auc_a[i]) and math.isnan(auc_b[i])


# ---------------------------------------------------------------------------------- point estimates
def _binary_data(n: int = 3000, seed: int = 0) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    pa = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    pb = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    return y, pa, pb


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
def test_count_metrics_match_classification_metrics(metric: str) -> None:
    y, pa, pb = _binary_data()
    la, lb = (pa > 0.5).astype(int), (pb > 0.5).astype(int)
    result = paired_bootstrap(metric, y, la, lb, n_boot=200)
    assert result.a == pytest.approx(classification_metrics(y, la)[metric])
    assert result.b == pytest.approx(classification_metrics(y, lb)[metric])
    assert result.n_rows_used == result.n_rows == 3000
    rng = np.random.default_rng(1)
    y3, a3, b3 = rng.integers(0, 3, 500), rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    multi = paired_bootstrap(metric, y3, a3, b3, n_boot=100)
    expected = classification_metrics(y3, b3)[metric if metric == "accuracy" else f"{metric}_macro"]
    assert multi.b == pytest.approx(expected)


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        ("roc_auc", skm.roc_auc_score),
        ("log_loss", skm.log_loss),
        ("brier", skm.brier_score_loss),
    ],
)
def test_probability_metrics_match_sklearn(metric: str, reference: Any) -> None:
    y, pa, pb = _binary_data()
    result = paired_bootstrap(metric, y, pa, pb, n_boot=100)
    assert result.a == pytest.approx(reference(y, pa))
    assert result.b == pytest.approx(reference(y, pb))
    assert result.higher_is_better is METRICS[metric]
    assert result.improvement > 0  # B is the better model on every one of these
    assert result.improvement == pytest.approx(result.diff if result.higher_is_better else -result.diff)


@pytest.mark.parametrize(
    ("metric", "reference"),
    [("mae", skm.mean_absolute_error), ("rmse", skm.root_mean_squared_error), ("r2", skm.r2_score)],
)
def test_regression_metrics_match_sklearn(metric: str, reference: Any) -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=2000)
    a, b = y + rng.normal(size=2000), y + 0.8 * rng.normal(size=2000)
    result = paired_bootstrap(metric, y, a, b, n_boot=200)
    assert result.a == pytest.approx(reference(y, a))
    assert result.b == pytest.approx(reference(y, b))
    assert result.ci_low > 0 and result.p_value_like == 0.0


def test_multiclass_log_loss() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 2 * np.eye(3)[y]
    pa = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pb = np.full((600, 3), 1 / 3)
    result = paired_bootstrap("log_loss", y, pa, pb, n_boot=100)
    assert result.a == pytest.approx(skm.log_loss(y, pa))
    assert result.improvement < 0 and result.ci_high < 0  # the uniform challenger is worse


# ---------------------------------------------------------------------------- behaviour of the CI
@pytest.mark.parametrize("metric", ["accuracy", "f1", "mae", "roc_auc", "log_loss"])
def test_identical_models_have_zero_difference(metric: str) -> None:
    y, pa, _ = _binary_data(1000)
    pred = (pa > 0.5).astype(int) if metric in ("accuracy", "f1") else pa
    result = paired_bootstrap(metric, y, pred, pred.copy(), n_boot=300)
    assert result.diff == 0 and result.improvement == 0
    assert result.ci_low == 0 and result.ci_high == 0
    assert result.p_value_like == 1.0
    assert not beats(result, margin=0.0)
    assert beats(result, margin=-0.01)  # non-inferiority holds


def test_seed_determinism() -> None:
    y, pa, pb = _binary_data(2000)
    for metric in ("accuracy", "brier", "roc_auc"):
        args = (pa > 0.5, pb > 0.5) if metric == "accuracy" else (pa, pb)
        first = paired_bootstrap(metric, y, *args, n_boot=200, seed=7)
        again = paired_bootstrap(metric, y, *args, n_boot=200, seed=7)
        other = paired_bootstrap(metric, y, *args, n_boot=200, seed=8)
        assert first == again and first.samples == again.samples
        assert first.samples != other.samples


def test_ci_covers_the_true_difference_with_a_known_effect() -> None:
    """Paired rows; the true improvement is known in closed form. 95% intervals should cover ~95% of the time."""
    n, reps = 1500, 40
    rng = np.random.default_rng(11)
    covered = {"accuracy": 0, "mae": 0, "roc_auc": 0}
    true_auc_gain = 0.5 * (math.erf(1.3 / 2) - math.erf(1.0 / 2))  # Phi(d / sqrt 2) for d = 1.3 vs 1.0
    for rep in range(reps):
        y = rng.integers(0, 2, n)
        right_a, right_b = rng.random(n) < 0.80, rng.random(n) < 0.83  # accuracy gain 0.03
        r = paired_bootstrap("accuracy", y, np.where(right_a, y, 1 - y), np.where(right_b, y, 1 - y), seed=rep)
        covered["accuracy"] += r.ci_low <= 0.03 <= r.ci_high
        err_a, err_b = rng.normal(size=n), 0.9 * rng.normal(size=n)  # MAE gain sqrt(2/pi) * 0.1
        r = paired_bootstrap("mae", np.zeros(n), err_a, err_b, n_boot=400, seed=rep)
        covered["mae"] += r.ci_low <= math.sqrt(2 / math.pi) * 0.1 <= r.ci_high
        noise = rng.normal(size=(2, n))
        r = paired_bootstrap("roc_auc", y, 1.0 * y + noise[0], 1.3 * y + noise[1], n_boot=400, seed=rep)
        covered["roc_auc"] += r.ci_low <= true_auc_gain <= r.ci_high
    assert all(count >= 0.85 * reps for count in covered.values()), covered


def test_interval_width_matches_the_classic_bootstrap() -> None:
    rng = np.random.default_rng(5)
    m = 800
    y = np.zeros(m)
    a, b = rng.normal(size=m), 0.9 * rng.normal(size=m)
    result = paired_bootstrap("mae", y, a, b, n_boot=3000)
    d = np.abs(a) - np.abs(b)
    classic = d[rng.integers(0, m, (3000, m))].mean(axis=1)
    low, high = np.quantile(classic, [0.025, 0.975])
    assert result.ci_high - result.ci_low == pytest.approx(high - low, rel=0.15)


def test_max_rows_subsamples_deterministically() -> None:
    y, pa, pb = _binary_data(5000)
    result = paired_bootstrap("brier", y, pa, pb, n_boot=50, max_rows=1000, seed=3)
    assert (result.n_rows, result.n_rows_used) == (5000, 1000)
    assert "1000 of 5000 rows" in result.method
    assert result == paired_bootstrap("brier", y, pa, pb, n_boot=50, max_rows=1000, seed=3)
    counts = paired_bootstrap("accuracy", y, pa > 0.5, pb > 0.5, n_boot=50, max_rows=1000)
    assert counts.n_rows_used == 5000  # count metrics cost nothing per row: every row is used


def test_degenerate_rounds_are_left_out_with_a_warning() -> None:
    y = np.array([0] * 12 + [1])
    result = paired_bootstrap("recall", y, y, np.zeros(13, dtype=int), n_boot=200)
    assert 0 < result.n_boot_valid < 200
    assert any("undefined" in w for w in result.warnings)
    one_class = paired_bootstrap("roc_auc", np.ones(10), np.linspace(0, 1, 10), np.linspace(0, 1, 10))
    assert math.isnan(one_class.a) and math.isnan(one_class.ci_low) and not beats(one_class)


def test_result_is_json_able() -> None:
    y, pa, pb = _binary_data(500)
    data = paired_bootstrap("roc_auc", y, pa, pb, n_boot=50).to_dict()
    assert "samples" not in data
    assert set(json.loads(json.dumps(data))) >= {"metric", "a", "b", "diff", "improvement", "ci_low", "ci_high"}
    assert json.loads(json.dumps(mcnemar(y, pa > 0.5, pb > 0.5).to_dict()))["method"] == "chi2-corrected"


def test_bootstrap_errors() -> None:
    y, pa, pb = _binary_data(100)
    with pytest.raises(InvalidInput, match=r"Unknown metric 'auc'.*roc_auc"):
        paired_bootstrap("auc", y, pa, pb)
    with pytest.raises(InvalidInput, match="n_boot"):
        paired_bootstrap("brier", y, pa, pb, n_boot=0)
    with pytest.raises(InvalidInput, match="confidence"):
        paired_bootstrap("brier", y, pa, pb, confidence=95)
    with pytest.raises(InvalidInput, match="binary"):
        paired_bootstrap("roc_auc", np.arange(100) % 3, pa, pb)
    with pytest.raises(InvalidInput, match=r"probabilities in \[0, 1\]"):
        paired_bootstrap("log_loss", y, pa * 3, pb)
    with pytest.raises(InvalidInput, match="pred_b has 99 rows"):
        paired_bootstrap("accuracy", y, y, y[:99])


# ------------------------------------------------------------------------------------------- beats
def _result(samples: list[float], ci_low: float) -> BootstrapResult:
    return BootstrapResult(
        metric="accuracy", higher_is_better=True, a=0.8, b=0.82, diff=0.02, improvement=0.02, ci_low=ci_low,
        ci_high=0.04, confidence=0.95, n_boot=len(samples), n_boot_valid=len(samples), n_rows=100,
        n_rows_used=100, p_value_like=0.0, method="test", seed=0, samples=tuple(samples),
    )  # fmt: skip


def test_beats_uses_the_lower_bound_against_the_margin() -> None:
    result = _result([i / 1000 for i in range(1, 41)], ci_low=0.005)
    assert beats(result, margin=0.0)
    assert beats(result, margin=0.0049)
    assert not beats(result, margin=0.005)  # strictly greater
    assert not beats(result, margin=0.01)
    assert beats(result, margin=0.01, confidence=0.2)  # a looser confidence raises the lower bound
    with pytest.raises(InvalidInput, match="confidence"):
        beats(result, confidence=1.5)
    with pytest.raises(InvalidInput, match="margin"):
        beats(result, margin=math.nan)
    with pytest.raises(InvalidInput, match="no bootstrap samples"):
        beats(_result([], ci_low=0.005), confidence=0.9)


# ----------------------------------------------------------------------------------------- McNemar
def _pairs(b01: int, b10: int, both_right: int = 30, both_wrong: int = 5) -> tuple[Any, Any, Any]:
    """Rows where A is wrong and B right (b01), A right and B wrong (b10), plus concordant rows."""
    y = np.ones(b01 + b10 + both_right + both_wrong, dtype=int)
    a = np.concatenate([np.zeros(b01), np.ones(b10), np.ones(both_right), np.zeros(both_wrong)]).astype(int)
    b = np.concatenate([np.ones(b01), np.zeros(b10), np.ones(both_right), np.zeros(both_wrong)]).astype(int)
    return y, a, b


def test_mcnemar_exact_by_hand() -> None:
    result = mcnemar(*_pairs(10, 2))
    assert (result.b01, result.b10, result.method) == (10, 2, "exact")
    # two-sided: 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result.p_value == pytest.approx(158 / 4096, abs=1e-15)
    assert result.statistic == 2
    assert mcnemar(*_pairs(3, 17)).p_value == pytest.approx(2 * (1 + 20 + 190 + 1140) / 2**20, abs=1e-15)
    none = mcnemar(*_pairs(0, 0))
    assert (none.p_value, none.method) == (1.0, "exact")
    assert mcnemar(*_pairs(5, 5)).p_value == 1.0


def test_mcnemar_chi_square_with_continuity_correction_by_hand() -> None:
    result = mcnemar(*_pairs(30, 15))
    assert result.method == "chi2-corrected"
    assert result.statistic == pytest.approx((15 - 1) ** 2 / 45)
    assert result.p_value == pytest.approx(0.036888425707049914, rel=1e-9)  # chi2(1) survival at 196/45
    balanced = mcnemar(*_pairs(20, 20))
    assert (balanced.statistic, balanced.p_value) == (0.0, 1.0)


def test_mcnemar_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for b01, b10 in [(7, 1), (12, 12), (40, 22), (100, 130)]:
        result = mcnemar(*_pairs(b01, b10))
        if b01 + b10 < 25:
            expected = stats.binomtest(min(b01, b10), b01 + b10, 0.5).pvalue
        else:
            expected = stats.chi2.sf(max(abs(b01 - b10) - 1, 0) ** 2 / (b01 + b10), 1)
        assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_string_labels_positive_and_absent_classes() -> None:
    y = np.array(["churn", "stay", "stay", "churn"] * 50)
    a = np.array(["stay", "stay", "stay", "churn"] * 50)
    b = np.array(["churn", "stay", "churn", "churn"] * 50)
    result = paired_bootstrap("recall", y, a, b, positive="churn", n_boot=200)
    assert (result.a, result.b) == (0.5, 1.0) and result.ci_low > 0
    rng = np.random.default_rng(9)
    y6, a6, b6 = rng.integers(0, 6, 400), rng.integers(0, 3, 400), rng.integers(0, 6, 400)  # A never says 3..5
    macro = paired_bootstrap("precision", y6, a6, b6, n_boot=100)
    assert macro.a == pytest.approx(classification_metrics(y6, a6)["precision_macro"])
