"""Tables on disk: CSV/TSV, Parquet and JSON lines files, alone or as a folder of same-schema files.

The format is told by the suffix (``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``; CSV, TSV
and JSON lines may also end in ``.gz``, ``.bz2`` or ``.zst``). A folder is read as one table made of its
visible table files (names starting with ``.`` or ``_`` are skipped, like Spark's ``_SUCCESS``; with an
explicit ``format=`` every visible file is read as that format) in sorted path order. The files must have
the same column names; their types are unified where Arrow can promote them (``int64`` + ``double`` ->
``double``, ``null`` -> anything), otherwise reading fails with :class:`~mloop.errors.InvalidInput` naming
the files and the column.

Parquet's schema, row count and numeric ranges come from the file footers only, and :func:`row_group_spans`
with :func:`read_span` let callers read chunks of whole row groups column by column. For CSV and JSON lines,
:func:`read_table` infers types from whole files, while :func:`iter_batches` and :func:`table_schema`
infer them from the first MB of each file (:data:`INFER_BYTES`); a later value that does not fit raises
:class:`~mloop.errors.InvalidInput` naming the file and the column. In CSV, empty fields and ``NA``/``null``
are missing values, also in text columns; quoted values may span lines.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from mloop.datasets.formats import TableFormat, TableSource, table_files, table_format, visible_files
from mloop.errors import InvalidInput, MloopError, NotFound

__all__ = [
    "INFER_BYTES",
    "STREAM_BLOCK_BYTES",
    "RowGroupSpan",
    "TableFormat",
    "TableSource",
    "column_ranges",
    "is_table_dataset",
    "iter_batches",
    "read_span",
    "read_table",
    "row_count",
    "row_group_spans",
    "table_files",
    "table_format",
    "table_schema",
    "visible_files",
]

INFER_BYTES = 1 << 20  # CSV/JSON lines types are inferred from this much of each file when streaming
STREAM_BLOCK_BYTES = 16 << 20  # and then read this much at a time


@contextmanager
def _reading(path: Path, fmt: str, hint: str = "") -> Iterator[None]:
    try:
        yield
    except MloopError:
        raise
    except (pa.ArrowException, OSError) as exc:
        fix = hint or f"Check that it is a valid {fmt} file."
        raise InvalidInput(f"Cannot read '{path}' as {fmt}: {exc}. {fix}") from exc


def _delimiter(path: Path) -> str:
    return "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","


def _csv_options(
    path: Path, column_types: dict[str, Any] | None = None, columns: Sequence[str] | None = None, block: int = 0
) -> dict[str, Any]:
    return {
        "read_options": pcsv.ReadOptions(block_size=block) if block else pcsv.ReadOptions(),
        "parse_options": pcsv.ParseOptions(delimiter=_delimiter(path), newlines_in_values=True),
        "convert_options": pcsv.ConvertOptions(
            strings_can_be_null=True, column_types=column_types or {}, include_columns=list(columns or [])
        ),
    }


def _file_schema(path: Path, fmt: TableFormat) -> pa.Schema:
    with _reading(path, fmt):
        if fmt == "parquet":
            return pq.read_schema(path).remove_metadata()
        if fmt == "csv":
            return pcsv.open_csv(path, **_csv_options(path, block=INFER_BYTES)).schema
        return pjson.open_json(path, read_options=pjson.ReadOptions(block_size=INFER_BYTES)).schema


def _unify(schemas: Sequence[tuple[Path, pa.Schema]]) -> pa.Schema:
    first_path, first = schemas[0]
    for path, schema in schemas:
        dupes = sorted({n for n in schema.names if schema.names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"'{path}' has duplicate column names {dupes}; give every column a unique name.")
    ordered = [first]
    for path, schema in schemas[1:]:
        extra = sorted(set(schema.names) - set(first.names))
        lacking = sorted(set(first.names) - set(schema.names))
        if extra or lacking:
            raise InvalidInput(
                f"Table files disagree on columns: '{path}' has extra columns {extra} and lacks {lacking} "
                f"compared with '{first_path}'. Put files with different columns in separate datasets."
            )
        ordered.append(pa.schema([schema.field(n) for n in first.names]))
    if len(ordered) == 1:
        return first
    try:
        return pa.unify_schemas(ordered, promote_options="permissive")
    except (pa.ArrowException, TypeError):
        for name in first.names:
            types = {str(s.field(name).type): p for (p, _), s in zip(schemas, ordered, strict=True)}
            if len(types) > 1:
                (t1, p1), (t2, p2) = list(types.items())[:2]
                raise InvalidInput(
                    f"Column {name!r} is {t1} in '{p1}' but {t2} in '{p2}'; make the column's type the same in "
                    "every file of the dataset."
                ) from None
        raise


def table_schema(source: TableSource, format: str | None = None) -> pa.Schema:
    """The (unified) Arrow schema; Parquet reads only footers, CSV/JSON lines only their first MB."""
    files, fmt = table_files(source, format)
    return _unify([(f, _file_schema(f, fmt)) for f in files])


def row_count(source: TableSource, format: str | None = None) -> int:
    """Number of rows; free for Parquet (footers), one streaming pass over one column for CSV/JSON lines."""
    files, fmt = table_files(source, format)
    if fmt == "parquet":
        total = 0
        for f in files:
            with _reading(f, fmt):
                total += pq.ParquetFile(f).metadata.num_rows
        return total
    schema = table_schema(files, fmt)
    first = schema.names[:1]
    return sum(b.num_rows for b in iter_batches(files, fmt, columns=first, batch_rows=1 << 30))


def column_ranges(source: TableSource, format: str | None = None) -> dict[str, tuple[int | float, int | float]]:
    """Exact (min, max) of numeric columns from Parquet statistics, where every row group has them.

    Columns without complete statistics, with non-finite bounds, and all non-Parquet sources are left out.
    """
    files, fmt = table_files(source, format)
    if fmt != "parquet":
        return {}
    schema = table_schema(files, fmt)
    wanted = {f.name for f in schema if pa.types.is_integer(f.type) or f.type in (pa.float32(), pa.float64())}
    bounds: dict[str, tuple[int | float, int | float]] = {}
    for path in files:
        with _reading(path, fmt):
            meta = pq.ParquetFile(path).metadata
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                if group.num_rows == 0:
                    continue
                for j in range(group.num_columns):
                    chunk = group.column(j)
                    name = chunk.path_in_schema
                    if name not in wanted:
                        continue
                    stats = chunk.statistics
                    if stats is not None and stats.null_count == chunk.num_values:
                        continue  # only nulls: no bounds, none needed
                    if stats is None or not stats.has_min_max:
                        wanted.discard(name)
                        continue
                    lo, hi = stats.min, stats.max
                    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (lo, hi)):
                        wanted.discard(name)
                        continue
                    old = bounds.get(name)
                    bounds[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return {name: bounds[name] for name in schema.names if name in wanted and name in bounds}


def _cast_like(table: pa.Table, schema: pa.Schema) -> pa.Table:
    table = table.select(schema.names)
    return table if table.schema.equals(schema) else table.cast(schema)


def read_table(source: TableSource, format: str | None = None, *, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a file, a folder or a list of files into one Arrow table (files concatenated in order)."""
    files, fmt = table_files(source, format)
    tables: list[tuple[Path, pa.Table]] = []
    for f in files:
        with _reading(f, fmt):
            if fmt == "parquet":
                table = pq.read_table(f, columns=list(columns) if columns else None)
            elif fmt == "csv":
                table = pcsv.read_csv(f, **_csv_options(f, columns=columns))
            else:
                table = pjson.read_json(f)
                if columns:
                    table = table.select(list(columns))
        tables.append((f, table.replace_schema_metadata(None)))
    schema = _unify([(f, t.schema) for f, t in tables])
    with _reading(files[0], fmt, "Make the column types the same in every file."):
        return pa.concat_tables([_cast_like(t, schema) for _, t in tables])


@dataclass(frozen=True)
class RowGroupSpan:
    """Consecutive row groups of one Parquet file, read together as one chunk of ``rows`` rows."""

    path: Path
    row_groups: tuple[int, ...]
    rows: int
    metadata: Any = field(default=None, compare=False, repr=False)
    text_columns: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


def row_group_spans(
    source: TableSource, format: str | None = None, *, target_rows: int = 1 << 20
) -> list[RowGroupSpan]:
    """Split Parquet files into runs of whole row groups of about ``target_rows`` rows (footers only).

    A row group larger than ``target_rows`` makes a span of its own; spans never cross files.
    """
    files, fmt = table_files(source, format)
    if fmt != "parquet":
        raise InvalidInput(f"Row groups exist only in Parquet files, not {fmt}; use iter_batches() instead.")
    spans: list[RowGroupSpan] = []
    for path in files:
        with _reading(path, fmt):
            meta = pq.ParquetFile(path).metadata
            text = frozenset(f.name for f in meta.schema.to_arrow_schema() if _is_text(f.type))
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if groups and rows + n > target_rows:
                spans.append(RowGroupSpan(path, tuple(groups), rows, meta, text))
                groups, rows = [], 0
            groups.append(g)
            rows += n
        if groups:
            spans.append(RowGroupSpan(path, tuple(groups), rows, meta, text))
    return spans


def _is_text(arrow_type: Any) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _compatible(actual: Any, wanted: Any) -> bool:
    """Same type, or text read dictionary-encoded."""
    return bool(actual == wanted or (pa.types.is_dictionary(actual) and actual.value_type == wanted))


def read_span(
    span: RowGroupSpan, columns: Sequence[str], *, schema: pa.Schema | None = None, dictionary_strings: bool = False
) -> pa.Table:
    """Read ``columns`` of one span, single-threaded (callers parallelise over columns and spans).

    With ``schema`` (e.g. :func:`table_schema` of all the files) columns are cast to its types. With
    ``dictionary_strings`` text columns are read dictionary-encoded (and stay so).
    """
    with _reading(span.path, "parquet"):
        text = [c for c in columns if c in span.text_columns] if dictionary_strings else None
        pf = pq.ParquetFile(span.path, metadata=span.metadata, read_dictionary=text or None)
        table = pf.read_row_groups(list(span.row_groups), columns=list(columns), use_threads=False)
        if schema is None:
            return table
        arrays = []
        for name in columns:
            col, wanted = table.column(name), schema.field(name).type
            arrays.append(col if _compatible(col.type, wanted) else col.cast(wanted))
        return pa.table(arrays, names=list(columns))


def _batches_of(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, max(batch.num_rows, 1), rows):
        part = batch.slice(start, rows)
        if part.num_rows:
            yield part


def _align(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Reorder and cast ``batch`` to ``schema``, keeping dictionary-encoded text as it is."""
    arrays = []
    for target in schema:
        arr = batch.column(batch.schema.get_field_index(target.name))
        arrays.append(arr if _compatible(arr.type, target.type) else arr.cast(target.type))
    return pa.RecordBatch.from_arrays(arrays, names=schema.names)


def iter_batches(
    source: TableSource,
    format: str | None = None,
    *,
    batch_rows: int = 65_536,
    columns: Sequence[str] | None = None,
    dictionary_strings: bool = False,
    block_size: int = STREAM_BLOCK_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Stream record batches of at most ``batch_rows`` rows, file after file, in the unified schema.

    ``columns`` selects (and orders) columns. ``dictionary_strings`` reads Parquet text columns
    dictionary-encoded (much faster to count; the values are unchanged); it is ignored for CSV/JSON lines.
    """
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}.")
    files, fmt = table_files(source, format)
    schema = _unify([(f, _file_schema(f, fmt)) for f in files])
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise NotFound(f"The table has no columns {unknown}; its columns are {schema.names}.")
        schema = pa.schema([schema.field(c) for c in columns])
    # A column that was empty in the first block is read as text when streaming.
    stream_types = {f.name: pa.string() if pa.types.is_null(f.type) else f.type for f in schema}
    stream_schema = pa.schema([pa.field(n, t) for n, t in stream_types.items()])
    hint = (
        f"Types were inferred from the first {INFER_BYTES >> 20} MB; make the column's values consistent "
        "or convert the file to Parquet."
    )
    for path in files:
        with _reading(path, fmt, hint):
            if fmt == "parquet":
                text = [f.name for f in schema if _is_text(f.type)]
                pf = pq.ParquetFile(path, read_dictionary=text if dictionary_strings else None)
                reader = pf.iter_batches(batch_size=batch_rows, columns=schema.names, use_threads=True)
                target = schema
            elif fmt == "csv":
                opts = _csv_options(path, dict(stream_types), schema.names, block_size)
                reader = pcsv.open_csv(path, **opts)
                target = stream_schema
            else:
                parse = pjson.ParseOptions(explicit_schema=stream_schema, unexpected_field_behavior="ignore")
                reader = pjson.open_json(
                    path, read_options=pjson.ReadOptions(block_size=block_size), parse_options=parse
                )
                target = stream_schema
            for batch in reader:
                yield from _batches_of(_align(batch, target), batch_rows)


def is_table_dataset(root: str | os.PathLike[str], files: Sequence[str]) -> TableFormat | None:
    """The table format when ``root`` is a table file, or a folder whose visible ``files`` (paths relative to
    ``root``) are all of one table format with the same columns; otherwise None. Reads only schemas."""
    base = Path(root)
    paths = [base] if base.is_file() else visible_files(base, files)
    formats = {table_format(p) for p in paths}
    if len(formats) != 1:
        return None
    fmt = formats.pop()
    if fmt is None:
        return None
    try:
        table_schema(paths, fmt)
    except MloopError:
        return None
    return fmt
