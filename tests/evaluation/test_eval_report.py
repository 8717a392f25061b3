"""Reports: ROC points equal scikit-learn's curve; HTML is self-contained and escaped; PNG is a PNG."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from mloop.errors import InvalidInput
from mloop.evaluation import (
    classification_metrics,
    evaluation_report_html,
    evaluation_report_png,
    mcnemar,
    paired_bootstrap,
    regression_metrics,
    roc_curve_points,
)


def _data(n: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    pa = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 2)
    pb = np.clip(0.4 * y + 0.6 * rng.random(n), 0, 1)
    return y, pa, pb


def test_roc_points_equal_sklearn_without_downsampling() -> None:
    y, pa, _ = _data()
    fpr, tpr = roc_curve_points(y, pa, max_points=10_000)
    sk_fpr, sk_tpr, _ = roc_curve(y, pa, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_roc_points_are_downsampled_keeping_the_ends() -> None:
    y, _, pb = _data(5000)
    fpr, tpr = roc_curve_points(y, pb, max_points=50)
    assert 2 < len(fpr) <= 50 and len(fpr) == len(tpr)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert roc_curve_points([1, 1, 1], [0.2, 0.5, 0.9]) == ([], [])
    with pytest.raises(InvalidInput, match="max_points"):
        roc_curve_points(y, pb, max_points=1)


def test_html_report_is_self_contained_and_lists_everything() -> None:
    y, pa, pb = _data()
    metrics = classification_metrics(y, (pb > 0.5).astype(int), pb)
    comparison = {
        "roc_auc": paired_bootstrap("roc_auc", y, pa, pb, n_boot=100).to_dict(),
        "mcnemar": mcnemar(y, pa > 0.5, pb > 0.5).to_dict(),
        "verdict": "<promote>",
    }
    page = evaluation_report_html(
        "Churn <v2>",
        metrics,
        task="classification",
        roc=roc_curve_points(y, pb),
        importance=[("tenure", 0.12, 0.01), ("<script>x</script>", 0.03, 0.02)],
        comparison=comparison,
    )
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 5  # confusion, roc, calibration, ...
    for name in ("accuracy", "roc_auc", "log_loss", "brier", "ece", "f1_macro", "Champion vs challenger", "McNemar"):
        assert name in page
    assert "Churn &lt;v2&gt;" in page and "&lt;promote&gt;" in page
    assert "<script" not in page.lower() and "<v2>" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from a network


def test_html_report_is_deterministic() -> None:
    y, _, pb = _data()
    metrics = regression_metrics(y, pb)
    first, again = (evaluation_report_html("t", metrics, task="x", roc=roc_curve_points(y, pb)) for _ in "12")
    assert first == again and first.count("<svg") == 1


def test_regression_report_without_charts() -> None:
    page = evaluation_report_html("Prices", regression_metrics([1.0, 2.0, 3.0], [1.1, 1.9, 3.2]), task="regression")
    assert "mae" in page and "rmse" in page and "<svg" not in page


def test_png_summary() -> None:
    y, _, pb = _data()
    metrics = classification_metrics(y, (pb > 0.5).astype(int), pb)
    png = evaluation_report_png("Churn", metrics, task="classification", roc=roc_curve_points(y, pb))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000
    small = evaluation_report_png("Prices", regression_metrics([1.0, 2.0], [1.5, 2.0]), task="regression")
    assert small[:8] == b"\x89PNG\r\n\x1a\n"
