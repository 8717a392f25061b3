"""Estimated performance (CBPE) on simulated data where the truth is known.

Labels are drawn as ``y ~ Bernoulli(p)`` (or ``Categorical(p)``) from the very probabilities the estimator
sees, so the probabilities are calibrated by construction and the estimate's error can be measured against the
realised metric of the same window. Measured (seeds as in these tests): over 200 binary windows of 2,000
rows the errors, in units of the reported standard deviation, have mean |z| 0.77 / 0.78 / 0.74 (accuracy / F1 /
ROC AUC; 0.80 for a standard normal) and max 2.6 / 2.6 / 2.7; the median absolute error is 0.006 (95th
percentile 0.02). The median accuracy error falls 0.0124 -> 0.0066 -> 0.0036 at 500 / 2,000 / 8,000 rows
(1/sqrt(n)). Multiclass (4 classes, 80 windows): mean |z| 0.75 / 0.75 / 0.77, max 3.2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression

from mloop.errors import InvalidInput
from mloop.monitoring.calibration import Calibration, fit_calibration
from mloop.monitoring.estimation import EstimatedPerformance, compare_estimate, estimate_performance
from mloop.monitoring.performance import live_performance

METRICS = ("accuracy", "f1", "roc_auc")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _z_scores(est: EstimatedPerformance, truth: np.ndarray, proba: np.ndarray, **kw: object) -> dict[str, float]:
    realised = live_performance("classification", None, truth, proba, **kw)  # type: ignore[arg-type]
    return {name: c["z"] for name, c in compare_estimate(est, realised).items()}


def _binary_window(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(2, 2, n)
    return p, (rng.uniform(size=n) < p).astype(np.int64)


def test_binary_estimate_is_within_three_standard_errors_of_the_realised_metric() -> None:
    rng = np.random.default_rng(0)
    zs: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(200):
        p, y = _binary_window(rng, 2000)
        for name, z in _z_scores(estimate_performance(p), y, p).items():
            zs[name].append(z)
    for name in METRICS:
        z = np.abs(np.array(zs[name]))
        assert np.mean(z <= 3) >= 0.98, (name, np.sort(z)[-5:])
        assert 0.65 <= z.mean() <= 0.95, (name, z.mean())  # E|Z| = 0.80: the band is neither loose nor tight


def test_the_error_shrinks_as_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(1)
    median_error = {}
    for n in (500, 8000):
        errors = []
        for _ in range(60):
            p, y = _binary_window(rng, n)
            est = estimate_performance(p).value("accuracy")
            errors.append(abs(est - float(np.mean((p > 0.5) == y))))
        median_error[n] = float(np.median(errors))
    assert median_error[500] < 0.02
    assert 2.5 <= median_error[500] / median_error[8000] <= 6.5  # sqrt(16) = 4


def test_multiclass_estimate_is_within_three_standard_errors() -> None:
    rng = np.random.default_rng(2)
    zs: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(80):
        proba = rng.dirichlet([0.6, 0.6, 0.6, 0.6], 2000)
        y = (rng.uniform(size=(2000, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
        est = estimate_performance(proba, classes=[0, 1, 2, 3])
        assert est.value("accuracy") == pytest.approx(float(proba.max(axis=1).mean()))  # mean max-probability
        for name, z in _z_scores(est, y, proba, classes=[0, 1, 2, 3]).items():
            zs[name].append(z)
    for name in METRICS:
        z = np.abs(np.array(zs[name]))
        assert np.mean(z <= 3) >= 0.97, (name, np.sort(z)[-5:])
        assert 0.6 <= z.mean() <= 1.0, (name, z.mean())


def test_the_estimate_tracks_accuracy_under_covariate_shift() -> None:
    """The model is p(y=1|x) = sigmoid(1.5 x); x moves towards the decision boundary, accuracy falls."""
    rng = np.random.default_rng(3)
    realised, estimated = [], []
    for mu, sigma in ((0.0, 2.0), (0.3, 1.5), (0.5, 1.0), (0.2, 0.5), (0.0, 0.3)):
        x = rng.normal(mu, sigma, 5000)
        p = _sigmoid(1.5 * x)
        y = (rng.uniform(size=x.size) < p).astype(int)
        est = estimate_performance(p)
        comparison = compare_estimate(est, live_performance("classification", None, y, p))
        assert all(abs(c["z"]) <= 3 for c in comparison.values()), comparison
        realised.append(comparison["accuracy"]["realised"])
        estimated.append(est.value("accuracy"))
    assert realised[0] - realised[-1] > 0.2  # a real drop
    drops = np.diff(estimated) - np.diff(realised)
    assert np.max(np.abs(drops)) < 0.03, (estimated, realised)


def test_calibration_fitted_on_a_reference_repairs_an_overconfident_model() -> None:
    """Scores sigmoid(4.5 x) for a truth sigmoid(1.5 x): raw CBPE overestimates; calibrated it is right, also
    on shifted windows (covariate shift keeps p(y | score))."""
    rng = np.random.default_rng(4)

    def window(mu: float, sigma: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(mu, sigma, n)
        y = (rng.uniform(size=n) < _sigmoid(1.5 * x)).astype(int)
        return _sigmoid(4.5 * x), y

    ref_scores, ref_y = window(0.0, 1.5, 5000)  # a 5,000-row reference: its error is in the band
    cal = fit_calibration(ref_scores, ref_y)
    assert cal.used
    assert cal.ece_calibrated < cal.ece_raw
    assert "calibrated" in cal.reason
    for mu, sigma in ((0.0, 1.5), (0.5, 0.7), (-0.2, 0.4)):
        scores, y = window(mu, sigma, 4000)
        raw = _z_scores(estimate_performance(scores), y, scores)
        calibrated = estimate_performance(scores, calibration=cal)
        assert calibrated.calibrated
        fixed = _z_scores(calibrated, y, scores)
        assert raw["accuracy"] > 4  # the raw probabilities promise too much
        assert all(abs(z) <= 3 for z in fixed.values()), (mu, sigma, fixed)


def test_multiclass_calibration_by_temperature() -> None:
    rng = np.random.default_rng(5)

    def window(n: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(scale=1.5, size=(n, 3))
        true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        shown = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)  # overconfident
        return shown, (rng.uniform(size=(n, 1)) > np.cumsum(true, axis=1)).sum(axis=1)

    ref, ref_y = window(6000)
    cal = fit_calibration(ref, ref_y, classes=[0, 1, 2])
    assert cal.used
    assert cal.columns == (0, 1, 2)
    cur, y = window(4000)
    raw = _z_scores(estimate_performance(cur, classes=[0, 1, 2]), y, cur, classes=[0, 1, 2])
    fixed = _z_scores(estimate_performance(cur, classes=[0, 1, 2], calibration=cal), y, cur, classes=[0, 1, 2])
    assert raw["accuracy"] > 4
    assert abs(fixed["accuracy"]) <= 3, fixed


def test_calibration_is_a_stored_value_equal_to_sklearns_isotonic() -> None:
    rng = np.random.default_rng(6)
    s = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < s**2).astype(int)
    cal = fit_calibration(s, y, mode="always")
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    probe = np.column_stack((1 - s, s))
    assert np.allclose(again.apply(probe)[:, 1], iso.predict(s), atol=1e-12)
    assert np.allclose(again.apply(probe).sum(axis=1), 1.0)
    with pytest.raises(InvalidInput, match=r"Calibration\.to_dict"):
        Calibration.from_dict({"classes": [0, 1]})


def test_calibration_is_not_used_without_enough_reference() -> None:
    rng = np.random.default_rng(7)
    p, y = _binary_window(rng, 60)
    small = fit_calibration(p, y)
    assert not small.used
    assert "60 labelled row(s)" in small.reason
    p, y = _binary_window(rng, 500)
    assert not fit_calibration(p, y, mode="never").used
    assert not fit_calibration(p, np.zeros(500, dtype=int)).used  # one class
    est = estimate_performance(p, calibration=small)
    assert not est.calibrated
    assert est.values() == estimate_performance(p).values()
    with pytest.raises(InvalidInput, match="mode='sometimes'"):
        fit_calibration(p, y, mode="sometimes")
    p, y = _binary_window(rng, 20_000)
    kept = fit_calibration(p, y)  # calibrated already: an isotonic fit to its noise would only add error
    assert not kept.used
    assert "consistent with calibration" in kept.reason


def test_collected_predictions_are_used_when_given() -> None:
    """A model that predicts positive from p > 0.3: the estimate follows the labels it actually gave."""
    rng = np.random.default_rng(8)
    zs = []
    for _ in range(30):
        p, y = _binary_window(rng, 3000)
        pred = (p > 0.3).astype(int)
        est = estimate_performance(p, pred)
        realised = live_performance("classification", pred, y, p)
        zs.append(compare_estimate(est, realised)["accuracy"]["z"])
        assert est.value("accuracy") != pytest.approx(estimate_performance(p).value("accuracy"), abs=1e-3)
    assert np.max(np.abs(zs)) <= 3.5


def test_arrow_probabilities_with_nulls_and_text_classes() -> None:
    rng = np.random.default_rng(9)
    p, _ = _binary_window(rng, 400)
    rows = [None if i % 7 == 0 else [1 - v, v] for i, v in enumerate(p)]
    est = estimate_performance(pa.array(rows, pa.list_(pa.float64())), classes=["no", "yes"])
    keep = np.array([r is not None for r in rows])
    plain = estimate_performance(p[keep], classes=["no", "yes"])
    assert (est.rows, est.scored) == (400, int(keep.sum()))
    assert est.positive == "yes"
    assert est.values() | {"rows": 0.0} == plain.values() | {"rows": 0.0}
    json.dumps(est.to_dict())


def test_degenerate_and_bad_inputs() -> None:
    empty = estimate_performance([None, None], classes=[0, 1])
    assert empty.scored == 0
    assert all(math.isnan(m.value) for m in empty.metrics.values())
    assert empty.to_dict()["metrics"]["f1"]["value"] is None
    sure = estimate_performance([0.0, 0.0, 0.0])  # nothing expected positive: F1 and AUC undefined
    assert sure.value("accuracy") == 1.0
    assert math.isnan(sure.value("roc_auc"))
    text = estimate_performance([0.2, 0.7, 0.9], ["0", "1", "0"], classes=[0, 1])  # predictions collected as text
    assert text.value("accuracy") == pytest.approx((0.8 + 0.7 + 0.1) / 3)
    first = estimate_performance([[0.2, 0.8], [0.9, 0.1]], classes=["a", "b"], positive="a")
    assert (first.positive, first.value("f1")) == ("a", pytest.approx(2 * 0.9 / (1 + 1.1)))
    with pytest.raises(InvalidInput, match="predict_proba"):
        estimate_performance([[2.0, -1.0], [0.5, 0.5]])
    cal = fit_calibration(*_binary_window(np.random.default_rng(10), 300)[::-1][::-1], mode="always")
    with pytest.raises(InvalidInput, match="fitted for classes"):
        estimate_performance([0.2, 0.7], classes=["a", "b"], calibration=cal)
    with pytest.raises(InvalidInput, match="positive='z'"):
        estimate_performance([0.2, 0.7], classes=["a", "b"], positive="z")
    with pytest.raises(InvalidInput, match="folds=1"):
        fit_calibration([0.2, 0.7], [0, 1], folds=1)


def test_a_large_window_is_estimated_quickly() -> None:
    """One hour of a 1,000 req/s endpoint (3.6M rows): the figure is printed by bench/bench_estimation.py;
    here 1M rows must take well under the monitoring window budget."""
    import time

    p = np.random.default_rng(11).uniform(size=1_000_000)
    start = time.perf_counter()
    estimate_performance(p)
    assert time.perf_counter() - start < 5.0


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=60),
    scores=st.lists(st.integers(0, 6), min_size=60, max_size=60),  # coarse: many ties
)
def test_with_certain_probabilities_the_expected_metrics_are_the_realised_ones(
    labels: list[int], scores: list[int]
) -> None:
    """Probabilities of exactly 0 or 1 leave nothing to chance: CBPE's expected accuracy, F1 and ROC AUC (pair
    sums, ties half) must equal the metrics of those labels, with a zero band."""
    from mloop.monitoring.estimation import _accuracy, _auc, _f1, _rankings

    y = np.array(labels)
    assume(0 < y.sum() < y.size)
    q = np.column_stack((1.0 - y, y)).astype(np.float64)
    score = np.array(scores[: y.size], dtype=np.float64) / 6
    raw = np.column_stack((1.0 - score, score))
    yhat = (score > 0.5).astype(np.intp)
    realised = live_performance("classification", yhat, y, raw)
    acc, acc_sd = _accuracy(q, yhat)
    f1, _ = _f1(q, yhat, [1], with_sd=False)
    auc, auc_sd = _auc(q, [1], _rankings(raw, [1]), with_sd=True)
    assert acc == pytest.approx(realised.value("accuracy"), abs=1e-12)
    assert acc_sd == 0.0
    if not math.isnan(realised.value("f1")):
        assert f1 == pytest.approx(realised.value("f1"), abs=1e-12)
    assert auc == pytest.approx(realised.value("roc_auc"), abs=1e-12)
    assert auc_sd == pytest.approx(0.0, abs=1e-12)
