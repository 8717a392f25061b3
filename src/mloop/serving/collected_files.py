"""Collected files: building the tables of collected requests and feedback from the collector's records.

The layout under the artifact root, publishing a part whole and unifying tables live in
:mod:`mloop.artifacts.collected` (re-exported here), shared with the readers in deployments and monitoring.

:func:`requests_table` turns buffered records (per-request numpy arrays or DataFrames) into one Arrow table with
vectorised concatenation: nothing here builds a Python object per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected import (
    COLLECTED_DIR,
    FEEDBACK,
    INPUT_PREFIX,
    REQUESTS,
    CollectedRoot,
    concat_unified,
    hour_of,
    hour_text,
    partition_dir,
)

if TYPE_CHECKING:
    import pyarrow as pa

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
    "make_record",
    "partition_dir",
    "requests_table",
    "split_by_hour",
]


Record = tuple[Any, ...]
"""One buffered request (or streaming micro-batch), a plain tuple indexed by the constants below: ``IDS`` is one
request id for all rows or one per row; ``DATA`` a 2-D numpy array, a DataFrame, or ``None`` (a failed
request: one row of nulls); ``COLUMNS`` the input names of a bare matrix (a tuple, signature order);
``OUTPUTS`` predictions (1-D), probabilities (2-D, ``PROBA``) or ``None``. A plain tuple, not a NamedTuple:
the garbage collector stops tracking exact tuples of untracked values, so a full buffer costs full collections
nothing (a NamedTuple stays tracked, and 100,000 of them made every full collection take 100+ ms)."""
TS, IDS, MODEL, ROLE, DATA, COLUMNS, OUTPUTS, PROBA, LATENCY_MS, STATUS, ROWS = range(11)


def make_record(
    ts_us: int, ids: str | Sequence[str], model: str, role: str, data: Any, columns: Sequence[str] | None,
    outputs: Any, proba: bool, latency_ms: float, status: int, rows: int,
) -> Record:  # fmt: skip
    """A :data:`Record` (the collector builds the tuple inline on its hot path)."""
    names = None if columns is None else tuple(columns)
    return (ts_us, ids, model, role, data, names, outputs, proba, latency_ms, status, rows)


def _timestamps(values: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(values, type=pa.timestamp("us", tz="UTC"))


def _outputs(parts: Sequence[Any], counts: Sequence[int], proba: bool) -> pa.Array | None:
    """The ``prediction`` (or ``probabilities``) column of a group of records, or ``None`` if all are null."""
    import numpy as np
    import pyarrow as pa

    try:
        flat = np.concatenate(parts)  # the common case: every part a numeric array of the same rank
    except (TypeError, ValueError):  # None (failed requests) or lists of different shapes
        flat = None
    if flat is not None and flat.dtype != object and flat.ndim == 1:
        return pa.array(flat)
    if flat is not None and flat.dtype != object and flat.ndim == 2 and flat.shape[1] > 0:
        width = int(flat.shape[1])  # one list per row: probabilities (list<double>) or a multi-output prediction
        values = pa.array(np.ascontiguousarray(flat, dtype=np.float64 if proba else None).reshape(-1))
        offsets = np.arange(0, int(flat.shape[0]) * width + 1, width, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), values)
    values_list: list[Any] = []
    for part, n in zip(parts, counts, strict=True):
        values_list.extend([None] * n if part is None else np.asarray(part, dtype=object).tolist())
    if all(v is None for v in values_list):
        return None
    try:
        return pa.array(values_list)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them readable as text
        return pa.array([None if v is None else str(v) for v in values_list], pa.string())


def _input_columns(first: Record, data: Sequence[Any]) -> dict[str, Any]:
    """``input.<name>`` columns of a group of records whose inputs have the same layout."""
    import numpy as np

    if first[DATA] is None:
        return {}
    if isinstance(first[DATA], np.ndarray):
        matrix = np.concatenate(data) if len(data) > 1 else first[DATA]
        if matrix.ndim == 1:
            matrix = matrix.reshape(-1, 1)
        names = first[COLUMNS] or [str(j) for j in range(matrix.shape[1])]
        return {f"{INPUT_PREFIX}{n}": _column(matrix[:, j]) for j, n in enumerate(names)}
    import pandas as pd

    frame = pd.concat(data, ignore_index=True) if len(data) > 1 else first[DATA]
    return {f"{INPUT_PREFIX}{n}": _column(frame[n].to_numpy()) for n in frame.columns}


def _column(values: Any) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column of mixed values: stored as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _groups(records: Sequence[Record]) -> list[list[Record]]:
    """Records split by model version, role, output kind and input layout (one Python step per record)."""
    import numpy as np

    ndarray = np.ndarray
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for r in records:
        data = r[DATA]
        if data.__class__ is ndarray:
            key: tuple[Any, ...] = (r[MODEL], r[ROLE], r[PROBA], r[COLUMNS], data.shape[1:], data.dtype.kind)
        elif data is None:
            key = (r[MODEL], r[ROLE], r[PROBA])
        else:  # a DataFrame
            key = (r[MODEL], r[ROLE], r[PROBA], tuple(map(str, data.columns)), tuple(map(str, data.dtypes)))
        group = groups.get(key)
        if group is None:
            groups[key] = [r]
        else:
            group.append(r)
    return list(groups.values())


def _group_table(endpoint: str, records: Sequence[Record], fields: list[tuple[Any, ...]] | None = None) -> pa.Table:
    """The rows of records with one model, role and layout: fields transposed in one C-level step (or given
    transposed), then concatenated or repeated column by column."""
    import numpy as np
    import pyarrow as pa

    first, n = records[0], len(records)
    ts_us, ids, _, _, data, _, outputs, _, latency, status, rows = fields or list(zip(*records, strict=True))
    counts = np.array(rows, dtype=np.int64)
    total = int(counts.sum())
    one_each = total == n

    def each_row(values: Sequence[Any], dtype: Any) -> Any:
        arr = np.array(values, dtype=dtype)
        return arr if one_each else np.repeat(arr, counts)

    if one_each:
        row = np.zeros(n, dtype=np.int64)
    else:
        row = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    if all(i.__class__ is str for i in ids):
        id_column = pa.array(ids if one_each else np.repeat(np.array(ids, dtype=object), counts), pa.string())
    else:  # streaming batches: one id per row, each row its own request (row 0)
        per_row = [i.__class__ is not str for i in ids]
        parts = [np.asarray(i, dtype=object) if many else np.repeat(np.array([i], dtype=object), k)
                 for i, many, k in zip(ids, per_row, rows, strict=True)]  # fmt: skip
        id_column = pa.array(np.concatenate(parts), pa.string())
        row = np.where(np.repeat(np.array(per_row), counts), 0, row)
    columns: dict[str, Any] = {
        "request_id": id_column,
        "row": pa.array(row),
        "endpoint": pa.repeat(pa.scalar(endpoint, pa.string()), total),
        "model": pa.repeat(pa.scalar(first[MODEL], pa.string()), total),
        "role": pa.repeat(pa.scalar(first[ROLE], pa.string()), total),
        "ts": _timestamps(each_row(ts_us, np.int64)),
        "latency_ms": pa.array(each_row(latency, np.float64)),
        "status": pa.array(each_row(status, np.int32)),
    }
    columns.update(_input_columns(first, data))
    column = _outputs(outputs, rows, first[PROBA])
    if column is not None:
        columns["probabilities" if first[PROBA] else "prediction"] = column
    return pa.table(columns)


def requests_table(endpoint: str, records: Sequence[Record]) -> pa.Table:
    """One table of every row of ``records`` (records with different input layouts or model versions are
    built apart and unified: a column missing from some rows is null there)."""
    import numpy as np

    fields = list(zip(*records, strict=True))
    _, _, models, roles, data, columns, _, probas, _, _, _ = fields
    same = len(set(models)) == len(set(roles)) == len(set(probas)) == len(set(map(id, columns))) == 1
    if same and set(map(type, data)) == {np.ndarray}:  # the usual flush: one model's matrices, checked in C
        try:
            return _group_table(endpoint, records, fields)
        except ValueError:  # matrices of different widths (a model without a signature): group them
            pass
    return concat_unified([_group_table(endpoint, group) for group in _groups(records)])


def split_by_hour(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """``table`` split by the UTC hour of its ``ts`` column (one piece per hour)."""
    import numpy as np
    import pyarrow as pa

    hours = np.asarray(table.column("ts").cast(pa.int64()).to_numpy()) // 3_600_000_000  # µs an hour
    return [(int(h), table.filter(pa.array(hours == h))) for h in np.unique(hours)]


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
