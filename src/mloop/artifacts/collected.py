"""Collected traffic under the artifact root: the Parquet layout of requests and feedback, publishing a part
whole, and unifying the tables of different model versions.

Layout, under the workspace's artifact root (beside, never inside, the content-addressed ``blobs/``)::

    collected/requests/endpoint=<name>/hour=2026-12-03T15/part-<time-ordered id>.parquet
    collected/feedback/endpoint=<name>/hour=2026-12-03T16/part-<time-ordered id>.parquet

Partitions are Hive style (``key=value`` folders), so pyarrow datasets, DuckDB, Spark or pandas read them as
they are; a request row's hour is the UTC hour it was scored in, a feedback row's the hour it arrived in. Part
names sort by the time they were written. A file is published whole: on a local disk it is written to a hidden
``.part-….tmp`` name in the same folder, fsynced and renamed (readers skip names starting with ``.``); on an
object store (any fsspec URL, e.g. S3) it is one ``put`` of the finished bytes, and object stores never show a
half-written object. A crash can leave a hidden temporary file behind, never a visible partial part.

This module sits low (beside the artifact store) because three packages share the layout: serving's collector
writes it (:mod:`mloop.serving.collector`), deployments read it back (:mod:`mloop.artifacts.collected_read`), and
monitoring reads it without importing serving.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mloop.entities.ids import new_id

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem

__all__ = [
    "COLLECTED_DIR",
    "FEEDBACK",
    "INPUT_PREFIX",
    "REQUESTS",
    "CollectedRoot",
    "check_endpoint_name",
    "concat_unified",
    "hour_of",
    "hour_text",
    "partition_dir",
]

COLLECTED_DIR = "collected"
REQUESTS, FEEDBACK = "requests", "feedback"
INPUT_PREFIX = "input."
_US_PER_HOUR = 3_600_000_000


def check_endpoint_name(endpoint: str) -> None:
    """An endpoint name that can name a partition folder, or InvalidInput saying what is allowed."""
    import re

    from mloop.errors import InvalidInput

    if not isinstance(endpoint, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", endpoint):
        raise InvalidInput(f"Endpoint name {endpoint!r} cannot name a collected partition; use letters, digits, "
                           "'.', '_' and '-' (starting with a letter or digit).")  # fmt: skip


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
        dictionary = [name for name in ("endpoint", "model", "role") if name in table.column_names]
        pq.write_table(table, sink, compression="snappy", use_dictionary=dictionary)  # half zstd's CPU
        key = f"{partition_dir(kind, endpoint, hour)}/part-{new_id()}.parquet"
        self.write(key, sink.getvalue())
        return key


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
