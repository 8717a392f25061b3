"""Reading collected requests back (``mloop deploy data ENDPOINT --since 1h [--with-feedback]``, monitoring).

:func:`read_collected` opens only the hour partitions in the asked range
(``collected/requests/endpoint=<name>/hour=<UTC hour>/``, written by :mod:`mloop.serving.collector`) as one
pyarrow dataset, filters rows by time and role, and returns them sorted by time, request id and row. Files
written by different model versions may have different input columns: their schemas are unified (a column
missing from a file is null there; int and float widen to float; a column that is a number in one file and text
in another is read as text). Hidden ``.part-….tmp`` files (a write in progress or a crash) are never read.

``with_feedback`` adds ``ground_truth`` and ``ground_truth_ts``: the latest feedback per ``(request_id, row)``,
searched in the feedback partitions from the start of the range on (feedback arrives after the request), left
joined (requests without feedback keep nulls).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected import COLLECTED_DIR, FEEDBACK, REQUESTS, CollectedRoot, concat_unified, hour_text
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem


__all__ = ["collected_files", "first_collected", "parse_since", "read_collected"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_since(text: str | datetime, *, now: datetime | None = None) -> datetime:
    """A UTC time from a duration back from ``now`` (``90s``, ``30m``, ``1h``, ``2d``, ``1w``, or combined like
    ``1h30m``) or an ISO 8601 time (``2026-12-03T15:00``; no zone means UTC)."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    raw = str(text).strip().lower()
    parts = _DURATION.findall(raw)
    if parts and _DURATION.sub("", raw).strip() == "":
        seconds = sum(float(n) * _UNITS[unit] for n, unit in parts)
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"Cannot read the time {text!r}; give a duration back from now such as 30m, 1h, 2d (units s, m, h, "
            "d, w) or an ISO time such as 2026-12-03T15:00 (UTC unless it has a zone)."
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _hours(fs: AbstractFileSystem, folder: str, first: str | None, last: str | None) -> list[str]:
    """The ``hour=`` folders under ``folder`` within ``[first, last]`` (partition values compare as text)."""
    fs.invalidate_cache(folder)  # object stores' listings are cached: a long-lived reader would miss new parts
    try:
        names = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        value = str(name).rstrip("/").rsplit("/", 1)[-1]
        if not value.startswith("hour="):
            continue
        hour = value[len("hour=") :]
        if (first is None or hour >= first) and (last is None or hour <= last):
            out.append(str(name).rstrip("/"))
    return sorted(out)


def _files(fs: AbstractFileSystem, folders: list[str]) -> list[str]:
    from mloop.artifacts.compaction import visible_parts

    files = []
    for folder in folders:
        files.extend(visible_parts(fs, folder))  # honours compaction markers: no row twice, none missing
    return sorted(files)


def _read(fs: AbstractFileSystem, files: list[str], filter: Any = None) -> pa.Table | None:
    """The rows of ``files`` (schemas unified), or ``None`` without files."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not files:
        return None
    dataset = ds.dataset(files, filesystem=fs, format="parquet")
    fragments = list(dataset.get_fragments())
    try:
        schema = pa.unify_schemas([f.physical_schema for f in fragments], promote_options="permissive")
        return ds.dataset(files, schema=schema, filesystem=fs, format="parquet").to_table(filter=filter)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # e.g. number here, text there
        return concat_unified([f.to_table(filter=filter) for f in fragments])


def _timestamp(when: datetime) -> pa.Scalar:
    import pyarrow as pa

    return pa.scalar(when.astimezone(UTC), type=pa.timestamp("us", tz="UTC"))


def read_collected(
    root: str, endpoint: str, *, since: str | datetime | None = None, until: str | datetime | None = None,
    with_feedback: bool = False, role: str | None = None, sort: bool = True,
) -> pa.Table:  # fmt: skip
    """The rows ``endpoint`` collected under the artifact root ``root`` with ``since <= ts < until`` (either
    open; a duration like ``1h`` or an ISO time, see :func:`parse_since`), of one ``role`` (``live`` or
    ``shadow``) or all, oldest first (in any order with ``sort=False``)."""
    import pyarrow.compute as pc

    start = None if since is None else parse_since(since)
    end = None if until is None else parse_since(until)
    if start is not None and end is not None and end <= start:
        raise InvalidInput(f"The range is empty: until ({end.isoformat()}) is not after since ({start.isoformat()}).")
    if role is not None and role not in ("live", "shadow"):
        raise InvalidInput(f"role must be 'live' or 'shadow' (or omitted for both), got {role!r}.")
    fs, base = CollectedRoot(root).filesystem()
    first = None if start is None else hour_text(int(start.timestamp()) // 3600)
    last = None if end is None else hour_text(int(end.timestamp()) // 3600)
    folder = f"{base}/{COLLECTED_DIR}/{REQUESTS}/endpoint={endpoint}"
    conditions = []
    if start is not None:
        conditions.append(pc.field("ts") >= _timestamp(start))
    if end is not None:
        conditions.append(pc.field("ts") < _timestamp(end))
    if role is not None:
        conditions.append(pc.field("role") == role)
    condition = None
    for c in conditions:
        condition = c if condition is None else condition & c
    for attempt in range(3):  # a compaction may delete parts between listing and reading: list again
        try:
            table = _read(fs, _files(fs, _hours(fs, folder, first, last)), condition)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    if table is None:
        table = _empty()
    if sort:  # monitoring's windows need no order: sorting millions of rows by request id is their largest cost
        table = table.sort_by([("ts", "ascending"), ("request_id", "ascending"), ("row", "ascending")])
    if not with_feedback:
        return table
    fb_folder = f"{base}/{COLLECTED_DIR}/{FEEDBACK}/endpoint={endpoint}"
    feedback = _read(fs, _files(fs, _hours(fs, fb_folder, first, None)))
    return _join_feedback(table, feedback)


def _empty() -> pa.Table:
    import pyarrow as pa

    return pa.table({
        "request_id": pa.array([], pa.string()), "row": pa.array([], pa.int64()),
        "endpoint": pa.array([], pa.string()), "model": pa.array([], pa.string()),
        "role": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("us", tz="UTC")),
        "latency_ms": pa.array([], pa.float64()), "status": pa.array([], pa.int32()),
    })  # fmt: skip


def _join_feedback(table: pa.Table, feedback: pa.Table | None) -> pa.Table:
    """``table`` with ``ground_truth`` and ``ground_truth_ts``: the latest feedback per (request_id, row)."""
    import numpy as np
    import pyarrow as pa

    if feedback is None or feedback.num_rows == 0:
        nulls = pa.nulls(table.num_rows)
        return table.append_column("ground_truth", nulls).append_column(
            "ground_truth_ts", pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC"))
        )
    feedback = feedback.sort_by([("ts", "ascending")])
    keys = feedback.select(["request_id", "row"]).append_column("j", pa.array(np.arange(feedback.num_rows)))
    latest = keys.group_by(["request_id", "row"], use_threads=False).aggregate([("j", "max")])  # latest arrival
    left = table.select(["request_id", "row"]).append_column("i", pa.array(np.arange(table.num_rows)))
    joined = left.join(latest, ["request_id", "row"], join_type="left outer").sort_by("i")
    take = joined.column("j_max")
    return table.append_column("ground_truth", feedback.column("ground_truth").take(take)).append_column(
        "ground_truth_ts", feedback.column("ts").take(take)
    )


def first_collected(root: str, endpoint: str, after: datetime | None = None) -> datetime | None:
    """The start of the earliest hour (at or after ``after``'s hour) in which ``endpoint`` collected requests;
    None when there is none."""
    fs, base = CollectedRoot(root).filesystem()
    first = None if after is None else hour_text(int(after.timestamp()) // 3600)
    for folder in _hours(fs, f"{base}/{COLLECTED_DIR}/{REQUESTS}/endpoint={endpoint}", first, None):
        if _files(fs, [folder]):
            return datetime.strptime(folder.rsplit("hour=", 1)[1], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    return None


def collected_files(root: str, kind: str, endpoint: str, first: int, last: int | None) -> list[tuple[int, str]]:
    """``(hour, path)`` of every visible part (compaction honoured) of ``endpoint``'s ``kind`` (``requests`` or
    ``feedback``) in the hours ``first`` .. ``last`` (hour buckets, ``last`` None: open), oldest hour first."""
    fs, base = CollectedRoot(root).filesystem()
    folders = _hours(fs, f"{base}/{COLLECTED_DIR}/{kind}/endpoint={endpoint}", hour_text(first),
                     None if last is None else hour_text(last))  # fmt: skip
    out: list[tuple[int, str]] = []
    for folder in folders:
        hour = int(datetime.strptime(folder.rsplit("hour=", 1)[1], "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp())
        out.extend((hour // 3600, path) for path in _files(fs, [folder]))
    return out
