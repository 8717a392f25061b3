"""The signals of one window (pure: a table in, :class:`~mloop.entities.MonitorResult` values out).

The window is the collected rows (``input.<column>``, ``prediction``, ``probabilities``, ``status``,
``latency_ms``, ``request_id``, ``ground_truth``) of one endpoint's live traffic. Signals, each a result per
window (and per feature where it says so):

- ``data_drift`` per feature and ``dataset_drift`` (share of drifted features), against the reference sketch
  (:mod:`mloop.monitoring.drift`; ``unknown`` below ``drift.min_rows`` values);
- ``prediction_drift`` (feature ``prediction``) against the reference's predictions;
- data quality per feature: ``missing_rate``, ``out_of_range`` (numeric values outside the reference's
  [min, max]), ``unseen_categories`` (categorical values the reference never had); and ``invalid_requests``
  (share of requests refused with 4xx: wrong types, missing fields);
- live performance (``accuracy``, ``f1``, ``roc_auc`` or ``mae``, ``rmse``) on the rows with ground truth, with
  ``rows`` = labelled rows and the confidence interval in the detail; ``estimated_<metric>`` from the predicted
  probabilities when the window has them (confidence-based estimation, :mod:`mloop.monitoring.estimation`);
- technical: ``request_rate`` (requests/s), ``error_rate`` (5xx share), ``latency_p50_ms``, ``latency_p99_ms``.

A result's status is ``breach`` when its value is past its threshold (higher is worse, except performance
metrics where lower is worse unless it is an error like ``mae``), ``ok`` otherwise, ``unknown`` when there is not
enough data to say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mloop.entities import MonitorResult
from mloop.monitoring.binned import BinnedCounts, CategoryCounts, bin_categorical, bin_numeric
from mloop.monitoring.drift import dataset_drift, feature_drift
from mloop.monitoring.reference import CategoricalReference, NumericReference, ReferenceSketch

__all__ = [
    "PREDICTION",
    "Window",
    "arr",
    "display_bins",
    "estimated_result",
    "feature_results",
    "live_result",
    "model_inputs",
    "status_of",
    "technical_results",
    "window_signals",
]

PREDICTION = "__prediction__"  # the reference sketch's column of the model's predictions
_DISPLAY_BINS = 20


def arr(table: Any, name: str) -> Any:
    """A column as numpy (plain Python objects for nested or mixed values)."""
    column = table.column(name)
    try:
        return column.to_numpy(zero_copy_only=False)
    except Exception:  # nested or mixed values: plain Python objects
        return np.asarray(column.to_pylist(), dtype=object)


def display_bins(ref: NumericReference, counts: Any, groups: int = _DISPLAY_BINS) -> dict[str, Any]:
    """Coarse counts for a chart: the reference's cells summed into ``groups`` bins of equal reference mass."""
    cells = np.asarray(counts, dtype=np.int64)
    last = len(ref.edges) - 1
    bounds = sorted({round(last * g / groups) for g in range(groups + 1)})
    starts = [0] + [2 * b + 1 for b in bounds[1:-1]]
    sums = np.add.reduceat(cells, starts) if len(cells) else cells
    return {"edges": [float(ref.edges[b]) for b in bounds], "counts": [int(c) for c in sums]}


def status_of(value: float | None, threshold: float | None, *, lower_is_worse: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if threshold is None:
        return "ok"
    return "breach" if (value < threshold if lower_is_worse else value > threshold) else "ok"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


class Window:
    """The results of one window as they are added."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.results: list[MonitorResult] = []

    def add(self, signal: str, feature: str, value: Any, threshold: float | None, status: str, rows: int,
            **detail: Any) -> None:  # fmt: skip
        self.results.append(MonitorResult(self.start, self.end, signal, feature, _num(value), _num(threshold),
                                          status, int(rows), detail))  # fmt: skip


def _drift(w: Window, signal: str, feature: str, ref: Any, summary: BinnedCounts | CategoryCounts,
           spec: Mapping[str, Any], method: str, threshold: float | None) -> tuple[Any, str]:  # fmt: skip
    """The drift result of a binned window; the chart's shapes come from the same counts."""
    shapes: dict[str, Any]
    if isinstance(ref, NumericReference) and isinstance(summary, BinnedCounts):
        shapes = {"kind": "numeric", "reference": display_bins(ref, ref.counts),
                  "current": display_bins(ref, summary.counts)}  # fmt: skip
    else:
        assert isinstance(summary, CategoryCounts)
        top = sorted(ref.counts, key=lambda k: -ref.counts[k])[:_DISPLAY_BINS]
        shapes = {"kind": "categorical", "reference": {"categories": top, "counts": [ref.counts[k] for k in top]},
                  "current": {"categories": top, "counts": [int(summary.counts.get(k, 0)) for k in top]}}  # fmt: skip
    result = feature_drift(feature, ref, summary, method=method, threshold=threshold)
    enough = result.n_current >= int(spec["drift"]["min_rows"])
    status = ("breach" if result.drifted else "ok") if enough and result.statistic is not None else "unknown"
    w.add(signal, feature, result.statistic, result.threshold, status, result.n_current, method=result.method,
          p_value=result.p_value, mode=result.mode, error_bound=result.error_bound, **shapes)  # fmt: skip
    return result, status


def _bin(ref: Any, values: Any) -> BinnedCounts | CategoryCounts:
    return bin_numeric(ref, values) if isinstance(ref, NumericReference) else bin_categorical(ref, values)


def feature_results(
    w: Window, sketch: ReferenceSketch, spec: Mapping[str, Any], columns: Mapping[str, BinnedCounts | CategoryCounts],
    n: int, prediction: BinnedCounts | CategoryCounts | None,
) -> None:  # fmt: skip
    """Drift and quality per feature, dataset drift and prediction drift from the window's binned columns."""
    drift_spec, quality = spec["drift"], spec["quality"]
    drift_results = []
    for feature, summary in columns.items():
        ref = sketch[feature]
        method = drift_spec["methods"].get(feature, "auto")
        result, st = _drift(w, "data_drift", feature, ref, summary, spec, method,
                            drift_spec["thresholds"].get(feature))  # fmt: skip
        if st != "unknown":
            drift_results.append(result)
        total = max(summary.n + summary.missing, 1)
        w.add("missing_rate", feature, summary.missing / total, quality["missing_rate"],
              status_of(summary.missing / total, quality["missing_rate"]), total)  # fmt: skip
        if isinstance(ref, NumericReference) and isinstance(summary, BinnedCounts) and summary.n:
            outside = int(summary.counts[0] + summary.counts[-1]) / summary.n
            w.add("out_of_range", feature, outside, quality["out_of_range"],
                  status_of(outside, quality["out_of_range"]), summary.n)  # fmt: skip
        elif isinstance(ref, CategoricalReference) and isinstance(summary, CategoryCounts) and summary.n:
            unseen = sum(c for k, c in summary.counts.items() if k not in ref.counts) / summary.n
            w.add("unseen_categories", feature, unseen, quality["unseen_categories"],
                  status_of(unseen, quality["unseen_categories"]), summary.n)  # fmt: skip
    if drift_results:
        dd = dataset_drift(drift_results, float(drift_spec["share"]))
        w.add("dataset_drift", "", dd.share_drifted, dd.share, "breach" if dd.drifted else "ok", n,
              n_features=dd.n_features, n_drifted=dd.n_drifted)  # fmt: skip
    if prediction is not None:
        pd_spec = spec["prediction_drift"]
        _drift(w, "prediction_drift", "prediction", sketch[PREDICTION], prediction, spec, pd_spec["method"],
               pd_spec["threshold"])  # fmt: skip


def window_signals(
    table: Any, start: int, end: int, sketch: ReferenceSketch, spec: Mapping[str, Any], features: list[str],
    *, task: str | None = None, classes: Any = None, proba: Callable[[Any], Any] | None = None,
) -> list[MonitorResult]:  # fmt: skip
    """Every signal of the window ``[start, end)`` (UTC ms) over ``table`` (the window's collected rows)."""
    w = Window(start, end)
    live = table
    n = live.num_rows
    status = arr(live, "status").astype(np.int64) if n else np.zeros(0, np.int64)
    scored = status < 400
    names = set(live.column_names)
    columns = {f: _bin(sketch[f], arr(live, f"input.{f}")[scored])
               for f in features if f"input.{f}" in names and f in sketch.columns}  # fmt: skip
    prediction = None
    if "prediction" in names and PREDICTION in sketch.columns:
        predictions = arr(live, "prediction")[scored]
        if isinstance(sketch[PREDICTION], CategoricalReference) and predictions.dtype == object:
            predictions = predictions.astype(str)  # labels as text; numbers are counted by value, keyed as text
        prediction = _bin(sketch[PREDICTION], predictions)
    feature_results(w, sketch, spec, columns, n, prediction)
    _performance(w, live, scored, spec, task, classes, proba)
    _technical(w, live, status, spec)
    return w.results


def model_inputs(live: Any, scored: Any) -> Any:
    """The window's scored inputs as the DataFrame the model was fitted on (``input.`` prefix dropped)."""
    columns = [c for c in live.column_names if c.startswith("input.")]
    frame = live.select(columns).filter(scored).to_pandas()
    frame.columns = [c.removeprefix("input.") for c in columns]
    return frame


def live_result(w: Window, spec: Mapping[str, Any], task: str, classes: Any, prediction: Any, truth: Any,
                probabilities: Any, rows_in_window: int | None = None) -> None:  # fmt: skip
    """The realised performance on the rows with ground truth (others are ignored)."""
    from mloop.monitoring.performance import live_performance

    perf = spec["performance"]
    metric = perf["metric"] or ("accuracy" if task == "classification" else "rmse")
    lower_is_worse = metric in ("accuracy", "f1", "roc_auc")
    threshold = perf["min"] if lower_is_worse else perf["max"]
    got = live_performance(task, prediction, truth, probabilities, classes=classes)
    m = got.metrics.get(metric)
    enough = got.labelled >= int(perf["min_labelled"])
    value = None if m is None else m.value
    status = status_of(value, threshold, lower_is_worse=lower_is_worse) if enough else "unknown"
    w.add(metric, "", value, threshold, status, got.labelled, ci_low=None if m is None else _num(m.low),
          ci_high=None if m is None else _num(m.high),
          rows_in_window=got.rows if rows_in_window is None else rows_in_window)  # fmt: skip


def estimated_result(w: Window, est: Mapping[str, Any], m: Any, scored: int, **detail: Any) -> None:
    """The estimated metric ``m`` (a MetricValue or None) of the window."""
    value = None if m is None else m.value
    w.add(f"estimated_{est['metric']}", "", value, est["min"], status_of(value, est["min"], lower_is_worse=True),
          scored, ci_low=None if m is None else _num(m.low), ci_high=None if m is None else _num(m.high),
          **detail)  # fmt: skip


def _performance(
    w: Window, live: Any, scored: Any, spec: Mapping[str, Any], task: str | None, classes: Any,
    proba: Callable[[Any], Any] | None,
) -> None:  # fmt: skip
    names = set(live.column_names)
    if task is None or ("prediction" not in names and "probabilities" not in names):
        return
    collected = live.column("probabilities").filter(scored) if "probabilities" in names else None
    prediction = arr(live, "prediction")[scored] if "prediction" in names else None  # None: argmax of proba
    if "ground_truth" in names:
        live_result(w, spec, task, classes, prediction, arr(live, "ground_truth")[scored], collected)
    probabilities = collected
    if probabilities is None and proba is not None and task == "classification" and int(scored.sum()):
        # callers did not ask for probabilities: score again, on a uniform sample (the estimate's standard error
        # at 100,000 rows is about 0.0015; re-scoring every row of a busy hour would cost seconds)
        limit = int(spec["estimated"].get("sample", 100_000))
        rows = np.flatnonzero(scored)
        if rows.size > limit:
            rows = np.sort(np.random.default_rng(0).choice(rows, limit, replace=False))
        pick = np.zeros(len(scored), dtype=bool)
        pick[rows] = True
        probabilities = np.asarray(proba(model_inputs(live, pick)))
        prediction = None if "prediction" not in names else arr(live, "prediction")[pick]
    est = spec["estimated"]
    if task == "classification" and probabilities is not None and len(probabilities):
        from mloop.monitoring.estimation import estimate_performance

        try:
            guess = estimate_performance(probabilities, prediction, classes=classes)
        except Exception as exc:  # probabilities the estimator cannot use: say so in the detail
            w.add(f"estimated_{est['metric']}", "", None, est["min"], "unknown", 0, error=str(exc)[:200])
            return
        estimated_result(w, est, guess.metrics.get(est["metric"]), guess.scored)


def _technical(w: Window, live: Any, status: Any, spec: Mapping[str, Any]) -> None:
    n = live.num_rows
    if not n:
        technical_results(w, spec, 0, 0, 0, 0, None, None)
        return
    import pyarrow.compute as pc

    requests = int(pc.count_distinct(live.column("request_id")).as_py())
    p50, p99 = (float(v) for v in np.percentile(arr(live, "latency_ms").astype(np.float64), [50, 99]))
    technical_results(w, spec, n, requests, int(np.count_nonzero(status >= 500)),
                      int(np.count_nonzero((status >= 400) & (status < 500))), p50, p99)  # fmt: skip


def technical_results(
    w: Window, spec: Mapping[str, Any], n: int, requests: int, errors: int, invalid: int, p50: float | None,
    p99: float | None, **latency_detail: Any,
) -> None:  # fmt: skip
    """Request rate, error rate, invalid requests and latency percentiles of ``n`` live rows."""
    tech = spec["technical"]
    w.add("request_rate", "", requests / max((w.end - w.start) / 1000.0, 1e-9), None, "ok", requests)
    if not n:
        return
    w.add("error_rate", "", errors / n, tech["error_rate"], status_of(errors / n, tech["error_rate"]), n)
    w.add("invalid_requests", "", invalid / n, spec["quality"].get("invalid_requests"), "ok", n)
    w.add("latency_p50_ms", "", p50, None, "ok", n, **latency_detail)
    w.add("latency_p99_ms", "", p99, tech["latency_p99_ms"], status_of(p99, tech["latency_p99_ms"]), n,
          **latency_detail)  # fmt: skip
