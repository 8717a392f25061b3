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
from mloop.monitoring.binned import BinnedCounts, CategoryCounts
from mloop.monitoring.drift import dataset_drift, feature_drift
from mloop.monitoring.reference import CategoricalReference, NumericReference, ReferenceSketch

__all__ = ["PREDICTION", "display_bins", "window_signals"]

PREDICTION = "__prediction__"  # the reference sketch's column of the model's predictions
_DISPLAY_BINS = 20


def _arr(table: Any, name: str) -> Any:
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


def _status(value: float | None, threshold: float | None, *, lower_is_worse: bool = False) -> str:
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


class _Window:
    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.results: list[MonitorResult] = []

    def add(self, signal: str, feature: str, value: Any, threshold: float | None, status: str, rows: int,
            **detail: Any) -> None:  # fmt: skip
        self.results.append(MonitorResult(self.start, self.end, signal, feature, _num(value), _num(threshold),
                                          status, int(rows), detail))  # fmt: skip


def _drift(w: _Window, signal: str, feature: str, ref: Any, values: Any, spec: Mapping[str, Any], method: str,
           threshold: float | None) -> tuple[Any, BinnedCounts | CategoryCounts, str]:  # fmt: skip
    """Bin the window against the reference once; the drift statistic and the chart's shapes both come from it."""
    from mloop.monitoring.binned import bin_categorical, bin_numeric

    shapes: dict[str, Any]
    summary: BinnedCounts | CategoryCounts
    if isinstance(ref, NumericReference):
        summary = bin_numeric(ref, values)
        shapes = {"kind": "numeric", "reference": display_bins(ref, ref.counts),
                  "current": display_bins(ref, summary.counts)}  # fmt: skip
    else:
        summary = bin_categorical(ref, values)
        top = sorted(ref.counts, key=lambda k: -ref.counts[k])[:_DISPLAY_BINS]
        shapes = {"kind": "categorical", "reference": {"categories": top, "counts": [ref.counts[k] for k in top]},
                  "current": {"categories": top, "counts": [int(summary.counts.get(k, 0)) for k in top]}}  # fmt: skip
    result = feature_drift(feature, ref, summary, method=method, threshold=threshold)
    enough = result.n_current >= int(spec["drift"]["min_rows"])
    status = ("breach" if result.drifted else "ok") if enough and result.statistic is not None else "unknown"
    w.add(
        signal,
        feature,
        result.statistic,
        result.threshold,
        status,
        result.n_current,
        method=result.method,
        p_value=result.p_value,
        mode=result.mode,
        error_bound=result.error_bound,
        **shapes,
    )
    return result, summary, status


def window_signals(
    table: Any, start: int, end: int, sketch: ReferenceSketch, spec: Mapping[str, Any], features: list[str],
    *, task: str | None = None, classes: Any = None, proba: Callable[[Any], Any] | None = None,
) -> list[MonitorResult]:  # fmt: skip
    """Every signal of the window ``[start, end)`` (UTC ms) over ``table`` (the window's collected rows)."""
    w = _Window(start, end)
    live = table
    n = live.num_rows
    status = _arr(live, "status").astype(np.int64) if n else np.zeros(0, np.int64)
    scored = status < 400
    names = set(live.column_names)
    drift_spec, quality = spec["drift"], spec["quality"]
    drift_results = []
    for feature in features:
        column = f"input.{feature}"
        if column not in names or feature not in sketch.columns:
            continue
        values = _arr(live, column)[scored]
        ref = sketch[feature]
        method = drift_spec["methods"].get(feature, "auto")
        result, summary, st = _drift(w, "data_drift", feature, ref, values, spec, method,
                                     drift_spec["thresholds"].get(feature))  # fmt: skip
        if st != "unknown":
            drift_results.append(result)
        total = max(summary.n + summary.missing, 1)
        w.add("missing_rate", feature, summary.missing / total, quality["missing_rate"],
              _status(summary.missing / total, quality["missing_rate"]), total)  # fmt: skip
        if isinstance(ref, NumericReference) and isinstance(summary, BinnedCounts) and summary.n:
            outside = int(summary.counts[0] + summary.counts[-1]) / summary.n
            w.add("out_of_range", feature, outside, quality["out_of_range"],
                  _status(outside, quality["out_of_range"]), summary.n)  # fmt: skip
        elif isinstance(ref, CategoricalReference) and isinstance(summary, CategoryCounts) and summary.n:
            unseen = sum(c for k, c in summary.counts.items() if k not in ref.counts) / summary.n
            w.add("unseen_categories", feature, unseen, quality["unseen_categories"],
                  _status(unseen, quality["unseen_categories"]), summary.n)  # fmt: skip
    if drift_results:
        dd = dataset_drift(drift_results, float(drift_spec["share"]))
        w.add("dataset_drift", "", dd.share_drifted, dd.share, "breach" if dd.drifted else "ok", n,
              n_features=dd.n_features, n_drifted=dd.n_drifted)  # fmt: skip
    if "prediction" in names and PREDICTION in sketch.columns:
        pd_spec = spec["prediction_drift"]
        predictions = _arr(live, "prediction")[scored]
        if isinstance(sketch[PREDICTION], CategoricalReference) and predictions.dtype == object:
            predictions = predictions.astype(str)  # labels as text; numbers are counted by value, keyed as text
        _drift(w, "prediction_drift", "prediction", sketch[PREDICTION], predictions, spec, pd_spec["method"],
               pd_spec["threshold"])  # fmt: skip
    _performance(w, live, scored, spec, task, classes, proba)
    _technical(w, live, status, spec, start, end)
    return w.results


def _inputs(live: Any, scored: Any) -> Any:
    """The window's scored inputs as the DataFrame the model was fitted on (``input.`` prefix dropped)."""
    columns = [c for c in live.column_names if c.startswith("input.")]
    frame = live.select(columns).filter(scored).to_pandas()
    frame.columns = [c.removeprefix("input.") for c in columns]
    return frame


def _performance(
    w: _Window, live: Any, scored: Any, spec: Mapping[str, Any], task: str | None, classes: Any,
    proba: Callable[[Any], Any] | None,
) -> None:  # fmt: skip
    names = set(live.column_names)
    if task is None or ("prediction" not in names and "probabilities" not in names):
        return
    perf = spec["performance"]
    metric = perf["metric"] or ("accuracy" if task == "classification" else "rmse")
    lower_is_worse = metric in ("accuracy", "f1", "roc_auc")
    threshold = perf["min"] if lower_is_worse else perf["max"]
    collected = live.column("probabilities").filter(scored) if "probabilities" in names else None
    prediction = _arr(live, "prediction")[scored] if "prediction" in names else None  # None: argmax of proba
    if "ground_truth" in names:
        from mloop.monitoring.performance import live_performance

        truth = _arr(live, "ground_truth")[scored]
        got = live_performance(task, prediction, truth, collected, classes=classes)
        m = got.metrics.get(metric)
        enough = got.labelled >= int(perf["min_labelled"])
        value = None if m is None else m.value
        status = _status(value, threshold, lower_is_worse=lower_is_worse) if enough else "unknown"
        w.add(metric, "", value, threshold, status, got.labelled, ci_low=None if m is None else _num(m.low),
              ci_high=None if m is None else _num(m.high), rows_in_window=got.rows)  # fmt: skip
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
        probabilities = np.asarray(proba(_inputs(live, pick)))
        prediction = None if "prediction" not in names else _arr(live, "prediction")[pick]
    est = spec["estimated"]
    if task == "classification" and probabilities is not None and len(probabilities):
        from mloop.monitoring.estimation import estimate_performance

        try:
            guess = estimate_performance(probabilities, prediction, classes=classes)
        except Exception as exc:  # probabilities the estimator cannot use: say so in the detail
            w.add(f"estimated_{est['metric']}", "", None, est["min"], "unknown", 0, error=str(exc)[:200])
            return
        m = guess.metrics.get(est["metric"])
        value = None if m is None else m.value
        w.add(f"estimated_{est['metric']}", "", value, est["min"], _status(value, est["min"], lower_is_worse=True),
              guess.scored, ci_low=None if m is None else _num(m.low),
              ci_high=None if m is None else _num(m.high))  # fmt: skip


def _technical(w: _Window, live: Any, status: Any, spec: Mapping[str, Any], start: int, end: int) -> None:
    n = live.num_rows
    tech = spec["technical"]
    if n:
        import pyarrow.compute as pc

        requests = int(pc.count_distinct(live.column("request_id")).as_py())
    else:
        requests = 0
    w.add("request_rate", "", requests / max((end - start) / 1000.0, 1e-9), None, "ok", requests)
    if not n:
        return
    errors = float(np.mean(status >= 500))
    w.add("error_rate", "", errors, tech["error_rate"], _status(errors, tech["error_rate"]), n)
    invalid = float(np.mean((status >= 400) & (status < 500)))
    w.add("invalid_requests", "", invalid, spec["quality"].get("invalid_requests"), "ok", n)
    latency = _arr(live, "latency_ms").astype(np.float64)
    p50, p99 = (float(v) for v in np.percentile(latency, [50, 99]))
    w.add("latency_p50_ms", "", p50, None, "ok", n)
    w.add("latency_p99_ms", "", p99, tech["latency_p99_ms"], _status(p99, tech["latency_p99_ms"]), n)
