"""Data drift per feature and for a whole table: the method chosen, the statistic, the decision. Pure, no I/O.

Methods (``method=``), what is compared, and the default threshold (``threshold=`` overrides it):

================= =========== ================================================== ====================
method            kind        statistic                                          drifted when
================= =========== ================================================== ====================
``ks``            numeric     two-sample Kolmogorov-Smirnov D, with its p-value  p < 0.05
``wasserstein``   numeric     Wasserstein-1 / reference std (ddof=0; 1 if 0)     statistic >= 0.1
``psi``           both        PSI on the 10 reference deciles, or on categories  statistic >= 0.1
``chisquare``     categorical Pearson chi-square of current counts against       p < 0.05
                              reference proportions (k - 1 degrees of freedom)
``jensenshannon`` categorical Jensen-Shannon distance (natural log, as scipy)    statistic >= 0.1
================= =========== ================================================== ====================

PSI is ``sum (q - p) ln(q / p)`` over the bins, an empty bin's proportion taken as 1e-4 (Evidently's value).

Automatic choice (``method="auto"``), on ``n = min(n_reference, n_current)`` (finite/non-missing values):

=========== ======================== =============================
kind        n <= 1000                n > 1000
=========== ======================== =============================
numeric     ``ks`` (p < 0.05)        ``wasserstein`` (>= 0.1 std)
categorical ``chisquare`` (p < 0.05) ``jensenshannon`` (>= 0.1)
=========== ======================== =============================

This is Evidently's default rule with three differences. (1) Evidently decides on the reference's size; a
monitor's reference is usually a large training set while its windows vary, and what makes a p-value test
over-sensitive is the effective sample size ``n m / (n + m)`` ~ ``min(n, m)``, so we decide on the smaller
sample. (2) Evidently treats numeric columns with at most 5 distinct values as categorical and uses a z-test
for binary ones; we go by the column's type (override ``kind`` by passing categories as strings) and use
chi-square for every categorical column (for two categories it is the square of that z-test against fixed
reference proportions). (3) A category absent from the reference would make chi-square infinite; it gets a
reference pseudo-count of 0.5 (so the statistic stays finite and very large).

Known limit: Jensen-Shannon and PSI on categories are biased upward when the window is small for the number of
categories (sparse counts): with 1,000 categories, a 5,000-row window drawn from the reference itself scores
~0.16. Use ``chisquare`` (it accounts for the sample size) or a larger threshold for such features.

Modes: ``"fast"`` (default) compares a window with a :class:`~mloop.monitoring.reference.ReferenceSketch`
(built once, stored as JSON) through counts per reference bin (:mod:`mloop.monitoring.binned`), which also
merge across windows; ``"exact"`` needs both samples and computes what scipy computes. Each result carries its
``error_bound``: 0 for exact statistics; for fast KS the true D lies in ``[statistic, statistic +
error_bound]``, for fast Wasserstein within ``+-error_bound``; fast PSI and every categorical statistic are
exact. Decisions use the reported statistic. Missing values (null, NaN, +-inf) are left out of drift (they are a
data-quality signal); a window with no values for a feature gives ``statistic=None, drifted=False``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInput
from mloop.monitoring import drift_stats as st
from mloop.monitoring.binned import BinnedCounts, CategoryCounts, Summary, bin_categorical, bin_numeric
from mloop.monitoring.reference import (
    CategoricalReference,
    ColumnReference,
    NumericReference,
    ReferenceSketch,
    categorical_values,
    finite_values,
    is_numeric,
    numeric_reference,
)

__all__ = [
    "AUTO_SAMPLE_SIZE",
    "DEFAULT_THRESHOLDS",
    "DatasetDrift",
    "DriftResult",
    "choose_method",
    "data_drift",
    "dataset_drift",
    "feature_drift",
    "summarise",
]

Mode = Literal["exact", "fast"]
AUTO_SAMPLE_SIZE = 1000
DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
P_VALUE_METHODS = frozenset({"ks", "chisquare"})
METHODS_BY_KIND = {"numeric": ("ks", "wasserstein", "psi"), "categorical": ("chisquare", "jensenshannon", "psi")}
UNSEEN_PSEUDO_COUNT = 0.5


@dataclass(frozen=True)
class DriftResult:
    """One feature's drift: the statistic, its p-value (p-value methods only), the decision and its precision."""

    feature: str
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    mode: str
    error_bound: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "mode": self.mode,
            "error_bound": self.error_bound,
        }


@dataclass(frozen=True)
class DatasetDrift:
    """Dataset drift: drifted when at least ``share`` of the features drifted."""

    drifted: bool
    share_drifted: float
    share: float
    n_features: int
    n_drifted: int
    features: tuple[DriftResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "share": self.share,
            "n_features": self.n_features,
            "n_drifted": self.n_drifted,
            "features": [r.to_dict() for r in self.features],
        }


def choose_method(kind: str, n_reference: int, n_current: int) -> str:
    """The automatic method for a column kind and sample sizes (the table in the module docstring)."""
    small = min(n_reference, n_current) <= AUTO_SAMPLE_SIZE
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"


def _check(feature: str, kind: str, method: str, threshold: float | None, mode: str) -> tuple[str, float | None]:
    if mode not in ("exact", "fast"):
        raise InvalidInput(f"Drift mode {mode!r} is not known; use 'fast' (the default) or 'exact'.")
    if method != "auto" and method not in METHODS_BY_KIND[kind]:
        raise InvalidInput(
            f"Method {method!r} does not apply to {kind} feature {feature!r}; use one of "
            f"{', '.join(METHODS_BY_KIND[kind])} or 'auto'."
        )
    if threshold is not None and not (isinstance(threshold, int | float) and math.isfinite(threshold)):
        raise InvalidInput(f"Threshold {threshold!r} for feature {feature!r} is not a finite number.")
    return method, threshold


def feature_drift(
    feature: str,
    reference: Any,
    current: Any,
    *,
    method: str = "auto",
    threshold: float | None = None,
    mode: Mode = "fast",
) -> DriftResult:
    """Drift of one feature.

    ``reference``: the raw values (array-like) or, in fast mode, a column of a
    :class:`~mloop.monitoring.reference.ReferenceSketch`. ``current``: the raw values or, in fast mode, a
    :class:`~mloop.monitoring.binned.BinnedCounts` / :class:`~mloop.monitoring.binned.CategoryCounts` (e.g.
    several windows added up). Exact mode needs raw values on both sides.
    """
    kind = _kind(reference, current)
    method, threshold = _check(feature, kind, method, threshold, mode)
    if mode == "exact":
        if isinstance(reference, NumericReference | CategoricalReference) or isinstance(
            current, BinnedCounts | CategoryCounts
        ):
            raise InvalidInput(
                f"Exact drift of {feature!r} needs the raw reference and current values, not sketches or counts; "
                "pass the arrays, or use mode='fast'."
            )
        if kind == "numeric":
            return _numeric_exact(feature, reference, current, method, threshold)
        return _categorical(feature, _raw_counts(reference), _raw_counts(current), method, threshold, "exact")
    ref = reference if isinstance(reference, NumericReference | CategoricalReference) else _sketch(kind, reference)
    if isinstance(ref, NumericReference):
        cur = current if isinstance(current, BinnedCounts) else bin_numeric(ref, current)
        return _numeric_fast(feature, ref, cur, method, threshold)
    cur_c = current if isinstance(current, CategoryCounts) else bin_categorical(ref, current)
    return _categorical(feature, (dict(ref.counts), ref.n), (dict(cur_c.counts), cur_c.n), method, threshold, "fast")


def _kind(reference: Any, current: Any) -> str:
    if isinstance(reference, NumericReference) or isinstance(current, BinnedCounts):
        return "numeric"
    if isinstance(reference, CategoricalReference) or isinstance(current, CategoryCounts):
        return "categorical"
    return "numeric" if is_numeric(reference) else "categorical"


def _sketch(kind: str, values: Any) -> ColumnReference:
    if kind == "numeric":
        return numeric_reference(values)
    counts, missing = categorical_values(values)
    return CategoricalReference(counts=counts, missing=missing)


def _raw_counts(values: Any) -> tuple[dict[str, int], int]:
    counts, _ = categorical_values(values)
    return counts, sum(counts.values())


def _decide(
    feature: str, method: str, threshold: float | None, stat: float, p: float | None, **rest: Any
) -> DriftResult:
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    drifted = (p is not None and p < limit) if method in P_VALUE_METHODS else stat >= limit
    return DriftResult(
        feature=feature,
        method=method,
        statistic=float(stat),
        p_value=None if p is None else float(p),
        threshold=limit,
        drifted=bool(drifted),
        **rest,
    )


def _empty(feature: str, method: str, threshold: float | None, **rest: Any) -> DriftResult:
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    return DriftResult(
        feature=feature, method=method, statistic=None, p_value=None, threshold=limit, drifted=False, **rest
    )


def _numeric_exact(feature: str, reference: Any, current: Any, method: str, threshold: float | None) -> DriftResult:
    ref = np.sort(finite_values(reference)[0])
    cur = np.sort(finite_values(current)[0])
    method = choose_method("numeric", ref.size, cur.size) if method == "auto" else method
    sizes = {"n_reference": int(ref.size), "n_current": int(cur.size), "mode": "exact", "error_bound": 0.0}
    if ref.size == 0 or cur.size == 0:
        return _empty(feature, method, threshold, **sizes)
    p: float | None = None
    if method == "ks":
        stat, p = st.ks_exact(ref, cur)
    elif method == "wasserstein":
        std = float(ref.std())
        stat = st.wasserstein_exact(ref, cur) / (std if std > 0 else 1.0)
    else:
        stat = st.psi_exact(ref, cur)
    return _decide(feature, method, threshold, stat, p, **sizes)


def _numeric_fast(
    feature: str, ref: NumericReference, cur: BinnedCounts, method: str, threshold: float | None
) -> DriftResult:
    if cur.counts.shape != ref.counts.shape:
        raise InvalidInput(
            f"The counts of {feature!r} have {cur.counts.size} bins but its reference has {ref.counts.size}; "
            "bin the window against this reference (mloop.monitoring.binned.bin_numeric)."
        )
    n_ref, n_cur = ref.n, cur.n
    method = choose_method("numeric", n_ref, n_cur) if method == "auto" else method
    sizes = {"n_reference": n_ref, "n_current": n_cur, "mode": "fast"}
    if n_cur == 0:
        return _empty(feature, method, threshold, error_bound=0.0, **sizes)
    p: float | None = None
    bound = 0.0
    if method == "ks":
        stat, bound = st.ks_binned(ref.counts, cur.counts)
        p = st.ks_pvalue(stat, n_ref, n_cur, limiting=True)
    elif method == "wasserstein":
        w, w_bound = st.wasserstein_binned(
            ref.edges, (ref.counts, ref.sums), (cur.counts, cur.sums), cur.below, cur.above
        )
        scale = ref.std if ref.std > 0 else 1.0
        stat, bound = w / scale, w_bound / scale
    else:
        ref_deciles = st.psi_decile_counts(ref.edges, ref.psi_edges, ref.counts)
        stat = st.psi_counts(ref_deciles, st.psi_decile_counts(ref.edges, ref.psi_edges, cur.counts))
    return _decide(feature, method, threshold, stat, p, error_bound=bound, **sizes)


def _categorical(
    feature: str,
    reference: tuple[dict[str, int], int],
    current: tuple[dict[str, int], int],
    method: str,
    threshold: float | None,
    mode: str,
) -> DriftResult:
    (ref_counts, n_ref), (cur_counts, n_cur) = reference, current
    method = choose_method("categorical", n_ref, n_cur) if method == "auto" else method
    sizes = {"n_reference": n_ref, "n_current": n_cur, "mode": mode, "error_bound": 0.0}
    if n_ref == 0 or n_cur == 0:
        return _empty(feature, method, threshold, **sizes)
    keys = sorted(set(ref_counts) | set(cur_counts))
    ref = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64)
    cur = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
    p: float | None = None
    if method == "chisquare":
        smoothed = np.where(ref == 0, UNSEEN_PSEUDO_COUNT, ref)
        stat, p = st.chisquare_counts(cur, n_cur * smoothed / smoothed.sum())
    elif method == "jensenshannon":
        stat = st.jensenshannon_counts(ref, cur)
    else:
        stat = st.psi_counts(ref, cur)
    return _decide(feature, method, threshold, stat, p, **sizes)


def summarise(reference: ReferenceSketch, current: Mapping[str, Any]) -> dict[str, Summary]:
    """Counts of a window per column against the reference (fast mode's input; add them across windows)."""
    out: dict[str, Summary] = {}
    for name, values in current.items():
        ref = reference[name]
        out[name] = bin_numeric(ref, values) if isinstance(ref, NumericReference) else bin_categorical(ref, values)
    return out


def data_drift(
    reference: ReferenceSketch | Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    mode: Mode = "fast",
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> list[DriftResult]:
    """Drift of every column of ``current`` (raw arrays or summaries) against the reference, in column order.

    ``reference`` is a sketch (fast mode) or the raw columns (either mode; fast mode then builds the sketch,
    which is better done once and stored). ``methods`` and ``thresholds`` override per feature.
    """
    methods = methods or {}
    thresholds = thresholds or {}
    unknown = (set(methods) | set(thresholds)) - set(current)
    if unknown:
        raise InvalidInput(
            f"Overrides name features that are not in the current data: {sorted(unknown)}; "
            f"the features are {sorted(current)}."
        )
    results = []
    for name, values in current.items():
        ref = reference[name] if isinstance(reference, ReferenceSketch) else _column(reference, name)
        results.append(
            feature_drift(
                name, ref, values, method=methods.get(name, "auto"), threshold=thresholds.get(name), mode=mode
            )
        )
    return results


def _column(columns: Mapping[str, Any], name: str) -> Any:
    if name not in columns:
        raise InvalidInput(f"The reference has no column {name!r}; it has {sorted(columns)}.")
    return columns[name]


def dataset_drift(results: Iterable[DriftResult], share: float = 0.5) -> DatasetDrift:
    """Dataset drift: drifted when the share of drifted features is at least ``share`` (Evidently's rule)."""
    if not (isinstance(share, int | float) and 0 < share <= 1):
        raise InvalidInput(f"share={share!r} must be in (0, 1]: the fraction of drifted features that means drift.")
    features = tuple(results)
    n = len(features)
    n_drifted = sum(r.drifted for r in features)
    ratio = n_drifted / n if n else 0.0
    return DatasetDrift(
        drifted=n > 0 and ratio >= share, share_drifted=ratio, share=float(share), n_features=n,
        n_drifted=n_drifted, features=features,
    )  # fmt: skip
