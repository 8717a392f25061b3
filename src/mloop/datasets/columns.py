"""Per-column accumulators: one per kind of column, fed chunk by chunk, finished into a ColumnProfile.

Accumulators are not thread-safe: :func:`~mloop.datasets.profile.profile_table` runs different columns in
parallel but feeds each accumulator its chunks one after the other. Arrow arrays are turned into numpy views
by hand (``_numpy``/``_arrow``) because ``Array.to_numpy`` and ``pa.array(ndarray)`` import pandas, which
alone costs more than profiling a million rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.datasets.sketches import (
    DistinctSketch,
    QuantileSketch,
    hash_bytes,
    histogram_edges,
    histogram_sorted,
    histogram_values,
)
from mloop.entities.profile import ColumnKind, ColumnProfile, Histogram

__all__ = ["ColumnAccumulator", "ColumnSettings", "accumulator", "column_kind"]

_EPOCH = datetime(1970, 1, 1)
_PER_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}


def column_kind(arrow_type: Any) -> ColumnKind:
    """How a column of this Arrow type is profiled."""
    t = arrow_type
    if pa.types.is_boolean(t):
        return ColumnKind.BOOLEAN
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return ColumnKind.NUMERIC
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t) or str(t) == "string_view":
        return ColumnKind.CATEGORICAL
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return ColumnKind.DATETIME
    return ColumnKind.OTHER


@dataclass(frozen=True)
class ColumnSettings:
    """Histogram bins, how many top values to keep, the distinct-value cap and the quantile sketch size."""

    bins: int
    top_k: int
    max_distinct: int
    sketch_points: int


class ColumnAccumulator:
    """Accumulates one column over chunks; subclasses add the statistics of their kind."""

    def __init__(self, field: Any, settings: ColumnSettings) -> None:
        self.name: str = field.name
        self.type = field.type
        self.settings = settings
        self.count = 0
        self.missing = 0

    def update(self, col: Any) -> None:
        self.missing += col.null_count
        self.count += len(col) - col.null_count

    def profile(self, **stats: Any) -> ColumnProfile:
        kind = column_kind(self.type)
        return ColumnProfile(str(self.name), str(self.type), kind, self.count, self.missing, **stats)

    def finish(self) -> ColumnProfile:
        return self.profile()

    def needs_second_pass(self) -> bool:
        """True when the histogram must be counted again over the final range (numeric columns only)."""
        return False

    def start_second_pass(self) -> None:
        pass

    def second_pass(self, col: Any) -> None:
        pass


class _Numeric(ColumnAccumulator):
    def __init__(self, field: Any, settings: ColumnSettings, known: tuple[Any, Any] | None) -> None:
        super().__init__(field, settings)
        self.mean = 0.0
        self.m2 = 0.0
        self.finite_count = 0
        self.lo: int | float | None = None
        self.hi: int | float | None = None
        self.finite: tuple[float, float] | None = None
        self.infinities = [0, 0]  # -inf, +inf
        self.sketch = QuantileSketch(settings.sketch_points)
        self.edges = None if known is None else histogram_edges(known[0], known[1], settings.bins)
        self.counts = np.zeros(0 if self.edges is None else len(self.edges) - 1, dtype=np.int64)
        self.hist_ok = True

    def _sorted(self, col: Any) -> Any:
        """The non-missing values sorted (NaN counted as missing and dropped), with as few copies as possible."""
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pa.types.is_decimal(arr.type) or pa.types.is_float16(arr.type):
            arr = arr.cast(pa.float64())
        nulls = arr.null_count
        self.missing += nulls
        if nulls:
            arr = pc.drop_null(arr)
        values = _numpy(arr)
        floating = values.dtype.kind == "f"
        s = np.sort(values.astype(np.float64, copy=False) if floating else values)
        if floating:
            nan_at = int(np.searchsorted(s, np.nan))
            self.missing += len(s) - nan_at
            s = s[:nan_at]
        return s

    def update(self, col: Any) -> None:
        s = self._sorted(col)
        n = len(s)
        if n == 0:
            return
        self.count += n
        lo, hi = s[0].item(), s[-1].item()
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        self.sketch.add_sorted(s)
        if s.dtype.kind == "f":  # infinities: counted apart, the rest of the statistics are over finite values
            a, b = int(np.searchsorted(s, -np.inf, "right")), int(np.searchsorted(s, np.inf, "left"))
            self.infinities[0] += a
            self.infinities[1] += n - b
            s = s[a:b]
        if len(s) == 0:
            return
        self._moments(s)
        flo, fhi = float(s[0]), float(s[-1])
        self.finite = (flo, fhi) if self.finite is None else (min(self.finite[0], flo), max(self.finite[1], fhi))
        if self.edges is None:  # first values seen: try this chunk's range (right if it is the only chunk)
            self.edges = histogram_edges(flo, fhi, self.settings.bins)
            self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        if self.hist_ok and self.edges[0] <= flo and fhi <= self.edges[-1]:
            self.counts += histogram_sorted(s, self.edges)
        else:
            self.hist_ok = False

    def _moments(self, s: Any) -> None:
        """Merge the mean and sum of squared deviations of finite values ``s`` (Chan et al.)."""
        n = len(s)
        with np.errstate(over="ignore", invalid="ignore"):
            arrow_view = _arrow(s)  # Arrow's mean and variance are single-pass and fast
            mean_b = pc.mean(arrow_view).as_py()
            m2_b = pc.variance(arrow_view, ddof=0).as_py() * n
            delta = mean_b - self.mean
            total = self.finite_count + n
            self.m2 += m2_b + delta * delta * self.finite_count * n / total
            self.mean += delta * n / total
        self.finite_count = total

    def needs_second_pass(self) -> bool:
        if self.finite is None or self.edges is None:
            return False
        return not (self.hist_ok and (float(self.edges[0]), float(self.edges[-1])) == self.finite)

    def start_second_pass(self) -> None:
        assert self.finite is not None
        self.edges = histogram_edges(self.finite[0], self.finite[1], self.settings.bins)
        self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        self.hist_ok = True

    def second_pass(self, col: Any) -> None:
        assert self.edges is not None
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pa.types.is_decimal(arr.type) or pa.types.is_float16(arr.type):
            arr = arr.cast(pa.float64())
        values = _numpy(pc.drop_null(arr) if arr.null_count else arr)
        self.counts += histogram_values(values, self.edges)

    def finish(self) -> ColumnProfile:
        if self.count == 0:
            return self.profile()
        histogram = None
        if self.finite is not None and self.edges is not None:
            counts = self.counts.copy()
            counts[0] += self.infinities[0]
            counts[-1] += self.infinities[1]
            histogram = Histogram(tuple(float(e) for e in self.edges), tuple(int(c) for c in counts))
        as_float = not pa.types.is_integer(self.type)
        lo, hi = (float(v) if as_float else v for v in (self.lo, self.hi))  # type: ignore[arg-type]
        mean, std = self.mean, math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else None
        neg, pos = self.infinities
        if neg or pos:  # as numpy: +-inf when one sign is present, NaN when both; std NaN
            mean = math.nan if neg and pos else (math.inf if pos else -math.inf)
            std = None if std is None else math.nan
        return self.profile(
            min=lo,
            max=hi,
            mean=mean,
            std=std,
            quantiles=self.sketch.quantiles(),
            histogram=histogram,
        )


_NUMPY_TYPES = {
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "halffloat": np.float16,
    "float": np.float32,
    "double": np.float64,
}


def _numpy(arr: Any) -> Any:
    """A null-free Arrow integer/float array as a read-only numpy view (Array.to_numpy imports pandas)."""
    dtype = np.dtype(_NUMPY_TYPES[str(arr.type)])
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _arrow(values: Any) -> Any:
    """A contiguous numpy array as an Arrow array without copying (and without pa.array's pandas import)."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _text(values: Any) -> Any:
    return values if values.type == pa.string() else values.cast(pa.string())


def _text_hashes(values: Any) -> Any:
    """Hashes of a null-free string array, read straight from its Arrow buffers."""
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    return hash_bytes(offsets, data)


def _merge_counts(parts: Sequence[tuple[Any, Any]], *, dedupe: bool = False) -> tuple[Any, Any]:
    """(distinct values, counts) from (values, counts) pairs; Arrow hashing, numpy sums."""
    if len(parts) == 1 and not dedupe:
        return parts[0]
    encoded = pc.dictionary_encode(pa.concat_arrays([v for v, _ in parts]))
    counts = np.concatenate([c for _, c in parts]).astype(np.float64)  # exact below 2**53 rows
    sums = np.bincount(_numpy(encoded.indices), weights=counts, minlength=len(encoded.dictionary))
    return encoded.dictionary, sums.astype(np.int64)


class _Categorical(ColumnAccumulator):
    def __init__(self, field: Any, settings: ColumnSettings) -> None:
        super().__init__(field, settings)
        self.values: Any = None  # distinct values (Arrow string array) ...
        self.freq: Any = None  # ... and their counts (numpy int64)
        self.approximate = False
        self.distinct = DistinctSketch()

    def _counted(self, col: Any) -> Iterator[tuple[Any, Any]]:
        """(distinct values, counts) of a chunk: Arrow's hash count, or a bincount of dictionary indices."""
        if not pa.types.is_dictionary(col.type):
            vc = pc.value_counts(col)
            values, counts = vc.field(0), vc.field(1)
            if values.null_count:
                keep = pc.is_valid(values)
                values, counts = values.filter(keep), counts.filter(keep)
            if len(values):
                yield _text(values), _numpy(counts)
            return
        for chunk in col.chunks:
            arr = pc.drop_null(chunk) if chunk.null_count else chunk
            counts = np.bincount(_numpy(arr.indices), minlength=len(arr.dictionary))
            used = np.flatnonzero(counts)
            if len(used):
                yield _text(arr.dictionary.take(_arrow(used))), counts[used].astype(np.int64)

    def update(self, col: Any) -> None:
        super().update(col)
        new = list(self._counted(col))
        if not new:
            return
        parts = new if self.values is None else [(self.values, self.freq), *new]
        # Values of a dictionary may repeat (Arrow allows it), so they are always hashed once more.
        self.values, self.freq = _merge_counts(parts, dedupe=pa.types.is_dictionary(col.type))
        if self.approximate:
            for values, _ in new:
                self.distinct.add_hashes(_text_hashes(values))
        elif len(self.values) > self.settings.max_distinct:
            self.approximate = True
            self.distinct.add_hashes(_text_hashes(self.values))
        if len(self.values) > self.settings.max_distinct:
            keep = self._ranked(self.settings.max_distinct)
            self.values, self.freq = self.values.take(keep), self.freq[_numpy(keep)]

    def _ranked(self, k: int) -> Any:
        """Indices of the ``k`` most frequent values, most frequent first, ties by value."""
        table = pa.table([self.values, _arrow(self.freq)], names=["v", "c"])
        keys = [("c", "descending"), ("v", "ascending")]
        picked = pc.select_k_unstable(table, k=min(k, len(table)), sort_keys=keys)
        return picked.take(pc.sort_indices(table.take(picked), sort_keys=keys))

    def finish(self) -> ColumnProfile:
        if self.values is None or len(self.values) == 0:
            return self.profile(cardinality=0)
        keep = self._ranked(self.settings.top_k)
        top = tuple(zip(self.values.take(keep).to_pylist(), self.freq[_numpy(keep)].tolist(), strict=True))
        distinct = max(self.distinct.estimate(), len(self.values)) if self.approximate else len(self.values)
        return self.profile(cardinality=distinct, top=top, approximate=self.approximate)


class _Boolean(ColumnAccumulator):
    def __init__(self, field: Any, settings: ColumnSettings) -> None:
        super().__init__(field, settings)
        self.trues = 0

    def update(self, col: Any) -> None:
        super().update(col)
        self.trues += pc.sum(col).as_py() or 0

    def finish(self) -> ColumnProfile:
        counts = [("true", self.trues), ("false", self.count - self.trues)]
        top = tuple(sorted(((v, n) for v, n in counts if n), key=lambda t: (-t[1], t[0])))
        return self.profile(cardinality=len(top), top=top)


def _iso(value: int, arrow_type: Any) -> str:
    """An Arrow date/timestamp value as ISO 8601 (timestamps with a time zone are written in UTC)."""
    try:
        if pa.types.is_date32(arrow_type):
            return (date(1970, 1, 1) + timedelta(days=value)).isoformat()
        if pa.types.is_date64(arrow_type):
            return (_EPOCH + timedelta(milliseconds=value)).date().isoformat()
        unit, extra = arrow_type.unit, ""
        if unit == "ns":
            value, nanos = divmod(value, 1000)
            extra = f"{nanos:03d}" if nanos else ""
            unit = "us"
        moment = _EPOCH + timedelta(microseconds=value * _PER_UNIT_US[unit])
        text = moment.isoformat(timespec="microseconds") + extra if extra else moment.isoformat()
        return text + "+00:00" if arrow_type.tz else text
    except OverflowError:
        return f"{value} ({arrow_type}, out of the ISO 8601 range)"


class _Datetime(ColumnAccumulator):
    def __init__(self, field: Any, settings: ColumnSettings) -> None:
        super().__init__(field, settings)
        self.lo: int | None = None
        self.hi: int | None = None

    def update(self, col: Any) -> None:
        super().update(col)
        if len(col) == col.null_count:
            return
        ints = pa.int32() if pa.types.is_date32(self.type) else pa.int64()
        bounds = pc.min_max(pa.chunked_array([a.view(ints) for a in col.chunks], type=ints)).as_py()
        self.lo = bounds["min"] if self.lo is None else min(self.lo, bounds["min"])
        self.hi = bounds["max"] if self.hi is None else max(self.hi, bounds["max"])

    def finish(self) -> ColumnProfile:
        if self.lo is None or self.hi is None:
            return self.profile()
        return self.profile(min=_iso(self.lo, self.type), max=_iso(self.hi, self.type))


def accumulator(field: Any, settings: ColumnSettings, known_range: tuple[Any, Any] | None = None) -> ColumnAccumulator:
    """The accumulator for a column (an Arrow field); ``known_range`` is an exact numeric (min, max) if known."""
    kind = column_kind(field.type)
    if kind is ColumnKind.NUMERIC:
        return _Numeric(field, settings, known_range)
    if kind is ColumnKind.CATEGORICAL:
        return _Categorical(field, settings)
    if kind is ColumnKind.BOOLEAN:
        return _Boolean(field, settings)
    if kind is ColumnKind.DATETIME:
        return _Datetime(field, settings)
    return ColumnAccumulator(field, settings)
