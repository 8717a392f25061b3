"""Evaluation metrics by task: classification, regression and anomaly detection.

Every function is pure, accepts array-likes (lists, numpy arrays, pandas Series) and returns a JSON-able dict
of Python floats, ints, strings and lists. A metric that is undefined for valid but degenerate data (ROC AUC
when ``y_true`` holds one class, precision when nothing was predicted positive, R2 for a constant target) is
``nan`` and a sentence in the dict's ``warnings`` list says why; it never raises. Malformed input (length
mismatch, empty arrays, NaN labels, an unknown task) raises :class:`~mloop.errors.InvalidInput`.

Conventions:

* Labels are the sorted union of the values in ``y_true`` and ``y_pred`` unless ``labels`` is given (then
  its order is kept: pass ``model.classes_`` so probability columns line up).
* Binary tasks report precision/recall/F1 for the *positive* class: ``positive`` when given, otherwise the
  last label (1 for 0/1 data, also when only 0 occurs; True for booleans; the lexicographically larger
  string, with a warning).
  Macro and weighted averages are always reported; undefined per-class values (``nan``) are left out of them,
  as scikit-learn does with ``zero_division=nan``. F1 is ``2TP / (2TP + FP + FN)``.
* ``y_proba`` is the probability of the positive class (1-D) or one column per label (2-D). Binary scores
  outside [0, 1] are treated as decision scores: ROC AUC is computed, log loss/Brier/calibration are ``nan``.
* Anomaly scores are "higher = more anomalous"; a row is flagged when ``score >= threshold``. For
  scikit-learn's IsolationForest pass ``-model.score_samples(X)``.

Everything is numpy: one bincount builds the confusion matrix and one sort per probability column gives ROC
AUC (average ranks, exact with ties), so a 1,000,000-row holdout is evaluated in a fraction of a second.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import (
    FloatArray,
    IntArray,
    as_array,
    as_float_array,
    check_lengths,
    encode_classes,
    encode_labels,
    resolve_positive,
    unique_labels,
)

__all__ = [
    "TASKS",
    "Task",
    "anomaly_metrics",
    "as_float_array",
    "binary_auc",
    "classification_metrics",
    "compute_metrics",
    "encode_classes",
    "encode_labels",
    "infer_task",
    "prf_from_counts",
    "regression_metrics",
    "resolve_positive",
]

Task = Literal["classification", "regression", "anomaly"]
TASKS: tuple[str, ...] = ("classification", "regression", "anomaly")
LOG_EPS = float(np.finfo(np.float64).eps)
_MAX_CLASSES_FOR_INFERENCE = 50


# ------------------------------------------------------------------------------------------ classification
def prf_from_counts(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Precision, recall and F1 from counts (any shape); ``nan`` where the denominator is zero."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return precision, recall, f1


def nan_average(values: FloatArray, weights: FloatArray | None = None) -> FloatArray:
    """Average over the last axis ignoring NaN, without RuntimeWarnings; all-NaN gives NaN.

    As in scikit-learn, when every remaining weight is zero the remaining values are averaged unweighted.
    """
    ok = ~np.isnan(values)
    filled = np.where(ok, values, 0.0)
    count = ok.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = np.where(count > 0, filled.sum(axis=-1) / count, np.nan)
        if weights is None:
            return plain
        w = weights * ok
        total = w.sum(axis=-1)
        return np.where(total > 0, (filled * w).sum(axis=-1) / total, plain)


def binary_auc(y_pos: npt.NDArray[np.bool_], score: FloatArray) -> float:
    """ROC AUC from average ranks (exact with ties, equal to scikit-learn's); ``nan`` with one class."""
    n = y_pos.size
    n_pos = int(np.count_nonzero(y_pos))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score)
    ordered = score[order]
    pos_sorted = y_pos[order]
    change = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    if change.size == n - 1:  # no ties: ranks are 1..n
        rank_sum = float(np.flatnonzero(pos_sorted).sum()) + n_pos
    else:
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [n]))
        pos_in_group = np.add.reduceat(pos_sorted.astype(np.int64), starts)
        rank_sum = float(pos_in_group @ ((starts + ends + 1) / 2.0))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def calibration_curve(
    y_pos: npt.NDArray[np.bool_], proba: FloatArray, *, n_bins: int, strategy: str
) -> tuple[dict[str, Any], float]:
    """Reliability curve (empty bins dropped, as scikit-learn does) and the expected calibration error."""
    if strategy == "quantile":
        edges = np.percentile(proba, np.linspace(0, 100, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise InvalidInput(f"calibration_strategy={strategy!r} is unknown; use 'uniform' or 'quantile'.")
    ids = np.searchsorted(edges[1:-1], proba)
    count = np.bincount(ids, minlength=n_bins)
    nz = count > 0
    mean_pred = np.bincount(ids, weights=proba, minlength=n_bins)[nz] / count[nz]
    frac_pos = np.bincount(ids, weights=y_pos, minlength=n_bins)[nz] / count[nz]
    ece = float(np.sum(count[nz] * np.abs(frac_pos - mean_pred)) / proba.size)
    curve = {
        "strategy": strategy,
        "n_bins": n_bins,
        "bin_edges": edges.tolist(),
        "mean_predicted": mean_pred.tolist(),
        "fraction_positive": frac_pos.tolist(),
        "count": count[nz].tolist(),
    }
    return curve, ece


def _proba_metrics(
    out: dict[str, Any],
    codes: IntArray,
    labels: np.ndarray[Any, Any],
    pos: int | None,
    y_proba: Any,
    warnings: list[str],
    n_bins: int,
    strategy: str,
) -> None:
    k, n = labels.size, codes.size
    proba = as_float_array("y_proba", y_proba, ndim=2 if np.ndim(y_proba) == 2 else 1)
    if proba.ndim == 2 and proba.shape[1] == 1:
        proba = proba[:, 0]
    check_lengths(y_true=codes, y_proba=proba)
    if proba.ndim == 2 and proba.shape[1] != k:
        raise InvalidInput(
            f"y_proba has {proba.shape[1]} columns but there are {k} labels {labels.tolist()[:20]}; "
            "pass labels=model.classes_ so the columns can be matched to classes."
        )
    if pos is not None:
        score = proba[:, pos] if proba.ndim == 2 else proba
        y_pos = codes == pos
        out["roc_auc"] = binary_auc(y_pos, score)
        if math.isnan(out["roc_auc"]):
            warnings.append(f"roc_auc is undefined: y_true holds only one class ({labels.tolist()[codes[0]]!r}).")
        if score.min() < 0.0 or score.max() > 1.0:
            warnings.append(
                f"y_proba is outside [0, 1] (min {score.min():.4g}, max {score.max():.4g}): treated as scores; "
                "log_loss, brier and calibration need probabilities (use predict_proba)."
            )
            out.update(log_loss=math.nan, brier=math.nan, ece=math.nan, calibration=None)
            return
        p = np.clip(score, LOG_EPS, 1 - LOG_EPS)
        out["log_loss"] = float(-np.mean(np.where(y_pos, np.log(p), np.log1p(-p))))
        out["brier"] = float(np.mean((score - y_pos) ** 2))
        out["calibration"], out["ece"] = calibration_curve(y_pos, score, n_bins=n_bins, strategy=strategy)
        return
    if proba.ndim != 2:
        raise InvalidInput(f"y_proba for {k} classes must have shape (n_rows, {k}); got shape {proba.shape}.")
    aucs = np.array([binary_auc(codes == j, proba[:, j]) for j in range(k)])
    if np.isnan(aucs).any():
        missing = [labels.tolist()[j] for j in np.flatnonzero(np.isnan(aucs))]
        warnings.append(f"one-vs-rest roc_auc left out classes absent from y_true: {missing[:20]}.")
    out["roc_auc"] = float(nan_average(aucs))
    if proba.min() < 0.0 or proba.max() > 1.0:
        warnings.append("y_proba is outside [0, 1]: log_loss needs probabilities (use predict_proba).")
        out["log_loss"] = math.nan
    else:
        p_true = np.clip(proba[np.arange(n), codes], LOG_EPS, 1 - LOG_EPS)
        out["log_loss"] = float(-np.mean(np.log(p_true)))


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    y_proba: Any = None,
    *,
    labels: Any = None,
    positive: Any = None,
    calibration_bins: int = 10,
    calibration_strategy: str = "uniform",
) -> dict[str, Any]:
    """Accuracy, precision/recall/F1, confusion matrix and, given ``y_proba``, ROC AUC, log loss and calibration.

    Keys: ``task, n_rows, labels, accuracy``, ``precision_macro, recall_macro, f1_macro`` and ``_weighted``
    (weighted by support), ``per_class`` (list of {label, precision, recall, f1, support}), ``confusion_matrix``
    ({labels, matrix}; rows are true labels, columns predictions), ``warnings``. Binary (or ``positive`` given):
    ``positive, precision, recall, f1`` for that class. With ``y_proba``: ``roc_auc`` (one-vs-rest macro for
    multiclass), ``log_loss``; binary also ``brier``, ``ece`` and ``calibration`` ({strategy, n_bins,
    bin_edges, mean_predicted, fraction_positive, count}, ``calibration_bins`` uniform or quantile bins).
    """
    yt, yp = as_array("y_true", y_true), as_array("y_pred", y_pred)
    n = check_lengths(y_true=yt, y_pred=yp)
    if calibration_bins < 1:
        raise InvalidInput(f"calibration_bins must be >= 1; got {calibration_bins}.")
    warnings: list[str] = []
    codes, labs = encode_classes({"y_true": yt, "y_pred": yp}, labels, positive)
    k = labs.size
    t, p = codes["y_true"], codes["y_pred"]
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    precision, recall, f1 = prf_from_counts(tp, cm.sum(axis=0) - tp, support - tp)
    names = labs.tolist()
    out: dict[str, Any] = {"task": "classification", "n_rows": n, "labels": names, "accuracy": float(tp.sum() / n)}
    pos: int | None = None
    if k <= 2 or positive is not None:
        pos = resolve_positive(labs, positive, warnings)
        out.update(positive=names[pos], precision=float(precision[pos]), recall=float(recall[pos]), f1=float(f1[pos]))
        if math.isnan(out["precision"]):
            warnings.append(f"precision is undefined: no row was predicted as the positive class {names[pos]!r}.")
        if math.isnan(out["recall"]):
            warnings.append(f"recall is undefined: y_true has no row of the positive class {names[pos]!r}.")
    for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{metric}_macro"] = float(nan_average(values))
        out[f"{metric}_weighted"] = float(nan_average(values, support))
    out["per_class"] = [
        {
            "label": names[j],
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "support": int(support[j]),
        }
        for j in range(k)
    ]
    out["confusion_matrix"] = {"labels": names, "matrix": cm.tolist()}
    if y_proba is not None:
        _proba_metrics(out, t, labs, pos, y_proba, warnings, calibration_bins, calibration_strategy)
    out["warnings"] = warnings
    return out


# --------------------------------------------------------------------------------------- regression, anomaly
def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MAE, RMSE, R2, median absolute error, mean error (bias, pred - true) and MAPE (as a fraction).

    R2 is ``nan`` for a constant ``y_true`` and MAPE is ``nan`` when ``y_true`` contains zeros (each with a
    warning); the keys are always present.
    """
    yt, yp = as_float_array("y_true", y_true), as_float_array("y_pred", y_pred)
    n = check_lengths(y_true=yt, y_pred=yp)
    warnings: list[str] = []
    err = yp - yt
    abs_err = np.abs(err)
    sse = float(err @ err)
    sst = float(np.sum((yt - yt.mean()) ** 2))
    r2 = 1.0 - sse / sst if sst > 0 else math.nan
    if sst == 0:
        warnings.append(f"r2 is undefined: y_true is constant ({yt[0]:.6g}).")
    zeros = np.count_nonzero(yt == 0)
    if zeros:
        warnings.append(f"mape is undefined: y_true has {zeros} zero(s).")
        mape = math.nan
    else:
        mape = float(np.mean(abs_err / np.abs(yt)))
    return {
        "task": "regression",
        "n_rows": n,
        "mae": float(abs_err.mean()),
        "rmse": math.sqrt(sse / n),
        "r2": r2,
        "median_absolute_error": float(np.median(abs_err)),
        "mean_error": float(err.mean()),
        "mape": mape,
        "warnings": warnings,
    }


def anomaly_metrics(y_true: Any, scores: Any, *, threshold: float, anomaly_label: Any = None) -> dict[str, Any]:
    """Precision/recall/F1 of flagging rows with ``scores >= threshold`` (higher = more anomalous).

    ``y_true`` is 0/1 or boolean with 1/True = anomaly; for other encodings (scikit-learn's -1/1) pass
    ``anomaly_label`` (e.g. -1). Also returns ``n_flagged, n_anomalies, flag_rate`` and the threshold-free
    ``roc_auc`` of the scores.
    """
    yt = as_array("y_true", y_true)
    s = as_float_array("scores", scores)
    n = check_lengths(y_true=yt, scores=s)
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise InvalidInput(f"threshold must be a finite number; got {threshold!r}.")
    if anomaly_label is None:
        values = unique_labels("y_true", yt).tolist()
        if not set(values) <= {0, 1}:
            raise InvalidInput(
                f"y_true for anomaly metrics must be 0/1 or boolean (1 = anomaly); got values {values[:10]}. "
                "For scikit-learn's -1/1 convention pass anomaly_label=-1."
            )
        y_pos = yt.astype(bool)
    else:
        y_pos = yt == anomaly_label
    flagged = s >= threshold
    tp = float(np.count_nonzero(flagged & y_pos))
    n_flagged, n_anomalies = int(np.count_nonzero(flagged)), int(np.count_nonzero(y_pos))
    counts = np.array([tp, n_flagged - tp, n_anomalies - tp])
    precision, recall, f1 = (float(v) for v in prf_from_counts(counts[0], counts[1], counts[2]))
    warnings: list[str] = []
    if n_flagged == 0:
        warnings.append(f"precision is undefined: no score is >= threshold {threshold:.6g}.")
    if n_anomalies == 0:
        warnings.append("recall and roc_auc are undefined: y_true has no anomaly.")
    elif n_anomalies == n:
        warnings.append("roc_auc is undefined: every row of y_true is an anomaly.")
    return {
        "task": "anomaly",
        "n_rows": n,
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_flagged": n_flagged,
        "n_anomalies": n_anomalies,
        "flag_rate": n_flagged / n,
        "roc_auc": binary_auc(y_pos, s),
        "warnings": warnings,
    }


# ------------------------------------------------------------------------------------------- dispatch
def infer_task(y_true: Any, y_score_or_pred: Any) -> Task:
    """Guess the task from the data; pass the task explicitly whenever you know it.

    Heuristics, in order: 2-D predictions (class probabilities) -> classification; non-numeric ``y_true`` ->
    classification; ``y_true`` with non-integer values -> regression; integer-valued ``y_true`` with more than
    50 distinct values -> regression; binary ``y_true`` with continuous predictions -> classification when they
    lie in [0, 1] (probabilities), anomaly otherwise (unbounded scores); integer-valued predictions ->
    classification; anything else (continuous predictions of a multi-valued target) -> regression.
    """
    yt, ys = as_array("y_true", y_true), np.asarray(y_score_or_pred)
    if ys.ndim == 2 and ys.shape[1] > 1:
        return "classification"
    if yt.dtype.kind not in "biuf":
        return "classification"
    if yt.dtype.kind == "f" and not np.all(np.mod(yt[np.isfinite(yt)], 1) == 0):
        return "regression"
    n_distinct = unique_labels("y_true", yt[np.isfinite(yt)] if yt.dtype.kind == "f" else yt).size
    if n_distinct > _MAX_CLASSES_FOR_INFERENCE:
        return "regression"
    pred_integral = ys.dtype.kind in "biuOUS" or (ys.dtype.kind == "f" and bool(np.all(np.mod(ys, 1) == 0)))
    if pred_integral:
        return "classification"
    if n_distinct <= 2:
        in_unit = ys.dtype.kind in "biuf" and ys.size > 0 and float(np.min(ys)) >= 0.0 and float(np.max(ys)) <= 1.0
        return "classification" if in_unit else "anomaly"
    return "regression"


def compute_metrics(task: str, y_true: Any, y_pred: Any, y_score: Any = None, **kw: Any) -> dict[str, Any]:
    """Dispatch on ``task`` ("classification", "regression", "anomaly" or "auto" for :func:`infer_task`).

    classification: ``y_pred`` labels, ``y_score`` probabilities (optional), ``kw`` as for
    :func:`classification_metrics`; regression: ``y_pred`` values; anomaly: ``y_score`` (or ``y_pred`` when
    ``y_score`` is None) are scores and ``threshold=`` is required.
    """
    if task == "auto":
        task = infer_task(y_true, y_pred)
    if task == "classification":
        return classification_metrics(y_true, y_pred, y_score, **kw)
    if task == "regression":
        if y_score is not None or kw:
            raise InvalidInput(f"regression metrics take only y_true and y_pred; got y_score and/or {sorted(kw)}.")
        return regression_metrics(y_true, y_pred)
    if task == "anomaly":
        if "threshold" not in kw:
            raise InvalidInput("anomaly metrics need threshold=...: rows with score >= threshold are flagged.")
        return anomaly_metrics(y_true, y_pred if y_score is None else y_score, **kw)
    raise InvalidInput(f"Unknown task {task!r}; use one of {', '.join(TASKS)} or 'auto'.")
