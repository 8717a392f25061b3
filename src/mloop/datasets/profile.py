"""Profiling tables: schema, row count and per-column statistics as a :class:`~mloop.entities.profile.TableProfile`.

:func:`profile_table` streams the table in chunks of ``chunk_rows`` rows and merges per-chunk results. Parquet
is read column by column (whole row groups, dictionary-encoded text), so reading and profiling share the
threads and memory stays at a few columns' worth; the columns of a chunk run in parallel threads (Arrow and
numpy release the GIL).

* count, missing, min, max, histogram counts, top values and (below ``max_distinct``) cardinality are exact
  and do not depend on how the rows are chunked; mean and standard deviation are merged with Chan's formula
  (equal to a one-shot computation up to floating-point rounding);
* quantiles are exact when the rows arrive in one chunk (up to ``chunk_rows``, 1,048,576 by default),
  otherwise within the rank bound of :class:`~mloop.datasets.sketches.QuantileSketch` (+-N/4096 ranks,
  i.e. 0.025 % of the rows, with the default ``sketch_points``);
* histograms need the final range before counting: Parquet footers usually hold it (min/max statistics),
  in-memory tables get it from one cheap min/max scan, and otherwise the first chunk's range is tried; when
  the data turns out to reach beyond it, numeric columns are read a second time for their histograms only;
* a text column with more than ``max_distinct`` distinct values switches to approximate mode (flagged on
  the column): only the ``max_distinct`` most frequent values are kept (so top counts are lower bounds for
  values that were evicted and came back) and cardinality is estimated with a k-minimum-values sketch
  (relative error ~0.8 %).

CSV and JSON lines up to ``IN_MEMORY_BYTES`` (256 MB) in all are read whole, which gives the most robust type
inference; larger files are streamed (types from their first MB, see :mod:`mloop.datasets.tables`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mloop.datasets import tables
from mloop.datasets.columns import ColumnAccumulator, ColumnSettings, accumulator
from mloop.entities.profile import SchemaDiff, TableProfile
from mloop.errors import InvalidInput

__all__ = ["compare_schemas", "profile_table"]

IN_MEMORY_BYTES = 256 << 20


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


def _check_unique(names: Sequence[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"The table has duplicate column names {dupes}; give every column a unique name.")


def _table_plan(table: Any, chunk_rows: int) -> _Plan:
    _check_unique(table.schema.names)

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
                f"Cannot convert the DataFrame to Arrow: {exc}. Give columns unique names and each column one "
                "type, e.g. df[col] = df[col].astype(str)."
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
    """Profile a table file or folder (CSV/TSV, Parquet, JSON lines), a list of files, a pyarrow Table or
    RecordBatch, or a pandas DataFrame. See the module docstring for what is exact and what is estimated.

    ``format`` overrides the suffix; ``bins`` is the number of equal-width histogram bins, ``top_k`` how many
    most frequent values to keep per text column, ``max_distinct`` the distinct-value count beyond which text
    columns become approximate, ``chunk_rows`` the rows per chunk (memory vs. exactness of quantiles),
    ``sketch_points`` the quantile summary size per chunk and ``threads`` the worker threads (default: CPUs).
    """
    _check_positive(bins=bins, top_k=top_k, max_distinct=max_distinct, chunk_rows=chunk_rows)
    _check_positive(sketch_points=sketch_points, threads=threads or 1)
    plan = _plan(source, format, chunk_rows)
    _check_unique(plan.schema.names)
    settings = ColumnSettings(bins, top_k, max_distinct, sketch_points)
    columns = [accumulator(f, settings, plan.ranges.get(f.name)) for f in plan.schema]
    rows = 0
    with ThreadPoolExecutor(max_workers=threads or min(os.cpu_count() or 1, 8)) as pool:
        for part in plan.parts(None):
            rows += plan.rows(part)
            list(pool.map(lambda c, p: c.update(plan.read(p, c.name)), columns, [part] * len(columns)))
        again: list[ColumnAccumulator] = [c for c in columns if c.needs_second_pass()]
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
