"""Estimated performance from sums that add up across parts (the incremental form of :mod:`.estimation`).

For ``k`` classes, rows with probabilities ``q_i`` and predicted class ``p_i``, a part keeps (all additive):

* ``count[p]``: rows predicted ``p``; ``colsum[p, c] = sum_{p_i = p} q_ic``;
* ``second[p, c, c'] = sum_{p_i = p} q_ic q_ic'``;
* for ROC AUC (binary only), per ``AUC_BINS`` equal-width bins of the positive class's probability ``w``: the
  sums of ``w``, ``1 - w`` and ``w (1 - w)``.

From them, **accuracy** and **F1** (binary and multiclass macro) and their standard deviations are *exactly*
:func:`~mloop.monitoring.estimation.estimate_performance`'s (same formulas, rearranged: the delta method's
variance ``sum_i (s2_i - s1_i^2)`` expands into the class moments above). **ROC AUC** counts the pairs of rows
in one bin as half ordered (as ties), so it differs from the row-based value by at most ``error_bound`` =
``sum_b (W1_b W0_b - V_b) / (2 E[N1 N0])`` (reported in the result's detail; about 1/(2 AUC_BINS) for scores
spread over [0, 1]); its band uses the bins' placements. Multiclass ROC AUC is not estimated from sums (the
monitor reads the rows for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mloop.monitoring.columns import class_inputs
from mloop.monitoring.performance import MetricValue, z_value

__all__ = ["AUC_BINS", "EstimationSums", "estimation_sums"]

AUC_BINS = 4096
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EstimationSums:
    """The sufficient statistics of one or more parts (see the module docstring); ``a + b`` adds them."""

    rows: int
    count: Floats  # (k,)
    colsum: Floats  # (k, k)
    second: Floats  # (k, k, k)
    scope: tuple[int, ...]
    auc: Floats | None = None  # (3, AUC_BINS): sums of w, 1 - w, w (1 - w) per bin (binary)

    @property
    def scored(self) -> int:
        return round(float(self.count.sum()))

    def __add__(self, other: EstimationSums) -> EstimationSums:
        auc = None if self.auc is None or other.auc is None else self.auc + other.auc
        return EstimationSums(self.rows + other.rows, self.count + other.count, self.colsum + other.colsum,
                              self.second + other.second, self.scope, auc)  # fmt: skip

    def metric(self, name: str, level: float = 0.95) -> tuple[MetricValue, float]:
        """The expected metric with its band, and the bound on its difference from the row-based value (0 for
        accuracy and F1)."""
        z = z_value(level)
        n = self.scored
        if n == 0:
            return MetricValue(math.nan), 0.0
        bound = 0.0
        if name == "accuracy":
            hits = float(np.trace(self.colsum))
            var = hits - float(sum(self.second[p, p, p] for p in range(len(self.count))))
            value, sd = hits / n, math.sqrt(max(var, 0.0)) / n
        elif name == "f1":
            value, sd = self._f1()
        elif name == "roc_auc" and self.auc is not None:
            value, sd, bound = _auc(self.auc)
        else:
            raise ValueError(f"{name!r} cannot be estimated from sums")
        if math.isnan(value) or math.isnan(sd):
            return MetricValue(value), bound
        return MetricValue(value, max(0.0, value - z * sd), min(1.0, value + z * sd), "cbpe", sd), bound

    def _f1(self) -> tuple[float, float]:
        k = len(self.count)
        colq = self.colsum.sum(axis=0)
        a, b = np.zeros(k), np.zeros(k)
        values = []
        for c in self.scope:
            tp, d = float(self.colsum[c, c]), float(self.count[c] + colq[c])
            if d > 0:
                a[c], b[c] = 2 / d, 2 * tp / (d * d)
                values.append(2 * tp / d)
        if not values:
            return math.nan, math.nan
        m = len(values)
        diag = np.diagonal(self.colsum)
        s2 = float(np.sum((a * a - 2 * a * b) * diag + b * b * colq))
        s1 = 0.0
        for p in range(k):
            sb = self.second[p] @ b
            s1 += a[p] * a[p] * self.second[p, p, p] - 2 * a[p] * sb[p] + float(b @ sb)
        return sum(values) / m, math.sqrt(max(s2 - s1, 0.0)) / m


def _auc(bins: Floats) -> tuple[float, float, float]:
    w1, w0, v = bins
    t1, t0 = float(w1.sum()), float(w0.sum())
    en = t1 * t0 - float(v.sum())
    if en <= 1e-12:
        return math.nan, math.nan, 0.0
    below0 = np.cumsum(w0) - w0 + 0.5 * w0  # negative weight below each bin, half of its own
    above1 = t1 - np.cumsum(w1) + 0.5 * w1
    within = w1 * w0 - v  # pairs inside one bin (a row never pairs with itself), counted half
    eu = float(w1 @ (np.cumsum(w0) - w0)) + 0.5 * float(within.sum())
    grad = (below0 - above1) / en - eu * (t0 - t1) / (en * en)
    return eu / en, math.sqrt(float(np.sum(grad * grad * v))), 0.5 * float(within.sum()) / en


def estimation_sums(probabilities: Any, prediction: Any, classes: Any, *, with_auc: bool) -> EstimationSums:
    """The sums of one part (rows without probabilities left out, as :func:`estimate_performance` does)."""
    proba, codes, ok, scope, _ = class_inputs(probabilities, prediction, classes, None, [])
    q, yhat = proba[ok], codes[ok]
    k = proba.shape[1]
    count = np.bincount(yhat, minlength=k).astype(np.float64)
    colsum = np.zeros((k, k))
    np.add.at(colsum, yhat, q)
    second = np.zeros((k, k, k))
    for p in np.unique(yhat):
        rows = q[yhat == p]
        second[p] = rows.T @ rows
    auc: Floats | None = None
    if with_auc and len(scope) == 1:
        w = np.ascontiguousarray(q[:, scope[0]])
        index = np.minimum((w * AUC_BINS).astype(np.intp), AUC_BINS - 1)
        auc = np.stack(  # float sums
            [np.bincount(index, weights=x, minlength=AUC_BINS) for x in (w, 1.0 - w, w * (1.0 - w))]
        )
    return EstimationSums(int(proba.shape[0]), count, colsum, second, tuple(scope), auc)
