"""Profiling tables: schema, row count and per-column statistics as a :class:`~mloop.entities.profile.TableProfile`.

:func:`profile_table` streams the table in chunks of ``chunk_rows`` rows and merges per-chunk results, with
the columns of a chunk processed in parallel threads (Arrow and numpy release the GIL):

* count, missing, min, max, histogram counts, top values and (below ``max_distinct``) cardinality are exact
  and do not depend on how the rows are chunked; mean and standard deviation are merged with Chan's formula
  (equal to a one-shot computation up to floating-point rounding);
* quantiles are exact when the rows arrive in one chunk, otherwise within the rank bound of
  :class:`~mloop.datasets.sketches.QuantileSketch` (+-0.05 % of the rows with the default 4096 points);
* histograms need the final range before counting: Parquet footers usually hold it (min/max statistics),
  in-memory tables get it from one cheap min/max scan, and for the rest the first chunk's range is tried; when
  the data turns out to reach beyond it, numeric columns are read a second time for their histograms only;
* a text column with more than ``max_distinct`` distinct values switches to approximate mode (flagged on
  the column): only the ``max_distinct`` most frequent values are kept (so top counts are lower bounds for
  values that were evicted and came back) and cardinality is estimated with a k-minimum-values sketch
  (relative error ~0.8 %).

CSV and JSON lines up to ``in_memory_bytes`` (256 MB) are read whole, which gives the most robust type
inference; larger files are streamed (types from their first 16 MB, see :mod:`mloop.datasets.tables`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.datasets import tables
from mloop.datasets.sketches import (
    DistinctSketch,
    QuantileSketch,
    hash_bytes,
    histogram_edges,
    histogram_sorted,
    histogram_values,
)
from mloop.entities.profile import ColumnKind, ColumnProfile, Histogram, SchemaDiff, TableProfile
from mloop.errors import InvalidInput

__all__ = ["column_kind", "compare_schemas", "profile_table"]

IN_MEMORY_BYTES = 256 << 20
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


@dataclass
class _Settings:
    bins: int
    top_k: int
    max_distinct: int
    sketch_points: int


class _Column:
    """Accumulates one column over chunks; subclasses add the statistics of their kind."""

    def __init__(self, field: Any, settings: _Settings) -> None:
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


class _Numeric(_Column):
    def __init__(self, field: Any, settings: _Settings, known: tuple[Any, Any] | None) -> None:
        super().__init__(field, settings)
        self.mean = 0.0
        self.m2 = 0.0
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
        floating = pa.types.is_floating(arr.type)
        if nulls and not floating:
            arr = pc.drop_null(arr)
        values = arr.to_numpy(zero_copy_only=False)  # floats with nulls: a writable copy, nulls as NaN
        if floating and nulls:
            values = values.astype(np.float64, copy=False)
            values.sort()
            s = values
        else:
            s = np.sort(values.astype(np.float64, copy=False) if floating else values)
        if floating:
            nan_at = int(np.searchsorted(s, np.nan))
            self.missing += len(s) - nan_at - nulls
            s = s[:nan_at]
        return s

    def update(self, col: Any) -> None:
        s = self._sorted(col)
        n = len(s)
        if n == 0:
            return
        with np.errstate(invalid="ignore", over="ignore"):
            arrow_view = pa.array(s)  # zero-copy; Arrow's mean/variance are single pass and fast
            mean_b = pc.mean(arrow_view).as_py()
            m2_b = pc.variance(arrow_view, ddof=0).as_py() * n
            delta = mean_b - self.mean
            total = self.count + n
            self.m2 += m2_b + delta * delta * self.count * n / total
            self.mean += delta * n / total
        self.count = total
        lo, hi = s[0].item(), s[-1].item()
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        self.sketch.add_sorted(s)
        if s.dtype.kind == "f":
            a, b = int(np.searchsorted(s, -np.inf, "right")), int(np.searchsorted(s, np.inf, "left"))
            self.infinities[0] += a
            self.infinities[1] += n - b
            s = s[a:b]
        if len(s) == 0:
            return
        flo, fhi = float(s[0]), float(s[-1])
        self.finite = (flo, fhi) if self.finite is None else (min(self.finite[0], flo), max(self.finite[1], fhi))
        if self.edges is None:  # first values seen: try this chunk's range (right if it is the only chunk)
            self.edges = histogram_edges(flo, fhi, self.settings.bins)
            self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        if self.hist_ok and self.edges[0] <= flo and fhi <= self.edges[-1]:
            self.counts += histogram_sorted(s, self.edges)
        else:
            self.hist_ok = False

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
        values = pc.drop_null(arr).to_numpy(zero_copy_only=False) if arr.null_count else arr.to_numpy()
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
        std = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else None  # NaN/inf stay so
        return self.profile(
            min=lo,
            max=hi,
            mean=self.mean,
            std=std,
            quantiles=self.sketch.quantiles(),
            histogram=histogram,
        )


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
    sums = np.bincount(encoded.indices.to_numpy(), weights=counts, minlength=len(encoded.dictionary))
    return encoded.dictionary, sums.astype(np.int64)


class _Categorical(_Column):
    def __init__(self, field: Any, settings: _Settings) -> None:
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
                yield _text(values), counts.to_numpy()
            return
        for arr in col.chunks:
            arr = pc.drop_null(arr) if arr.null_count else arr
            counts = np.bincount(arr.indices.to_numpy(zero_copy_only=False), minlength=len(arr.dictionary))
            used = np.flatnonzero(counts)
            if len(used):
                yield _text(arr.dictionary.take(pa.array(used))), counts[used].astype(np.int64)

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
            self.values, self.freq = self.values.take(keep), self.freq[keep.to_numpy()]

    def _ranked(self, k: int) -> Any:
        """Indices of the ``k`` most frequent values, most frequent first, ties by value."""
        table = pa.table({"v": self.values, "c": self.freq})
        keys = [("c", "descending"), ("v", "ascending")]
        picked = pc.select_k_unstable(table, k=min(k, len(table)), sort_keys=keys)
        return picked.take(pc.sort_indices(table.take(picked), sort_keys=keys))

    def finish(self) -> ColumnProfile:
        if self.values is None or len(self.values) == 0:
            return self.profile(cardinality=0)
        keep = self._ranked(self.settings.top_k)
        top = tuple(zip(self.values.take(keep).to_pylist(), self.freq[keep.to_numpy()].tolist(), strict=True))
        distinct = max(self.distinct.estimate(), len(self.values)) if self.approximate else len(self.values)
        return self.profile(cardinality=distinct, top=top, approximate=self.approximate)


class _Boolean(_Column):
    def __init__(self, field: Any, settings: _Settings) -> None:
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


class _Datetime(_Column):
    def __init__(self, field: Any, settings: _Settings) -> None:
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


@dataclass
class _Plan:
    """What to profile: its schema, a re-iterable stream of parts (chunks of rows; ``columns`` may limit what
    a part holds), how to get one column of a part and how many rows a part has, and numeric ranges known up
    front (for the histograms)."""

    schema: Any
    parts: Callable[[Sequence[str] | None], Iterator[Any]]
    read: Callable[[Any, str], Any]
    rows: Callable[[Any], int]
    ranges: dict[str, tuple[Any, Any]]


def _table_column(part: Any, name: str) -> Any:
    return part.column(name)


def _table_rows(part: Any) -> int:
    return int(part.num_rows)


def _table_plan(table: Any, chunk_rows: int) -> _Plan:
    def parts(columns: Sequence[str] | None) -> Iterator[Any]:
        for start in range(0, table.num_rows, chunk_rows):
            yield table.slice(start, chunk_rows)

    ranges: dict[str, tuple[Any, Any]] = {}
    if table.num_rows > chunk_rows:  # several chunks: one cheap min/max scan saves a second pass
        for field in table.schema:
            if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
                bounds = pc.min_max(table.column(field.name)).as_py()
                lo, hi = bounds["min"], bounds["max"]
                if lo is not None and math.isfinite(lo) and math.isfinite(hi):
                    ranges[field.name] = (lo, hi)
    return _Plan(table.schema, parts, _table_column, _table_rows, ranges)


def _rechunk(batches: Iterator[Any], rows: int) -> Iterator[Any]:
    buffered: list[Any] = []
    size = 0
    for batch in batches:
        buffered.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield pa.Table.from_batches(buffered)
            buffered, size = [], 0
    if buffered:
        yield pa.Table.from_batches(buffered)


def _file_plan(files: list[Path], fmt: tables.TableFormat, chunk_rows: int) -> _Plan:
    schema = tables.table_schema(files, fmt)
    if fmt == "parquet":  # column by column, so reading and profiling share the threads
        spans = tables.row_group_spans(files, fmt, target_rows=chunk_rows)

        def read(span: tables.RowGroupSpan, name: str) -> Any:
            return tables.read_span(span, [name], schema=schema, dictionary_strings=True).column(0)

        return _Plan(schema, lambda _: iter(spans), read, lambda span: span.rows, tables.column_ranges(files, fmt))
    if sum(f.stat().st_size for f in files) <= IN_MEMORY_BYTES:
        return _table_plan(tables.read_table(files, fmt), chunk_rows)
    # Streamed text: a column empty in the first block is read as text.
    schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type) for f in schema])

    def parts(columns: Sequence[str] | None) -> Iterator[Any]:
        return _rechunk(tables.iter_batches(files, fmt, batch_rows=chunk_rows, columns=columns), chunk_rows)

    return _Plan(schema, parts, _table_column, _table_rows, {})


def _plan(source: Any, format: str | None, chunk_rows: int) -> _Plan:
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        return _table_plan(source, chunk_rows)
    if type(source).__module__.partition(".")[0] == "pandas" and hasattr(source, "columns"):
        try:
            table = pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"Cannot convert the DataFrame to Arrow: {exc}. Give each column one type, e.g. "
                "df[col] = df[col].astype(str)."
            ) from exc
        return _table_plan(table.replace_schema_metadata(None), chunk_rows)
    if not isinstance(source, str | os.PathLike | list | tuple):
        raise InvalidInput(
            f"Cannot profile a {type(source).__name__}; pass a path, a list of paths, a pyarrow Table or a "
            "pandas DataFrame."
        )
    files, fmt = tables.table_files(source, format)
    return _file_plan(files, fmt, chunk_rows)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a positive integer, got {value!r}.")


def profile_table(
    source: Any,
    *,
    format: str | None = None,
    bins: int = 20,
    top_k: int = 20,
    max_distinct: int = 100_000,
    chunk_rows: int = 1 << 20,
    sketch_points: int = 4096,
    threads: int | None = None,
) -> TableProfile:
    """Profile a table file or folder (CSV/TSV, Parquet, JSON lines), a list of files, a pyarrow Table or a
    pandas DataFrame. See the module docstring for what is exact and what is estimated."""
    _check_positive(bins=bins, top_k=top_k, max_distinct=max_distinct, chunk_rows=chunk_rows)
    _check_positive(sketch_points=sketch_points, threads=threads or 1)
    plan = _plan(source, format, chunk_rows)
    names = plan.schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"The table has duplicate column names {dupes}; give every column a unique name.")
    settings = _Settings(bins, top_k, max_distinct, sketch_points)
    columns: list[_Column] = []
    for field in plan.schema:
        kind = column_kind(field.type)
        if kind is ColumnKind.NUMERIC:
            columns.append(_Numeric(field, settings, plan.ranges.get(field.name)))
        elif kind is ColumnKind.CATEGORICAL:
            columns.append(_Categorical(field, settings))
        elif kind is ColumnKind.BOOLEAN:
            columns.append(_Boolean(field, settings))
        elif kind is ColumnKind.DATETIME:
            columns.append(_Datetime(field, settings))
        else:
            columns.append(_Column(field, settings))
    rows = 0
    with ThreadPoolExecutor(max_workers=threads or min(os.cpu_count() or 1, 8)) as pool:
        for part in plan.parts(None):
            rows += plan.rows(part)
            list(pool.map(lambda c, p: c.update(plan.read(p, c.name)), columns, [part] * len(columns)))
        again = [c for c in columns if isinstance(c, _Numeric) and c.needs_second_pass()]
        for c in again:
            c.start_second_pass()
        if again:
            for part in plan.parts([c.name for c in again]):
                list(pool.map(lambda c, p: c.second_pass(plan.read(p, c.name)), again, [part] * len(again)))
    return TableProfile(rows=rows, columns=tuple(c.finish() for c in columns))


def compare_schemas(a: TableProfile, b: TableProfile) -> SchemaDiff:
    """Columns added in ``b``, removed from ``a``, and kept with another type (``mloop data diff``)."""
    types_a, types_b = dict(a.schema), dict(b.schema)
    return SchemaDiff(
        added=tuple((n, t) for n, t in b.schema if n not in types_a),
        removed=tuple((n, t) for n, t in a.schema if n not in types_b),
        retyped=tuple((n, t, types_b[n]) for n, t in a.schema if n in types_b and types_b[n] != t),
    )
