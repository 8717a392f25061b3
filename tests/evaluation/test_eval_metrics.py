"""Metrics by task: equal to scikit-learn where both are defined, NaN plus a warning where they are not."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mloop.errors import InvalidInput
from mloop.evaluation import (
    anomaly_metrics,
    classification_metrics,
    compute_metrics,
    infer_task,
    regression_metrics,
)

labels_st = st.lists(st.integers(0, 1), min_size=2, max_size=300)


def _sk(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """scikit-learn as the reference, without its advisory warnings (ours are in the result's warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(2, 300), decimals=st.integers(1, 4))
def test_binary_metrics_equal_sklearn(data: st.DataObject, n: int, decimals: int) -> None:
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    proba = np.round(np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))), decimals)  # ties
    pred = (proba >= 0.5).astype(int)
    out = classification_metrics(y, pred, proba)
    zd = np.nan
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert _close(out["precision"], _sk(skm.precision_score, y, pred, zero_division=zd))
    assert _close(out["recall"], _sk(skm.recall_score, y, pred, zero_division=zd))
    assert _close(out["f1"], _sk(skm.f1_score, y, pred, zero_division=zd))
    for avg in ("macro", "weighted"):
        p, r, f, _ = _sk(
            skm.precision_recall_fscore_support, y, pred, average=avg, zero_division=zd, labels=out["labels"]
        )
        assert _close(out[f"precision_{avg}"], p)
        assert _close(out[f"recall_{avg}"], r)
        assert _close(out[f"f1_{avg}"], f)
    assert out["confusion_matrix"]["matrix"] == _sk(skm.confusion_matrix, y, pred, labels=out["labels"]).tolist()
    if len(set(y.tolist())) == 2:
        assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba), abs=1e-12)
        assert out["log_loss"] == pytest.approx(skm.log_loss(y, proba), rel=1e-9)
        assert out["brier"] == pytest.approx(skm.brier_score_loss(y, proba), abs=1e-12)
        frac, mean = calibration_curve(y, proba, n_bins=10)
        np.testing.assert_allclose(out["calibration"]["fraction_positive"], frac)
        np.testing.assert_allclose(out["calibration"]["mean_predicted"], mean)
        assert sum(out["calibration"]["count"]) == n
    else:
        assert math.isnan(out["roc_auc"])
        assert any("roc_auc is undefined" in w for w in out["warnings"])
    json.dumps(out)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(1, 200), k=st.integers(3, 6))
def test_multiclass_averages_equal_sklearn(data: st.DataObject, n: int, k: int) -> None:
    y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    pred = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    out = classification_metrics(y, pred)
    labels = out["labels"]
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    for avg in ("macro", "weighted"):
        p, r, f, _ = _sk(skm.precision_recall_fscore_support, y, pred, average=avg, zero_division=np.nan, labels=labels)
        assert _close(out[f"precision_{avg}"], p)
        assert _close(out[f"recall_{avg}"], r)
        assert _close(out[f"f1_{avg}"], f)
    assert out["confusion_matrix"]["matrix"] == _sk(skm.confusion_matrix, y, pred, labels=labels).tolist()
    assert [c["support"] for c in out["per_class"]] == [int(np.sum(y == c)) for c in labels]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_proba_auc_and_log_loss_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 500)
    logits = rng.normal(size=(500, 4)) + np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = classification_metrics(y, proba.argmax(axis=1), proba)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-12)
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, proba), rel=1e-9)
    assert "calibration" not in out


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_bins_equal_sklearn_and_ece_by_hand(strategy: str) -> None:
    rng = np.random.default_rng(3)
    proba = np.round(rng.beta(2, 5, 2000), 2)  # skewed, with ties
    y = (rng.random(2000) < proba**0.8).astype(int)
    out = classification_metrics(y, (proba > 0.5).astype(int), proba, calibration_strategy=strategy)
    cal = out["calibration"]
    frac, mean = calibration_curve(y, proba, n_bins=10, strategy=strategy)
    np.testing.assert_allclose(cal["fraction_positive"], frac)
    np.testing.assert_allclose(cal["mean_predicted"], mean)
    ece = sum(c / 2000 * abs(f - m) for c, f, m in zip(cal["count"], frac, mean, strict=True))
    assert out["ece"] == pytest.approx(ece)
    assert len(cal["bin_edges"]) == 11


def test_two_column_proba_string_labels_and_positive() -> None:
    y = np.array(["stay", "churn", "churn", "stay", "churn"])
    pred = np.array(["stay", "churn", "stay", "stay", "churn"])
    p_churn = np.array([0.2, 0.9, 0.4, 0.1, 0.7])
    out = classification_metrics(y, pred, np.c_[p_churn, 1 - p_churn], positive="churn")
    assert out["positive"] == "churn"
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "churn", p_churn))
    default = classification_metrics(y, pred)
    assert default["positive"] == "stay"
    assert any("positive class not given" in w for w in default["warnings"])


def test_labels_order_is_kept_and_absent_positive_is_added() -> None:
    out = classification_metrics([1, 1, 0], [1, 0, 0], labels=[1, 0])
    assert out["confusion_matrix"] == {"labels": [1, 0], "matrix": [[1, 1], [0, 1]]}
    assert out["positive"] == 0  # the last label, as for model.classes_
    only_zero = classification_metrics([0, 0], [0, 0], positive=1)
    assert only_zero["labels"] == [0, 1]
    assert math.isnan(only_zero["precision"]) and math.isnan(only_zero["recall"]) and math.isnan(only_zero["f1"])
    assert len(only_zero["warnings"]) == 2


def test_degenerate_single_class_never_raises() -> None:
    out = classification_metrics([1, 1, 1], [1, 1, 0], [0.9, 0.8, 0.3])
    assert math.isnan(out["roc_auc"])
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert any("only one class" in w for w in out["warnings"])
    nothing_flagged = classification_metrics([0, 1, 1], [0, 0, 0])
    assert math.isnan(nothing_flagged["precision"])
    assert nothing_flagged["f1"] == 0.0
    assert any("precision is undefined" in w for w in nothing_flagged["warnings"])


def test_decision_scores_give_auc_but_no_probability_metrics() -> None:
    out = classification_metrics([0, 1, 0, 1], [0, 1, 1, 1], [-2.0, 3.0, 0.5, 1.5])
    assert out["roc_auc"] == 1.0
    assert math.isnan(out["log_loss"]) and math.isnan(out["brier"]) and out["calibration"] is None
    assert any("treated as scores" in w for w in out["warnings"])


def test_classification_errors_name_the_value_and_fix() -> None:
    with pytest.raises(InvalidInput, match=r"y_pred has 2 rows but y_true has 3"):
        classification_metrics([0, 1, 1], [0, 1])
    with pytest.raises(InvalidInput, match="empty"):
        classification_metrics([], [])
    with pytest.raises(InvalidInput, match="NaN"):
        classification_metrics([0.0, np.nan], [0.0, 1.0])
    with pytest.raises(InvalidInput, match=r"labels=model.classes_"):
        classification_metrics([0, 1, 1], [0, 1, 1], np.full((3, 3), 1 / 3))
    with pytest.raises(InvalidInput, match=r"not in labels"):
        classification_metrics([0, 1, 2], [0, 1, 1], labels=[0, 1])
    with pytest.raises(InvalidInput, match=r"positive=5 is not one of the labels"):
        classification_metrics([0, 1], [0, 1], labels=[0, 1], positive=5)
    with pytest.raises(InvalidInput, match=r"NaN or infinite"):
        classification_metrics([0, 1], [0, 1], [0.5, np.inf])


@settings(max_examples=40, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.floats(-1e6, 1e6).filter(lambda v: abs(v) > 1e-3), st.floats(-1e6, 1e6)), min_size=2, max_size=200
    )
)
def test_regression_equals_sklearn(pairs: list[tuple[float, float]]) -> None:
    y, pred = np.array(pairs).T
    out = regression_metrics(y, pred)
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-9)
    assert out["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), rel=1e-9)
    assert out["median_absolute_error"] == pytest.approx(skm.median_absolute_error(y, pred), rel=1e-9)
    assert out["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), rel=1e-9)
    if np.ptp(y) > 1e-3:
        assert out["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-6, abs=1e-9)


def test_regression_degenerate_inputs() -> None:
    out = regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(out["r2"]) and out["mae"] == pytest.approx(2 / 3)
    zeros = regression_metrics([0.0, 1.0], [0.5, 1.0])
    assert math.isnan(zeros["mape"])
    assert any("mape" in w for w in zeros["warnings"]) and any("r2" in w for w in out["warnings"])
    with pytest.raises(InvalidInput, match="numeric"):
        regression_metrics(["a", "b"], [1.0, 2.0])
    with pytest.raises(InvalidInput, match="row 1"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])


def test_anomaly_convention_and_encodings() -> None:
    y = [0, 0, 1, 1, 0]
    scores = [0.1, 0.8, 0.9, 0.4, 0.2]
    out = anomaly_metrics(y, scores, threshold=0.4)  # flags rows 1, 2, 3 (>= threshold)
    assert out["n_flagged"] == 3 and out["n_anomalies"] == 2
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == 1.0
    assert out["flag_rate"] == pytest.approx(0.6)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    sk_style = anomaly_metrics([1, 1, -1, -1, 1], scores, threshold=0.4, anomaly_label=-1)
    assert sk_style["precision"] == out["precision"]
    with pytest.raises(InvalidInput, match="anomaly_label=-1"):
        anomaly_metrics([1, 1, -1, -1, 1], scores, threshold=0.4)
    none_flagged = anomaly_metrics(y, scores, threshold=5.0)
    assert none_flagged["n_flagged"] == 0 and math.isnan(none_flagged["precision"]) and none_flagged["recall"] == 0


@pytest.mark.parametrize(
    ("y_true", "pred", "task"),
    [
        ([0, 1, 1, 0], [0, 1, 0, 0], "classification"),
        ([0, 1, 1, 0], [0.2, 0.9, 0.6, 0.1], "classification"),
        ([0, 1, 1, 0], [-3.0, 2.5, 0.7, -1.0], "anomaly"),
        ([1.5, 2.0, 3.25], [1.4, 2.2, 3.0], "regression"),
        (list(range(100)), [v + 0.5 for v in range(100)], "regression"),
        (["a", "b", "a"], ["a", "a", "a"], "classification"),
        ([0, 1, 2], [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], "classification"),
        ([1, 2, 3, 2], [1.2, 2.5, 2.9, 2.0], "regression"),
    ],
)
def test_infer_task(y_true: list[object], pred: list[object], task: str) -> None:
    assert infer_task(y_true, pred) == task


def test_compute_metrics_dispatches_and_validates() -> None:
    assert compute_metrics("classification", [0, 1], [0, 1])["accuracy"] == 1.0
    assert compute_metrics("regression", [1.0, 2.0], [1.0, 2.5])["mae"] == 0.25
    assert compute_metrics("anomaly", [0, 1], None, [0.1, 0.9], threshold=0.5)["f1"] == 1.0
    assert compute_metrics("auto", [1.5, 2.5, 3.0], [1.5, 2.0, 3.0])["task"] == "regression"
    with pytest.raises(InvalidInput, match=r"Unknown task 'ranking'"):
        compute_metrics("ranking", [0], [0])
    with pytest.raises(InvalidInput, match="threshold="):
        compute_metrics("anomaly", [0, 1], [0.1, 0.9])
    with pytest.raises(InvalidInput, match="regression metrics take only"):
        compute_metrics("regression", [1.0], [1.0], [0.5])
