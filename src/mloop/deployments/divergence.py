"""Did the canary's predictions drift away from the stable version's? (Pure: values in, a figure out.)

The rollout controller asks this before it moves a canary forward, when the policy sets
``max_prediction_psi``: the Population Stability Index of the canary's predictions against the stable
version's over the same window (the rows the collector recorded since the step started). Numeric predictions
are binned on the stable side's deciles; labels (text, booleans, or at most 20 distinct whole numbers) are
compared class by class. Empty bins get half a count on both sides (the usual smoothing), so one unseen class
raises the index without making it infinite. PSI under 0.1 is read as no shift, 0.1-0.25 a moderate one, over
0.25 a large one.

Opt-in, because a retrained model is *expected* to predict differently on drifted data: the bound guards
against a canary whose answers went wrong (a broken feature, a shifted threshold), not against a better model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["prediction_shift"]

_MAX_CLASSES = 20


def _is_labels(values: np.ndarray[Any, Any]) -> bool:
    if values.dtype.kind in "OUSb":
        return True
    if values.dtype.kind in "iu":
        return len(np.unique(values)) <= _MAX_CLASSES
    return False


def _psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    e_total, a_total = sum(expected), sum(actual)
    out = 0.0
    for e, a in zip(expected, actual, strict=True):
        p, q = (e + 0.5) / (e_total + 0.5 * len(expected)), (a + 0.5) / (a_total + 0.5 * len(actual))
        out += (q - p) * math.log(q / p)
    return out


def prediction_shift(stable: Sequence[Any], canary: Sequence[Any], *, bins: int = 10) -> dict[str, Any]:
    """``{"psi", "method", "stable_rows", "canary_rows"}`` for two windows of predictions (1-D)."""
    s, c = np.asarray(stable), np.asarray(canary)
    if s.ndim != 1 or c.ndim != 1 or not len(s) or not len(c):
        raise ValueError("prediction_shift needs two non-empty 1-D sequences of predictions")
    if _is_labels(s) or _is_labels(c):
        s_counts, c_counts = Counter(s.astype(str).tolist()), Counter(c.astype(str).tolist())
        classes = sorted(set(s_counts) | set(c_counts))
        psi = _psi([s_counts[k] for k in classes], [c_counts[k] for k in classes])
        method = f"psi over {len(classes)} classes"
    else:
        s_f, c_f = s.astype(float), c.astype(float)
        edges = np.unique(np.quantile(s_f[np.isfinite(s_f)], np.linspace(0, 1, bins + 1)[1:-1]))
        s_bins = np.bincount(np.searchsorted(edges, s_f, side="left"), minlength=len(edges) + 1)
        c_bins = np.bincount(np.searchsorted(edges, c_f, side="left"), minlength=len(edges) + 1)
        psi = _psi(s_bins.tolist(), c_bins.tolist())
        method = f"psi over {len(edges) + 1} bins (stable deciles)"
    return {"psi": round(float(psi), 6), "method": method, "stable_rows": len(s), "canary_rows": len(c)}
