"""Collected files: the Parquet layout of collected requests and feedback, building their tables, writing them.

Layout, under the workspace's artifact root (beside, never inside, the content-addressed ``blobs/``)::

    collected/requests/endpoint=<name>/hour=2026-12-03T15/part-<time-ordered id>.parquet
    collected/feedback/endpoint=<name>/hour=2026-12-03T16/part-<time-ordered id>.parquet

Partitions are Hive style (``key=value`` folders), so pyarrow datasets, DuckDB, Spark or pandas read them as
they are; a request row's hour is the UTC hour it was scored in, a feedback row's the hour it arrived in. Part
names sort by the time they were written. A file is published whole: on a local disk it is written to a hidden
``.part-….tmp`` name in the same folder, fsynced and renamed (readers skip names starting with ``.``); on an
object store (any fsspec URL, e.g. S3) it is one ``put`` of the finished bytes, and object stores never show a
half-written object. A crash can leave a hidden temporary file behind, never a visible partial part.

:func:`requests_table` turns buffered records (per-request numpy arrays or DataFrames) into one Arrow table with
vectorised concatenation: nothing here builds a Python object per row.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from mloop.entities.ids import new_id

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem

__all__ = [
    "COLLECTED_DIR",
    "FEEDBACK",
    "REQUESTS",
    "CollectedRoot",
    "Record",
    "concat_unified",
    "feedback_table",
    "hour_of",
    "hour_text",
    "partition_dir",
    "requests_table",
]

COLLECTED_DIR = "collected"
REQUESTS, FEEDBACK = "requests", "feedback"
INPUT_PREFIX = "input."
_US_PER_HOUR = 3_600_000_000


class Record(NamedTuple):
    """One buffered request (or streaming micro-batch): ``ids`` is one request id for all rows, or one per row."""

    ts_us: int
    ids: str | Sequence[str]
    model: str
    role: str
    data: Any  # 2-D numpy array, DataFrame, or None (a failed request: one row of nulls)
    columns: Sequence[str] | None  # the input names of a bare matrix (signature order)
    outputs: Any  # predictions (1-D), probabilities (2-D), or None
    proba: bool
    latency_ms: float
    status: int
    rows: int


def hour_of(ts_us: int) -> int:
    """The hour bucket (hours since the epoch, UTC) of a timestamp in microseconds."""
    return ts_us // _US_PER_HOUR


def hour_text(hour: int) -> str:
    """``2026-12-03T15``: the partition value of an hour bucket."""
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H")


def partition_dir(kind: str, endpoint: str, hour: int) -> str:
    """The store-relative folder of one endpoint's hour, e.g. ``collected/requests/endpoint=churn/hour=…``."""
    return f"{COLLECTED_DIR}/{kind}/endpoint={endpoint}/hour={hour_text(hour)}"


class CollectedRoot:
    """Where collected files go: the artifact store's root, a local folder (plain ``os`` calls) or any fsspec
    file system (one ``put`` per file)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/") or uri
        self.local: str | None = None
        self.fs: AbstractFileSystem | None = None
        self.root = ""
        path = uri[len("file://") :] if uri.startswith("file://") else uri if "://" not in uri else None
        if path is not None:
            self.local = os.path.abspath(os.path.expanduser(path))
            return
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        fs, root = fsspec.core.url_to_fs(uri)
        if isinstance(fs, LocalFileSystem):
            self.local = os.path.abspath(root)
        else:
            self.fs, self.root = fs, root.rstrip("/")

    def filesystem(self) -> tuple[AbstractFileSystem, str]:
        """An fsspec file system and the root path on it (readers use it for local roots too)."""
        if self.fs is not None:
            return self.fs, self.root
        from fsspec.implementations.local import LocalFileSystem

        assert self.local is not None
        return LocalFileSystem(), self.local

    def write(self, key: str, data: bytes) -> None:
        """Publish ``data`` at the store-relative ``key`` whole (see the module docstring)."""
        if self.fs is not None:
            path = f"{self.root}/{key}"
            with contextlib.suppress(OSError):
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(path, data)
            return
        assert self.local is not None
        final = os.path.join(self.local, *key.split("/"))
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".part-{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, final)

    def write_table(self, kind: str, endpoint: str, hour: int, table: pa.Table) -> str:
        """Write ``table`` as a new part of ``endpoint``'s ``hour``; returns its key."""
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        key = f"{partition_dir(kind, endpoint, hour)}/part-{new_id()}.parquet"
        self.write(key, sink.getvalue())
        return key


def _timestamps(values: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(values, type=pa.timestamp("us", tz="UTC"))


def _outputs(records: Sequence[Record], proba: bool) -> pa.Array | None:
    """The ``prediction`` (or ``probabilities``) column of a group of records, or ``None`` if all are null."""
    import numpy as np
    import pyarrow as pa

    parts = [r.outputs for r in records]
    if all(p is None for p in parts):
        return None
    if all(isinstance(p, np.ndarray) and p.dtype != object for p in parts) and len({p.ndim for p in parts}) == 1:
        flat = np.concatenate(parts)
        if flat.ndim == 1:
            return pa.array(flat)
        width = int(flat.shape[1]) if flat.ndim == 2 else 0
        if width > 0:  # one list per row: probabilities (list<double>) or a multi-output prediction
            values = pa.array(np.ascontiguousarray(flat, dtype=np.float64 if proba else None).reshape(-1))
            offsets = np.arange(0, int(flat.shape[0]) * width + 1, width, dtype=np.int32)
            return pa.ListArray.from_arrays(pa.array(offsets), values)
    values_list: list[Any] = []
    for record, part in zip(records, parts, strict=True):
        values_list.extend([None] * record.rows if part is None else np.asarray(part, dtype=object).tolist())
    try:
        return pa.array(values_list)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them readable as text
        return pa.array([None if v is None else str(v) for v in values_list], pa.string())


def _input_columns(records: Sequence[Record]) -> dict[str, Any]:
    """``input.<name>`` columns of a group of records whose inputs have the same layout."""
    import numpy as np

    first = records[0].data
    if first is None:
        return {}
    if isinstance(first, np.ndarray):
        matrix = np.concatenate([r.data for r in records]) if len(records) > 1 else first
        if matrix.ndim == 1:
            matrix = matrix.reshape(-1, 1)
        names = records[0].columns or [str(j) for j in range(matrix.shape[1])]
        return {f"{INPUT_PREFIX}{n}": _column(matrix[:, j]) for j, n in enumerate(names)}
    import pandas as pd

    frame = pd.concat([r.data for r in records], ignore_index=True) if len(records) > 1 else first
    return {f"{INPUT_PREFIX}{n}": _column(frame[n].to_numpy()) for n in frame.columns}


def _column(values: Any) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column of mixed values: stored as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _layout(record: Record) -> tuple[Any, ...]:
    import numpy as np

    data = record.data
    if data is None:
        shape: tuple[Any, ...] = ("none",)
    elif isinstance(data, np.ndarray):
        shape = ("matrix", tuple(record.columns or ()), data.shape[1] if data.ndim == 2 else 1, data.dtype.str)
    else:
        shape = ("frame", tuple(map(str, data.columns)), tuple(str(t) for t in data.dtypes))
    return (*shape, record.proba)


def _group_table(endpoint: str, records: Sequence[Record]) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    counts = np.fromiter((r.rows for r in records), np.int64, len(records))
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    row = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    if all(isinstance(r.ids, str) for r in records):
        ids = np.repeat(np.array([r.ids for r in records], dtype=object), counts)
    else:
        ids = np.concatenate([np.repeat(np.array([r.ids], dtype=object), r.rows) if isinstance(r.ids, str)
                              else np.asarray(r.ids, dtype=object) for r in records])  # fmt: skip
        row = np.where(np.repeat([isinstance(r.ids, str) for r in records], counts), row, 0)

    def repeated(values: list[Any], dtype: Any) -> Any:
        return np.repeat(np.array(values, dtype=dtype), counts)

    columns: dict[str, Any] = {
        "request_id": pa.array(ids, pa.string()),
        "row": pa.array(row),
        "endpoint": pa.array(np.full(total, endpoint, dtype=object), pa.string()),
        "model": pa.array(repeated([r.model for r in records], object), pa.string()),
        "role": pa.array(repeated([r.role for r in records], object), pa.string()),
        "ts": _timestamps(repeated([r.ts_us for r in records], np.int64)),
        "latency_ms": pa.array(repeated([r.latency_ms for r in records], np.float64)),
        "status": pa.array(repeated([r.status for r in records], np.int32)),
    }
    columns.update(_input_columns(records))
    proba = records[0].proba
    outputs = _outputs(records, proba)
    if outputs is not None:
        columns["probabilities" if proba else "prediction"] = outputs
    return pa.table(columns)


def requests_table(endpoint: str, records: Sequence[Record]) -> pa.Table:
    """One table of every row of ``records`` (records with different input layouts or model versions are
    built apart and unified: a column missing from some rows is null there)."""

    groups: dict[tuple[Any, ...], list[Record]] = {}
    for record in records:
        groups.setdefault(_layout(record), []).append(record)
    return concat_unified([_group_table(endpoint, group) for group in groups.values()])


def concat_unified(tables: Sequence[pa.Table]) -> pa.Table:
    """The rows of ``tables`` in one table: missing columns are null, int and float widen to float, and a column
    whose types cannot be reconciled (a number here, text there) becomes text."""
    import pyarrow as pa

    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a column that is a number here and text there
        return pa.concat_tables([_as_text(t, tables) for t in tables], promote_options="permissive")


def _as_text(table: pa.Table, tables: Sequence[pa.Table]) -> pa.Table:
    """``table`` with every column whose type differs between ``tables`` cast to text."""
    import pyarrow as pa

    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for field in t.schema:
            types.setdefault(field.name, set()).add(field.type)
    for i, field in enumerate(table.schema):
        if len(types[field.name] - {pa.null()}) > 1:
            values = [None if v is None else str(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(values, pa.string()))
    return table


def feedback_table(endpoint: str, ids: Sequence[str], rows: Sequence[int], values: Sequence[Any],
                   ts_us: Sequence[int]) -> pa.Table:  # fmt: skip
    """The feedback rows: ``request_id``, ``row``, ``ground_truth``, ``ts`` (when it arrived), ``endpoint``."""
    import numpy as np
    import pyarrow as pa

    try:
        truth = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one flush: text
        truth = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table({
        "request_id": pa.array(ids, pa.string()),
        "row": pa.array(np.asarray(rows, dtype=np.int64)),
        "ground_truth": truth,
        "ts": _timestamps(np.asarray(ts_us, dtype=np.int64)),
        "endpoint": pa.array([endpoint] * len(ids), pa.string()),
    })  # fmt: skip
