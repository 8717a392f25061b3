"""The reference sketch: what fast-mode drift needs to know about a reference table, computed once.

A dataset version's stored profile (7 quantiles and an equal-width histogram per column) is too coarse to bound
the Kolmogorov-Smirnov statistic, so monitoring keeps its own sketch beside it, as JSON (:meth:`to_dict`):

* numeric column: the distinct values among the order statistics ``x_(floor(k (n-1) / bins))``, ``k = 0..bins``
  (the ``edges`` ``u_0 < ... < u_U``, ``U <= bins``: ``u_0`` is the minimum, ``u_U`` the maximum) and the EXACT
  number of reference values in each of the ``2U + 3`` cells they cut the line into: ``x < u_0``, ``x = u_0``,
  ``u_0 < x < u_1``, ``x = u_1``, ..., ``x = u_U``, ``x > u_U``. Any value holding more than ``1/bins`` of the
  rows is an edge, so atoms (ties, discrete columns) sit in point cells and are counted exactly. Because the
  counts are exact, the reference CDF is known exactly on both sides of every edge; that is what makes the
  binned KS statistic a rigorous lower bound with a computable upper bound
  (:mod:`mloop.monitoring.drift_stats`). Also the 9 PSI decile edges (the order statistics at ``floor(k (n-1) /
  10)``, all among the edges), the mean and the population standard deviation (Wasserstein's normaliser) and the
  count of missing values (null, NaN and +-inf are "missing": drift compares the finite values, data quality
  counts the rest);
* categorical column: the count of every category (as text), the ``max_categories`` most frequent kept and the
  rest pooled under ``other``.

Fast-mode PSI counts the window on the same decile edges as exact mode, so the two are equal. The default 2000
bins keep the KS error bound near 1/1000 and cost ~55 KB of JSON per continuous numeric column.

Building: :func:`build_reference` from columns in memory (one sort per column); :func:`build_reference_chunked`
from a function that returns a fresh iterator of chunks, read twice (pass 1: a mergeable quantile sketch from
:mod:`mloop.datasets.sketches` chooses the edges; pass 2: exact counts per bin), for tables that do not fit in
memory. The edges of a chunked build are approximate quantiles (rank error +-n/4096 per edge), the counts are
exact, so every error bound holds unchanged; PSI's deciles are then approximate deciles of the reference.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mloop.datasets.sketches import QuantileSketch
from mloop.errors import InvalidInput

__all__ = [
    "DEFAULT_BINS",
    "CategoricalReference",
    "NumericReference",
    "ReferenceSketch",
    "build_reference",
    "build_reference_chunked",
    "categorical_values",
    "finite_values",
    "is_numeric",
]

DEFAULT_BINS = 2000
PSI_DECILES = 10
MAX_CATEGORIES = 1000
OTHER = "__other__"
FORMAT = 1
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def is_numeric(values: Any) -> bool:
    """Whether a column is compared as numbers (ints, floats; not booleans, which are categories)."""
    kind = np.asarray(values).dtype.kind
    return kind in "iuf"


def finite_values(values: Any) -> tuple[FloatArray, int]:
    """The finite values of a numeric column as float64, and how many were missing (NaN, +-inf, null)."""
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
    arr = arr.astype(np.float64, copy=False).ravel()
    finite = np.isfinite(arr)
    if finite.all():
        return arr, 0
    return arr[finite], int(arr.size - np.count_nonzero(finite))


def categorical_values(values: Any) -> tuple[dict[str, int], int]:
    """Counts per category (as text) of a categorical column, and how many were missing (None, NaN).

    Counted by Arrow's ``value_counts`` (10x a Python ``Counter`` on a million strings); columns Arrow cannot
    type (mixed objects) fall back to numpy and a ``Counter``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        column = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(_flat(values), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        column = None
    if column is not None:
        counted = pc.value_counts(column)
        keys = counted.field("values").to_pylist()
        numbers = counted.field("counts").to_pylist()
        counts = {str(k): int(c) for k, c in zip(keys, numbers, strict=True) if k is not None}
        return counts, int(column.null_count)
    arr = _flat(values)
    if arr.dtype != object:  # strings, booleans: numpy counts them (no None or NaN possible)
        uniques, numbers = np.unique(arr, return_counts=True)
        return {str(u): int(c) for u, c in zip(uniques.tolist(), numbers.tolist(), strict=True)}, 0
    present = [v for v in arr.tolist() if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    return dict(Counter(str(v) for v in present)), arr.size - len(present)


def _flat(values: Any) -> npt.NDArray[Any]:
    return np.asarray(values).ravel()


@dataclass(frozen=True)
class NumericReference:
    """Edges (order statistics of the reference) and exact counts per bin; see the module docstring."""

    edges: FloatArray  # distinct, ascending
    counts: IntArray  # 2 len(edges) + 1 cells: below, at u_0, between u_0 and u_1, at u_1, ..., above
    psi_edges: FloatArray  # the 9 inner decile edges (values among ``edges``)
    sums: FloatArray  # sum of the values in each open cell between two edges (len(edges) - 1)
    mean: float
    std: float  # population standard deviation (ddof=0), Wasserstein's normaliser
    missing: int = 0
    kind: str = field(default="numeric", init=False)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "psi_edges": [float(e) for e in self.psi_edges],
            "sums": [float(v) for v in self.sums],
            "mean": self.mean,
            "std": self.std,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class CategoricalReference:
    """Counts per category (text), most frequent first; the rest pooled under ``__other__``."""

    counts: Mapping[str, int]
    missing: int = 0
    kind: str = field(default="categorical", init=False)

    @property
    def n(self) -> int:
        return int(sum(self.counts.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "counts": dict(self.counts), "missing": self.missing}


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceSketch:
    """The reference of every column, by name. JSON-serialisable with :meth:`to_dict` / :meth:`from_dict`."""

    columns: Mapping[str, ColumnReference]
    bins: int = DEFAULT_BINS

    def __getitem__(self, name: str) -> ColumnReference:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInput(
                f"The reference has no column {name!r}; it has {sorted(self.columns)}. "
                "Rebuild the reference from a table with that column, or drop it from the current data."
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "bins": self.bins,
            "columns": {name: col.to_dict() for name, col in sorted(self.columns.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceSketch:
        if data.get("format") != FORMAT:
            raise InvalidInput(
                f"Reference sketch format {data.get('format')!r} is not supported (expected {FORMAT}); "
                "rebuild it with mloop.monitoring.reference.build_reference."
            )
        columns: dict[str, ColumnReference] = {}
        for name, col in data["columns"].items():
            if col["kind"] == "numeric":
                columns[name] = NumericReference(
                    edges=np.asarray(col["edges"], dtype=np.float64),
                    counts=np.asarray(col["counts"], dtype=np.int64),
                    psi_edges=np.asarray(col["psi_edges"], dtype=np.float64),
                    sums=np.asarray(col["sums"], dtype=np.float64),
                    mean=float(col["mean"]),
                    std=float(col["std"]),
                    missing=int(col["missing"]),
                )
            else:
                counts = {str(k): int(v) for k, v in col["counts"].items()}
                columns[name] = CategoricalReference(counts=counts, missing=int(col["missing"]))
        return cls(columns=columns, bins=int(data["bins"]))


def _check_bins(bins: int) -> int:
    if not isinstance(bins, int) or bins < 10 or bins % 10:
        raise InvalidInput(
            f"bins={bins!r} is not a multiple of 10 of at least 10; PSI uses deciles made of whole bins. "
            f"Use the default {DEFAULT_BINS}."
        )
    return bins


def numeric_reference(values: Any, bins: int = DEFAULT_BINS) -> NumericReference:
    """The reference of one numeric column held in memory (exact order statistics as edges)."""
    finite, missing = finite_values(values)
    if finite.size == 0:
        raise InvalidInput("A numeric reference column has no finite values; drop it or choose another reference.")
    ordered = np.sort(finite)
    stats = order_statistics(ordered, bins)
    edges = np.unique(stats)
    counts = cell_counts(ordered, edges)
    return NumericReference(
        edges=edges, counts=counts, psi_edges=psi_edges(stats), sums=cell_sums(ordered, counts)[2:-2:2],
        mean=float(ordered.mean()), std=float(ordered.std()), missing=missing,
    )  # fmt: skip


def order_statistics(ordered: FloatArray, bins: int) -> FloatArray:
    """``x_(floor(k (n-1) / bins))`` for ``k = 0..bins`` of sorted values."""
    return ordered[(np.arange(bins + 1, dtype=np.int64) * (ordered.size - 1)) // bins]


def psi_edges(stats: FloatArray) -> FloatArray:
    """The 9 inner decile edges among ``bins + 1`` order statistics (``bins`` a multiple of 10)."""
    step = (stats.size - 1) // PSI_DECILES
    return stats[np.arange(1, PSI_DECILES) * step].copy()


def cell_counts(ordered: FloatArray, edges: FloatArray) -> IntArray:
    """Counts of sorted values in the ``2 len(edges) + 1`` cells of distinct ``edges`` (module docstring)."""
    left = np.searchsorted(ordered, edges, side="left")
    right = np.searchsorted(ordered, edges, side="right")
    bounds = np.empty(2 * edges.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, ordered.size
    bounds[1:-1:2], bounds[2:-1:2] = left, right
    return np.diff(bounds)


def cell_sums(ordered: FloatArray, counts: IntArray) -> FloatArray:
    """The sum of the sorted values in every cell (pairwise summation within each cell, no cancellation)."""
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    nonempty = counts > 0
    out = np.zeros(counts.size, dtype=np.float64)
    if ordered.size:
        out[nonempty] = np.add.reduceat(ordered, starts[nonempty])
    return out


def categorical_reference(counts: Mapping[str, int], missing: int, max_categories: int) -> CategoricalReference:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:max_categories])
    rest = sum(c for _, c in ranked[max_categories:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return CategoricalReference(counts=kept, missing=missing)


def build_reference(
    columns: Mapping[str, Any], *, bins: int = DEFAULT_BINS, max_categories: int = MAX_CATEGORIES
) -> ReferenceSketch:
    """The reference sketch of columns in memory (name -> array-like); numeric by dtype, anything else categorical."""
    _check_bins(bins)
    refs: dict[str, ColumnReference] = {}
    for name, values in columns.items():
        if is_numeric(values):
            refs[name] = numeric_reference(values, bins)
        else:
            counts, missing = categorical_values(values)
            refs[name] = categorical_reference(counts, missing, max_categories)
    return ReferenceSketch(columns=refs, bins=bins)


def build_reference_chunked(
    chunks: Callable[[], Iterable[Mapping[str, Any]]],
    *,
    bins: int = DEFAULT_BINS,
    max_categories: int = MAX_CATEGORIES,
) -> ReferenceSketch:
    """The reference sketch of a table too large for memory; ``chunks()`` is called twice (two passes)."""
    _check_bins(bins)
    sketches: dict[str, QuantileSketch] = {}
    moments: dict[str, list[float]] = {}  # n, sum, sum of squared deviations (Chan's merge)
    cats: dict[str, Counter[str]] = {}
    missing: dict[str, int] = {}
    probabilities = np.arange(bins + 1) / bins
    for chunk in _iterate(chunks):
        for name, values in chunk.items():
            if name not in sketches and name not in cats:
                if is_numeric(values):
                    sketches[name] = QuantileSketch(points=4096, probabilities=tuple(probabilities))
                    moments[name] = [0.0, 0.0, 0.0]
                else:
                    cats[name] = Counter()
                missing[name] = 0
            if name in sketches:
                finite, miss = finite_values(values)
                ordered = np.sort(finite)
                sketches[name].add_sorted(ordered)
                _merge_moments(moments[name], ordered)
            else:
                counts, miss = categorical_values(values)
                cats[name].update(counts)
            missing[name] += miss
    edges: dict[str, FloatArray] = {}
    stats: dict[str, FloatArray] = {}
    for name, sketch in sketches.items():
        if sketch.n == 0:
            raise InvalidInput(f"Numeric reference column {name!r} has no finite values; drop it.")
        stats[name] = np.maximum.accumulate(np.array(list(sketch.quantiles().values()), dtype=np.float64))
        edges[name] = np.unique(stats[name])
    counts_by = {name: np.zeros(2 * edges[name].size + 1, dtype=np.int64) for name in sketches}
    sums_by = {name: np.zeros(2 * edges[name].size + 1, dtype=np.float64) for name in sketches}
    for chunk in _iterate(chunks):
        for name in sketches:
            finite, _ = finite_values(chunk[name])
            ordered = np.sort(finite)
            cells = cell_counts(ordered, edges[name])
            counts_by[name] += cells
            sums_by[name] += cell_sums(ordered, cells)
    refs: dict[str, ColumnReference] = {}
    for name in chunks_order(sketches, cats):
        if name in sketches:
            n, mean, m2 = moments[name]
            refs[name] = NumericReference(
                edges=edges[name], counts=counts_by[name], psi_edges=psi_edges(stats[name]),
                sums=sums_by[name][2:-2:2], mean=mean, std=float(np.sqrt(m2 / n)), missing=missing[name],
            )  # fmt: skip
        else:
            refs[name] = categorical_reference(dict(cats[name]), missing[name], max_categories)
    return ReferenceSketch(columns=refs, bins=bins)


def chunks_order(*groups: Mapping[str, Any]) -> list[str]:
    return sorted(name for group in groups for name in group)


def _iterate(chunks: Callable[[], Iterable[Mapping[str, Any]]]) -> Iterator[Mapping[str, Any]]:
    yield from chunks()


def _merge_moments(acc: list[float], values: FloatArray) -> None:
    """Running mean and sum of squared deviations, merged chunk by chunk (Chan et al.)."""
    n_b = float(values.size)
    if n_b == 0:
        return
    mean_b = float(values.mean())
    m2_b = float(((values - mean_b) ** 2).sum())
    n_a, mean_a, m2_a = acc
    n = n_a + n_b
    delta = mean_b - mean_a
    acc[0] = n
    acc[1] = mean_a + delta * n_b / n
    acc[2] = m2_a + m2_b + delta * delta * n_a * n_b / n
