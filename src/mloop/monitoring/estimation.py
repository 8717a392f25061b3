"""Estimated performance: expected accuracy, F1 and ROC AUC of a window from predicted probabilities alone.

Labels arrive late (or never); a classifier whose probabilities are calibrated already says how often it is
right. This is confidence-based performance estimation (CBPE, as NannyML does it): if ``p_i`` is the
probability the model gives row ``i``'s true class being ``c``, the expected confusion matrix of a window is
the sum of those probabilities over the rows predicted ``c'``, and the metrics follow from it.

* **Accuracy**: the mean probability of the predicted class (for argmax predictions, the mean max-probability).
* **F1** (binary: the positive class; multiclass: the one-vs-rest macro average): ``2 TP / (2 TP + FP + FN)``
  from the expected counts ``TP_c = sum_{pred=c} p_ic``, ``FP_c = sum_{pred=c} (1 - p_ic)``,
  ``FN_c = sum_{pred!=c} p_ic`` (a ratio of expectations, as CBPE).
* **ROC AUC** (binary; multiclass one-vs-rest macro): CBPE's construction, in which each row is a positive with
  weight ``p_i`` and a negative with weight ``1 - p_i``: the expected share of (positive, negative) pairs
  ordered correctly by the model's score, ``sum_{i!=j} p_i (1 - p_j) [s_i > s_j] / sum_{i!=j} p_i (1 - p_j)``
  (ties count half; a row is never paired with itself, so it matches NannyML's curve up to O(1/n)). Rows are
  ranked by the model's *own* score, so a calibration map that creates ties does not change the ranking.

Each metric comes with ``low``/``high``: expected ± z standard deviations of the realised metric if the
probabilities are calibrated (labels drawn independently as ``y_i ~ p_i``), by the delta method over the
per-row categorical outcomes. That is the band in which the realised value should fall once labels arrive;
a realised value outside it says the model's probabilities no longer describe its accuracy (concept drift or
miscalibration), which covariate shift alone does not cause. Estimates are exact in expectation only when the
probabilities are calibrated on the current data: they track covariate shift, not concept drift.

**Calibration** (:mod:`.calibration`): an isotonic map fitted on a labelled reference, used when it lowers the
cross-validated calibration error; pass it as ``calibration=``. A fitted map has its own error (it learnt from
a finite reference), so the band then also holds the spread of the estimate over the map's bootstrap refits
(``calibration_sd``, computed on at most ``REPLICATE_ROWS`` evenly spaced rows), added in quadrature. With a
1,000-row reference this widens the band about 2.5x, with 20,000 rows about 1.15x.

Cost: one sort per evaluated class (the model's scores; shared by the refits) and a few passes over the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import FloatArray, IntArray
from mloop.monitoring.calibration import Calibration
from mloop.monitoring.columns import Ranking, class_inputs, placements, tie_groups
from mloop.monitoring.performance import LivePerformance, MetricValue, z_value

__all__ = ["METRICS", "REPLICATE_ROWS", "EstimatedPerformance", "compare_estimate", "estimate_performance"]

METRICS = ("accuracy", "f1", "roc_auc")
REPLICATE_ROWS = 50_000


@dataclass(frozen=True)
class EstimatedPerformance:
    """The expected performance of a window (``metrics[name].value``) and the band the realised value should
    fall in if the probabilities are calibrated (``low``, ``high``)."""

    rows: int
    scored: int
    metrics: dict[str, MetricValue]
    calibrated: bool
    level: float = 0.95
    labels: tuple[Any, ...] = ()
    positive: Any = None
    warnings: tuple[str, ...] = ()
    calibration_sd: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        """The expected value of metric ``name`` (``nan`` when it is not available)."""
        metric = self.metrics.get(name)
        return math.nan if metric is None else metric.value

    def values(self) -> dict[str, float]:
        """Flat figures for a time series: ``rows``, ``scored`` and each ``estimated_<metric>`` (+ low/high)."""
        out: dict[str, float] = {"rows": float(self.rows), "scored": float(self.scored)}
        for name, m in self.metrics.items():
            out.update({f"estimated_{name}": m.value, f"estimated_{name}_low": m.low, f"estimated_{name}_high": m.high})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON shape (``nan`` as ``None``)."""
        return {
            "rows": self.rows,
            "scored": self.scored,
            "calibrated": self.calibrated,
            "level": self.level,
            "labels": list(self.labels),
            "positive": self.positive,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "calibration_sd": dict(self.calibration_sd),
            "warnings": list(self.warnings),
        }


# ------------------------------------------------------------------------------------------------ estimate
def estimate_performance(
    probabilities: Any,
    prediction: Any = None,
    *,
    classes: Any = None,
    positive: Any = None,
    calibration: Calibration | None = None,
    level: float = 0.95,
) -> EstimatedPerformance:
    """Expected accuracy, F1 and ROC AUC of a window (rows without probabilities are ignored).

    ``prediction`` is what the model answered (as collected); rows without one are predicted by argmax.
    ``calibration`` (from :func:`fit_calibration`) maps the probabilities before estimating when it is used.
    """
    z = z_value(level)
    proba, codes, ok, scope, labs = class_inputs(probabilities, prediction, classes, positive, [])
    names = labs.tolist()
    pos = names[scope[0]] if len(scope) == 1 else None
    warnings: list[str] = []
    if calibration is not None and list(calibration.classes) != names:
        raise InvalidInput(
            f"the calibration was fitted for classes {list(calibration.classes)[:20]} but this window's are "
            f"{names[:20]}; fit it on a reference of the same model."
        )
    n, scored = proba.shape[0], int(ok.sum())
    calibrated = calibration is not None and calibration.used
    if scored == 0:
        nan = {m: MetricValue(math.nan) for m in METRICS}
        warnings.append("no row of this window has probabilities: nothing to estimate from.")
        return EstimatedPerformance(n, 0, nan, calibrated, level, tuple(names), pos, tuple(warnings))
    raw, yhat = proba[ok], codes[ok]
    q = calibration.apply(raw) if calibration is not None else raw
    found = _expected(q, yhat, scope, _rankings(raw, scope), with_sd=True)
    cal_sd = _calibration_sd(calibration, raw, yhat, scope) if calibrated else {}
    metrics = {}
    for name, (value, sd) in found.items():
        total = math.hypot(sd, cal_sd.get(name, 0.0))
        metrics[name] = MetricValue(value, *_band(value, total, z), "cbpe", total)
        if math.isnan(value):
            warnings.append(f"expected {name} is undefined: the probabilities give no expected positives/negatives.")
    if calibrated:
        assert calibration is not None
        warnings.append(
            f"probabilities calibrated on {calibration.reference_rows} reference rows "
            f"(cross-validated ECE {calibration.ece_calibrated:.4f}); the band includes the calibration's error "
            f"({len(calibration.replicates)} bootstrap refits)."
        )
    return EstimatedPerformance(n, scored, metrics, calibrated, level, tuple(names), pos, tuple(warnings), cal_sd)


def _band(value: float, sd: float, z: float) -> tuple[float, float]:
    if math.isnan(value) or math.isnan(sd):
        return math.nan, math.nan
    return max(0.0, value - z * sd), min(1.0, value + z * sd)


def _rankings(score: FloatArray, scope: list[int]) -> list[Ranking]:
    """The model's own order of the rows per evaluated class (calibration never changes it)."""
    return [tie_groups(np.ascontiguousarray(score[:, c])) for c in scope]


def _expected(
    q: FloatArray, yhat: IntArray, scope: list[int], rankings: list[Ranking], *, with_sd: bool
) -> dict[str, tuple[float, float]]:
    """(expected value, standard deviation of the realised value or nan) per metric."""
    return {
        "accuracy": _accuracy(q, yhat),
        "f1": _f1(q, yhat, scope, with_sd),
        "roc_auc": _auc(q, scope, rankings, with_sd),
    }


def _calibration_sd(calibration: Any, raw: FloatArray, yhat: IntArray, scope: list[int]) -> dict[str, float]:
    """Standard deviation of each estimate over the calibration's bootstrap refits, on at most
    ``REPLICATE_ROWS`` evenly spaced rows of the window (the spread is a property of the maps)."""
    if len(calibration.replicates) < 2:
        return {}
    rows = raw.shape[0]
    take = np.arange(rows) if rows <= REPLICATE_ROWS else np.linspace(0, rows - 1, REPLICATE_ROWS).astype(np.intp)
    sub, sub_yhat = raw[take], yhat[take]
    rankings = _rankings(sub, scope)
    values: dict[str, list[float]] = {}
    for b in range(len(calibration.replicates)):
        for name, (value, _) in _expected(calibration.apply(sub, b), sub_yhat, scope, rankings, with_sd=False).items():
            values.setdefault(name, []).append(value)
    return {name: float(np.std(v, ddof=1)) for name, v in values.items() if not np.isnan(v).any()}


def _variance(q: FloatArray, grads: list[tuple[int, FloatArray]]) -> float:
    """Var of sum_c g_ic [y_i = c] with y_i ~ Categorical(q_i), rows independent."""
    if len(grads) == 1:  # binary: one column, Bernoulli variance
        c, g = grads[0]
        qc = q[:, c]
        return float(np.sum(g * g * qc * (1.0 - qc)))
    s1 = np.zeros(q.shape[0])
    s2 = np.zeros(q.shape[0])
    for c, g in grads:
        t = g * q[:, c]
        s1 += t
        s2 += g * t
    return float(np.sum(s2 - s1 * s1))


def _accuracy(q: FloatArray, yhat: IntArray) -> tuple[float, float]:
    qh = q[np.arange(q.shape[0]), yhat]
    n = qh.size
    return float(qh.mean()), math.sqrt(float(np.sum(qh * (1 - qh)))) / n


def _f1(q: FloatArray, yhat: IntArray, scope: list[int], with_sd: bool) -> tuple[float, float]:
    parts = []
    for c in scope:
        hit = yhat == c
        tp, d = float(q[hit, c].sum()), float(np.count_nonzero(hit)) + float(q[:, c].sum())
        if d > 0:
            grad = np.where(hit, 2 / d, 0.0) - 2 * tp / (d * d) if with_sd else None
            parts.append((c, 2 * tp / d, grad))
    return _average(q, parts, with_sd)


def _auc(q: FloatArray, scope: list[int], rankings: list[Ranking], with_sd: bool) -> tuple[float, float]:
    parts = []
    for c, ranking in zip(scope, rankings, strict=True):
        w = np.ascontiguousarray(q[:, c])
        w1, w0 = float(w.sum()), float(w.size - w.sum())
        en = w1 * w0 - float(w @ (1 - w))  # E[N1 N0] = sum over pairs i != j of w_i (1 - w_j)
        if en <= 1e-12:
            continue
        below0, above1 = placements(ranking, w)
        order = ranking[0]
        eu = float(w[order] @ below0)
        grad = None
        if with_sd:
            grad = np.empty(w.size)
            grad[order] = (below0 - above1) / en - eu * (w0 - w1) / (en * en)
        parts.append((c, eu / en, grad))
    return _average(q, parts, with_sd)


def _average(q: FloatArray, parts: list[tuple[int, float, FloatArray | None]], with_sd: bool) -> tuple[float, float]:
    """The mean over classes and, with gradients, the standard deviation of the realised mean."""
    if not parts:
        return math.nan, math.nan
    m = len(parts)
    value = sum(v for _, v, _ in parts) / m
    if not with_sd:
        return value, math.nan
    return value, math.sqrt(_variance(q, [(c, g / m) for c, _, g in parts if g is not None]))


def compare_estimate(estimated: EstimatedPerformance, realised: LivePerformance) -> dict[str, dict[str, Any]]:
    """The estimate beside the realised metric once labels arrive: per metric ``estimated``, ``realised``,
    ``error`` (estimated - realised), ``z`` (the error in standard deviations of the band; |z| > 3 says the
    probabilities no longer describe the model's accuracy) and ``labelled``."""
    out: dict[str, dict[str, Any]] = {}
    for name, est in estimated.metrics.items():
        real = realised.value(name)
        err = est.value - real
        zs = err / est.sd if est.sd > 0 else math.nan
        out[name] = {
            "estimated": None if math.isnan(est.value) else est.value,
            "realised": None if math.isnan(real) else real,
            "error": None if math.isnan(err) else err,
            "z": None if math.isnan(zs) else zs,
            "labelled": realised.labelled,
        }
    return out
