"""Live performance: the realised metrics of one monitoring window from collected predictions and ground truth.

A window holds what the collector wrote (``prediction``, optionally ``probabilities`` in the order of the
model's classes) and the feedback joined on ``(request_id, row)`` (``ground_truth``, null until it arrives).
:func:`live_performance` turns those columns into one :class:`LivePerformance`: classification accuracy, F1
(binary: the positive class; multiclass: macro) and ROC AUC (binary from the positive column; multiclass
one-vs-rest macro) when probabilities exist, or regression MAE and RMSE. It is pure (no I/O) and accepts numpy
arrays, lists, pandas Series and pyarrow (Chunked)Arrays, so a window can pass the Arrow table's columns as read.

Honesty rules:

* A row counts only when it has both a prediction and ground truth (and probabilities, when they are passed):
  rows still waiting for labels are *ignored*, never counted as wrong. ``rows`` is the window's row count and
  ``labelled`` the rows the metrics were computed on, so a reader sees how much to trust them.
* Every metric carries a two-sided confidence interval at ``level`` (0.95 by default), each of them cheap and
  closed-form: Wilson's score interval for accuracy; the delta method (ratio estimator) for F1; DeLong's
  variance for ROC AUC (the one-vs-rest average of the per-class influence values for multiclass); a normal
  interval for MAE and for the mean squared error, whose bounds' square roots bound RMSE.
* With no labelled row the metrics are ``nan`` (``None`` in :meth:`LivePerformance.to_dict`) with a warning;
  an empty window is not an error.

The point values are :mod:`mloop.evaluation.metrics`' (its conventions: labels, positive class, NaN rules);
this module adds only the window's bookkeeping and the intervals. When only probabilities were collected (the
endpoint answered ``probabilities``), predictions are the argmax of each row, as scikit-learn's ``predict``
(binary 1-D probabilities: positive when ``p > 0.5``). Column parsing lives in :mod:`.columns`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import FloatArray, IntArray, encode_classes
from mloop.evaluation.metrics import classification_metrics, regression_metrics
from mloop.monitoring.columns import (
    BoolArray,
    align_labels,
    as_column,
    placements,
    predicted_labels,
    probability_matrix,
    resolve_classes,
    tie_groups,
)

__all__ = ["LIVE_TASKS", "LivePerformance", "MetricValue", "live_performance", "z_value"]

LiveTask = Literal["classification", "regression"]
LIVE_TASKS: tuple[str, ...] = ("classification", "regression")


def z_value(level: float) -> float:
    """The two-sided standard normal quantile for a confidence ``level`` in (0, 1)."""
    if not isinstance(level, float | int) or not 0.0 < level < 1.0:
        raise InvalidInput(f"level={level!r} must be a confidence level in (0, 1), e.g. 0.95.")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True)
class MetricValue:
    """One metric of a window: its value, a confidence interval ``[low, high]`` and how it was computed."""

    value: float
    low: float = math.nan
    high: float = math.nan
    method: str = ""
    sd: float = math.nan  # the standard error behind the interval (nan when the interval is not value ± z sd)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape; ``nan`` becomes ``None``."""
        return {
            "value": _num(self.value),
            "low": _num(self.low),
            "high": _num(self.high),
            "method": self.method,
            "sd": _num(self.sd),
        }


@dataclass(frozen=True)
class LivePerformance:
    """The realised performance of one window (see the module docstring)."""

    task: str
    rows: int
    labelled: int
    metrics: dict[str, MetricValue]
    level: float = 0.95
    labels: tuple[Any, ...] = ()
    positive: Any = None
    warnings: tuple[str, ...] = field(default=())

    def value(self, name: str) -> float:
        """The value of metric ``name`` (``nan`` when it is not available in this window)."""
        metric = self.metrics.get(name)
        return math.nan if metric is None else metric.value

    def values(self) -> dict[str, float]:
        """Flat figures for a time series: ``rows``, ``labelled`` and each metric with ``_low`` / ``_high``."""
        out: dict[str, float] = {"rows": float(self.rows), "labelled": float(self.labelled)}
        for name, m in self.metrics.items():
            out.update({name: m.value, f"{name}_low": m.low, f"{name}_high": m.high})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON shape (``nan`` as ``None``; labels as given)."""
        return {
            "task": self.task,
            "rows": self.rows,
            "labelled": self.labelled,
            "level": self.level,
            "labels": list(self.labels),
            "positive": self.positive,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "warnings": list(self.warnings),
        }


# ----------------------------------------------------------------------------------------------- entry point
def live_performance(
    task: str,
    prediction: Any,
    ground_truth: Any,
    probabilities: Any = None,
    *,
    classes: Any = None,
    positive: Any = None,
    level: float = 0.95,
) -> LivePerformance:
    """The realised metrics of a window.

    ``prediction`` (may be ``None`` for classification when ``probabilities`` are given: then the argmax),
    ``ground_truth`` (nulls/NaN = not labelled yet) and ``probabilities`` (one list/row of class probabilities
    in ``classes`` order, or a 1-D positive-class probability) have one entry per window row. ``classes`` are the
    model's classes (``classes_``); without them the sorted labels seen are used when they match the number of
    probability columns. Raises :class:`~mloop.errors.InvalidInput` for an unknown task or mismatched lengths.
    """
    z = z_value(level)
    if task not in LIVE_TASKS:
        raise InvalidInput(f"task={task!r} has no live metrics; use one of {', '.join(LIVE_TASKS)}.")
    truth, truth_ok = as_column("ground_truth", ground_truth)
    n = truth.shape[0]
    if task == "regression":
        if prediction is None or probabilities is not None:
            raise InvalidInput("regression live metrics need prediction= and no probabilities.")
        pred, pred_ok = as_column("prediction", prediction, rows=n)
        return _regression(pred, truth, pred_ok & truth_ok, n, z, level)
    return _classification(prediction, truth, truth_ok, probabilities, classes, positive, n, z, level)


def _empty(task: str, n: int, names: tuple[str, ...], level: float, warning: str, **kw: Any) -> LivePerformance:
    metrics = {name: MetricValue(math.nan) for name in names}
    return LivePerformance(task, n, 0, metrics, level, warnings=(warning,), **kw)


_OTHER_METRICS = ("precision is", "recall is", "r2 is", "mape is", "y_proba is outside")  # warnings not about ours
_NO_LABELS = "no row of this window has ground truth yet: metrics are undefined until feedback arrives."


# ------------------------------------------------------------------------------------------- classification
def _classification(
    prediction: Any, truth: Any, truth_ok: BoolArray, probabilities: Any, classes: Any, positive: Any, n: int,
    z: float, level: float,
) -> LivePerformance:  # fmt: skip
    warnings: list[str] = []
    proba: FloatArray | None = None
    use = truth_ok.copy()
    pred: np.ndarray[Any, Any] | None = None
    pred_ok = truth_ok  # placeholder until a prediction column is given
    if prediction is not None:
        pred, pred_ok = as_column("prediction", prediction, rows=n)
    if probabilities is not None:  # a row without a prediction is predicted from its probabilities
        proba, proba_ok = probability_matrix(probabilities, rows=n, width=None if classes is None else len(classes))
        use &= proba_ok
    elif pred is None:
        raise InvalidInput("live classification metrics need prediction= or probabilities= (or both).")
    else:
        use &= pred_ok
    seen = [truth[use]] + ([] if pred is None else [pred[use & pred_ok]])
    labs = resolve_classes(classes, None if proba is None else proba.shape[1], seen)
    names = ("accuracy", "f1") + (() if proba is None else ("roc_auc",))
    if labs is not None and classes is not None and use.any():
        aligned, labs_aligned = align_labels(truth[use], labs)
        known = np.isin(aligned, labs_aligned)
        if (dropped := int(known.size - known.sum())) > 0:
            warnings.append(f"{dropped} labelled row(s) have ground truth that is not one of the model's classes; "
                            "they were left out (check the feedback's label encoding).")  # fmt: skip
            rows = np.flatnonzero(use)[known]
            use = np.zeros(n, dtype=bool)
            use[rows] = True
    if not use.any():
        return _empty("classification", n, names, level, _NO_LABELS)
    yt = truth[use]
    pu = None if proba is None else proba[use]
    yp = _predictions(pred, pred_ok, use, pu, labs)
    yt, yp = align_labels(yt, yp)
    m = classification_metrics(yt, yp, labels=labs, positive=positive)  # ROC AUC below: one sort gives value and sd
    warnings.extend(w for w in m["warnings"] if not w.startswith(_OTHER_METRICS))
    codes, _ = encode_classes({"t": np.asarray(yt), "p": np.asarray(yp)}, np.asarray(m["labels"]), None)
    t, p = codes["t"], codes["p"]
    k = len(m["labels"])
    binary = "positive" in m
    pos = m["labels"].index(m["positive"]) if binary else -1
    scope = np.array([pos]) if binary else np.arange(k)
    metrics = {"accuracy": _wilson(int(np.count_nonzero(t == p)), t.size, z)}
    f1 = m["f1"] if binary else m["f1_macro"]
    metrics["f1"] = _interval(f1, _f1_sd(t, p, k, scope), z, "delta")
    if pu is not None:
        auc, auc_sd, left_out = _roc_auc(t, pu, scope)
        metrics["roc_auc"] = _interval(auc, auc_sd, z, "delong")
        if left_out:
            missing = [m["labels"][c] for c in left_out][:20]
            tail = "." if math.isnan(auc) else "; the one-vs-rest average leaves them out."
            warnings.append(f"roc_auc is undefined for class(es) {missing}: no labelled row is, or every labelled "
                            f"row is, of that class{tail}")  # fmt: skip
    return LivePerformance(
        "classification", n, int(t.size), metrics, level, tuple(m["labels"]),
        m.get("positive"), tuple(warnings),
    )  # fmt: skip


def _predictions(
    pred: np.ndarray[Any, Any] | None, pred_ok: BoolArray, use: BoolArray, proba: FloatArray | None, labs: Any
) -> np.ndarray[Any, Any]:
    """The used rows' predictions: as collected where there is one, else the argmax of the probabilities."""
    if proba is None:
        assert pred is not None
        return pred[use]
    derived = predicted_labels(proba, labs)
    if pred is None:
        return derived
    given = pred_ok[use]
    if given.all():
        return pred[use]
    if not given.any():
        return derived
    mixed = derived.astype(object)
    mixed[given] = pred[use][given]
    return np.asarray(mixed.tolist())


def _wilson(correct: int, n: int, z: float) -> MetricValue:
    """Wilson's score interval for a proportion (good coverage also near 0 and 1 and for small n)."""
    phat = correct / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return MetricValue(
        phat, max(0.0, centre - half), min(1.0, centre + half), "wilson", math.sqrt(phat * (1 - phat) / n)
    )


def _interval(value: float, sd: float, z: float, method: str, lo: float = 0.0, hi: float = 1.0) -> MetricValue:
    if math.isnan(value) or math.isnan(sd):
        return MetricValue(value, math.nan, math.nan, method)
    return MetricValue(value, max(lo, value - z * sd), min(hi, value + z * sd), method, sd)


def _f1_sd(t: IntArray, p: IntArray, k: int, scope: IntArray) -> float:
    """Standard error of the (macro) F1 over ``scope`` classes by the delta method on the ratio estimator.

    F1_c = sum(a_ic) / sum(b_ic) with a = 2[t=c][p=c], b = [t=c] + [p=c]; a row's influence on the average is
    the mean over classes of (a_ic - F1_c b_ic) / B_c, and the variance is n/(n-1) times its sum of squares.
    Classes whose F1 is undefined (B_c = 0) are left out, as in the point value.
    """
    n = t.size
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    b = np.bincount(t, minlength=k) + np.bincount(p, minlength=k).astype(np.float64)
    inside = np.zeros(k, dtype=bool)
    inside[scope] = True
    inside &= b > 0
    if n < 2 or not inside.any():
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(inside, 2 * tp / b, 0.0)
        miss = np.where(inside, f1 / b, 0.0)  # influence of a class in a row where it is wrong (a=0, b=1)
        hit = np.where(inside, (2 - 2 * f1) / b, 0.0)  # a row where it is right (a=2, b=2)
    infl = np.where(t == p, hit[t], -miss[t] - miss[p]) / inside.sum()
    return math.sqrt(float(infl @ infl) * n / (n - 1))


def _roc_auc(t: IntArray, proba: FloatArray, scope: IntArray) -> tuple[float, float, list[int]]:
    """ROC AUC (one-vs-rest average over ``scope``), DeLong's standard error, and the classes left out (with
    no positive or no negative row: undefined, left out of the average as :mod:`mloop.evaluation.metrics` does).

    Placement values (one sort per class): a positive's share of negatives scored below it, a negative's share
    of positives scored above it (ties half); the AUC is the positives' mean. Each row's influence is
    (V - AUC) / sqrt(m (m - 1)) in its group of size m; the variance of the average is the sum of squares of the
    rows' mean influence, which is DeLong's S10/m + S01/n for one class.
    """
    infl = np.zeros(t.size)
    aucs: list[float] = []
    left_out: list[int] = []
    sd_defined = True
    for c in scope.tolist():
        y = (t == c).astype(np.float64)
        n1 = int(y.sum())
        n0 = t.size - n1
        if n1 == 0 or n0 == 0:
            left_out.append(c)
            continue
        order, starts, group = tie_groups(proba[:, c])
        below0, above1 = placements((order, starts, group), y)
        pos = y[order] > 0.5
        v = np.where(pos, below0 / n0, above1 / n1)
        auc = float(v[pos].mean())
        aucs.append(auc)
        if n1 < 2 or n0 < 2:
            sd_defined = False  # the AUC is defined, its variance is not: no interval
            continue
        infl[order] += (v - auc) / np.where(pos, math.sqrt(n1 * (n1 - 1)), math.sqrt(n0 * (n0 - 1)))
    if not aucs:
        return math.nan, math.nan, left_out
    value = sum(aucs) / len(aucs)
    if not sd_defined:
        return value, math.nan, left_out
    infl /= len(aucs)
    return value, math.sqrt(float(infl @ infl)), left_out


# ------------------------------------------------------------------------------------------------ regression
def _regression(
    pred: np.ndarray[Any, Any], truth: np.ndarray[Any, Any], use: BoolArray, n: int, z: float, level: float
) -> LivePerformance:
    names = ("mae", "rmse")
    if not use.any():
        return _empty("regression", n, names, level, _NO_LABELS)
    yt, yp = _numbers("ground_truth", truth[use]), _numbers("prediction", pred[use])
    m = regression_metrics(yt, yp)
    err = yp - yt
    abs_err, sq = np.abs(err), err * err
    nl = yt.size

    def se(x: FloatArray) -> float:
        return float(np.std(x, ddof=1)) / math.sqrt(nl) if nl > 1 else math.nan

    mae = _interval(m["mae"], se(abs_err), z, "normal", lo=0.0, hi=math.inf)
    mse = m["rmse"] ** 2
    mse_sd = se(sq)
    if math.isnan(mse_sd):
        rmse = MetricValue(m["rmse"], math.nan, math.nan, "normal (mse)")
    else:
        low, high = math.sqrt(max(0.0, mse - z * mse_sd)), math.sqrt(mse + z * mse_sd)
        sd = mse_sd / (2 * m["rmse"]) if m["rmse"] > 0 else math.nan  # delta method
        rmse = MetricValue(m["rmse"], low, high, "normal (mse)", sd)
    kept = tuple(w for w in m["warnings"] if not w.startswith(_OTHER_METRICS))
    return LivePerformance("regression", n, nl, {"mae": mae, "rmse": rmse}, level, warnings=kept)


def _numbers(name: str, values: np.ndarray[Any, Any]) -> FloatArray:
    try:
        out: npt.NDArray[np.float64] = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{name} must be numbers for regression metrics; got values like {values[:3].tolist()!r}."
        ) from None
    return out
