"""The additive summary of collected rows: what a window's signals need, without the rows.

:func:`summarise_rows` turns some live rows (a part, or a part's rows inside one window) into a
:class:`RowSummary`; ``a + b`` is the summary of both, exactly, so a window is the sum of its parts' summaries
(:mod:`mloop.monitoring.incremental`). It holds, for the scored rows (status < 400): per feature and for the
predictions the :class:`~mloop.monitoring.binned.BinnedCounts` on the reference sketch's edges (numeric) or
:class:`~mloop.monitoring.binned.CategoryCounts` (categorical), which also carry missing values, the out-of-range
cells and unseen categories; the sums of :mod:`.estimation_sums`; and for every live row the row count, the
distinct request ids (counted per part: a request's rows are written in one part), 5xx and 4xx counts and a
:class:`~mloop.monitoring.latency.LatencyHistogram`. :func:`summary_signals` computes the signals from it with
the same code as the row-based :func:`~mloop.monitoring.signals.window_signals` (so drift, quality and counts
are equal; latency percentiles are within ``latency.RELATIVE_ERROR``).

Serialised as one ``.npz`` (:func:`dump_summary`, :func:`load_summary`): dense count arrays plus one JSON entry.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mloop.entities import MonitorResult
from mloop.errors import InvalidInput
from mloop.monitoring.binned import BinnedCounts, CategoryCounts, Summary, bin_categorical, bin_numeric
from mloop.monitoring.estimation_sums import EstimationSums, estimation_sums
from mloop.monitoring.latency import RELATIVE_ERROR, LatencyHistogram, latency_histogram
from mloop.monitoring.reference import CategoricalReference, ReferenceSketch
from mloop.monitoring.signals import (
    PREDICTION,
    Window,
    arr,
    estimated_result,
    feature_results,
    technical_results,
)

__all__ = ["RowSummary", "dump_summary", "load_summary", "summarise_rows", "summary_signals"]


@dataclass(frozen=True)
class RowSummary:
    rows: int = 0
    requests: int = 0
    errors: int = 0
    invalid: int = 0
    latency: LatencyHistogram | None = None
    columns: dict[str, Summary] = field(default_factory=dict)
    estimation: EstimationSums | None = None

    def __add__(self, other: RowSummary) -> RowSummary:
        cols = dict(self.columns)
        for name, s in other.columns.items():
            cols[name] = s if name not in cols else cols[name] + s  # type: ignore[operator]
        return RowSummary(
            self.rows + other.rows, self.requests + other.requests, self.errors + other.errors,
            self.invalid + other.invalid, _add(self.latency, other.latency), cols,
            _add(self.estimation, other.estimation),
        )  # fmt: skip


def _add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a + b


def summarise_rows(
    table: Any, sketch: ReferenceSketch, features: list[str], *, task: str | None, classes: Any,
    proba: Callable[[Any], Any] | None, auc: bool,
) -> RowSummary:  # fmt: skip
    """The summary of ``table``'s rows (live rows of one endpoint, as collected)."""
    n = table.num_rows
    if n == 0:
        return RowSummary()
    import pyarrow.compute as pc

    status = arr(table, "status").astype(np.int64)
    scored = status < 400
    names = set(table.column_names)
    columns: dict[str, Summary] = {}
    for feature in features:
        if f"input.{feature}" in names and feature in sketch.columns:
            columns[feature] = _bin(sketch[feature], arr(table, f"input.{feature}")[scored])
    if "prediction" in names and PREDICTION in sketch.columns:
        predictions = arr(table, "prediction")[scored]
        if isinstance(sketch[PREDICTION], CategoricalReference) and predictions.dtype == object:
            predictions = predictions.astype(str)
        columns[PREDICTION] = _bin(sketch[PREDICTION], predictions)
    estimation = None
    if task == "classification" and classes is not None and int(scored.sum()):
        probabilities = table.column("probabilities").filter(scored) if "probabilities" in names else None
        prediction = arr(table, "prediction")[scored] if "prediction" in names else None
        if probabilities is None and proba is not None:
            from mloop.monitoring.signals import model_inputs

            probabilities = np.asarray(proba(model_inputs(table, scored)))
        if probabilities is not None:
            try:
                estimation = estimation_sums(probabilities, prediction, classes, with_auc=auc)
            except InvalidInput:  # probabilities the estimator cannot use (as the row-based path, no estimate)
                estimation = None
    return RowSummary(
        rows=n, requests=int(pc.count_distinct(table.column("request_id")).as_py()),
        errors=int(np.count_nonzero(status >= 500)), invalid=int(np.count_nonzero((status >= 400) & (status < 500))),
        latency=latency_histogram(arr(table, "latency_ms").astype(np.float64)), columns=columns,
        estimation=estimation,
    )  # fmt: skip


def _bin(ref: Any, values: Any) -> Summary:
    return bin_categorical(ref, values) if isinstance(ref, CategoricalReference) else bin_numeric(ref, values)


def summary_signals(
    summary: RowSummary, start: int, end: int, sketch: ReferenceSketch, spec: Mapping[str, Any],
    features: list[str], *, live: Callable[[Window], None] | None = None,
) -> list[MonitorResult]:  # fmt: skip
    """Every signal of the window ``[start, end)`` from its summary; ``live`` adds the live performance (it
    needs the labelled rows, which a summary does not hold)."""
    w = Window(start, end)
    cols = {f: summary.columns[f] for f in features if f in summary.columns}
    feature_results(w, sketch, spec, cols, summary.rows,
                    summary.columns.get(PREDICTION) if PREDICTION in sketch.columns else None)  # fmt: skip
    if live is not None:
        live(w)
    est = spec["estimated"]
    if summary.estimation is not None:
        m, bound = summary.estimation.metric(est["metric"])
        extra = {"error_bound": bound} if est["metric"] == "roc_auc" else {}
        estimated_result(w, est, m, summary.estimation.scored, **extra)
    hist = summary.latency or latency_histogram([])
    p50, p99 = hist.percentiles([50, 99])
    technical_results(w, spec, summary.rows, summary.requests, summary.errors, summary.invalid, p50, p99,
                      relative_error_bound=RELATIVE_ERROR)  # fmt: skip
    return w.results


# ----------------------------------------------------------------------------------------------- storage
def dump_summary(summary: RowSummary) -> bytes:
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"rows": summary.rows, "requests": summary.requests, "errors": summary.errors,
                            "invalid": summary.invalid, "columns": {}, "latency": None, "estimation": None}  # fmt: skip
    if summary.latency is not None:
        arrays["latency"] = summary.latency.counts
        meta["latency"] = [summary.latency.low, summary.latency.high]
    for i, (name, s) in enumerate(summary.columns.items()):
        if isinstance(s, BinnedCounts):
            arrays[f"c{i}"], arrays[f"s{i}"] = s.counts, s.sums
            meta["columns"][name] = {"i": i, "kind": "numeric", "below": s.below, "above": s.above,
                                     "missing": s.missing}  # fmt: skip
        else:
            meta["columns"][name] = {"i": i, **s.to_dict()}
    e = summary.estimation
    if e is not None:
        arrays.update(e_count=e.count, e_colsum=e.colsum, e_second=e.second)
        if e.auc is not None:
            arrays["e_auc"] = e.auc
        meta["estimation"] = {"rows": e.rows, "scope": list(e.scope)}
    sink = io.BytesIO()
    np.savez(sink, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return sink.getvalue()


def load_summary(data: bytes) -> RowSummary:
    with np.load(io.BytesIO(data)) as z:
        meta = json.loads(z["meta"].tobytes())
        latency = None if meta["latency"] is None else LatencyHistogram(z["latency"], *meta["latency"])
        columns: dict[str, Summary] = {}
        for name, c in meta["columns"].items():
            if c["kind"] == "numeric":
                columns[name] = BinnedCounts(z[f"c{c['i']}"], z[f"s{c['i']}"], c["below"], c["above"], c["missing"])
            else:
                columns[name] = CategoryCounts({str(k): int(v) for k, v in c["counts"].items()}, int(c["missing"]))
        e = meta["estimation"]
        estimation = None
        if e is not None:
            estimation = EstimationSums(int(e["rows"]), z["e_count"], z["e_colsum"], z["e_second"], tuple(e["scope"]),
                                        z.get("e_auc"))  # fmt: skip
    return replace(RowSummary(), rows=meta["rows"], requests=meta["requests"], errors=meta["errors"],
                   invalid=meta["invalid"], latency=latency, columns=columns, estimation=estimation)  # fmt: skip
