"""Joining ground truth to predictions incrementally: each collected part is read once, labels arrive in any order.

A window's live performance needs the prediction of every labelled row. Re-joining the whole window's rows with
the feedback when the window closes costs seconds at 1,000 requests/s, so the join is kept up as parts arrive
(:mod:`mloop.monitoring.incremental` stores these tables as Arrow IPC files beside the window's summary):

* a **run** per batch of request parts: the scored rows' key, ``prediction`` (and collected ``probabilities``),
  sorted by key;
* **labels**: every feedback row seen since the window's first hour, the latest per key (by ``ts``, then by
  arrival), sorted by key;
* **matches**: the key, prediction (and probabilities) of each labelled row found in a run.

A new run is searched for the labels not matched yet; new labels are searched in every run. So a label is matched
exactly when its row is in some run, whichever came first. The key of ``(request_id, row)`` is a 64-bit hash
(:func:`row_keys`): two different rows of one window share a key with probability about ``n^2 / 2^65`` (1e-7
for the 3.6M rows of an hour at 1,000 requests/s), the only way this join can differ from
:func:`~mloop.artifacts.collected_read.read_collected`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["add_labels", "add_run", "labelled_rows", "make_run", "row_keys"]

U64 = npt.NDArray[np.uint64]
_P1, _P2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)
_P3 = np.uint64(0x94D049BB133111EB)


def _mix(h: U64) -> U64:
    h = (h ^ (h >> np.uint64(30))) * _P2
    h = (h ^ (h >> np.uint64(27))) * _P3
    return h ^ (h >> np.uint64(31))


def row_keys(request_id: Any, row: Any) -> U64:
    """A 64-bit key per ``(request_id, row)`` (null ids hash as empty text)."""
    import pyarrow as pa

    ids = request_id.combine_chunks() if isinstance(request_id, pa.ChunkedArray) else request_id
    ids = ids.cast(pa.large_binary()).fill_null(b"")
    n = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], np.int64)[ids.offset : ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2], np.uint8) if ids.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    width = max(8, -(-int(lengths.max(initial=0)) // 8) * 8)
    columns = np.arange(width)
    mask = columns < lengths[:, None]
    mat = np.zeros((n, width), np.uint8)
    mat[mask] = data[(offsets[:-1, None] + columns)[mask]]
    words = mat.view("<u8")
    with np.errstate(over="ignore"):
        h = _mix(lengths.astype(np.uint64) * _P1 + np.asarray(row, dtype=np.int64).astype(np.uint64))
        for j in range(words.shape[1]):  # only the words a row has: the key never depends on the others' lengths
            h = np.where(lengths > 8 * j, _mix(h ^ (words[:, j] * _P1)), h)
    return h


def make_run(keys: U64, table: pa.Table) -> pa.Table:
    """The run of a batch: ``key`` and ``table``'s columns (prediction, probabilities), sorted by key."""
    import pyarrow as pa

    order = np.argsort(keys, kind="stable")
    return table.take(pa.array(order)).append_column("key", pa.array(keys[order], pa.uint64()))


def _keys(table: pa.Table) -> U64:
    return table.column("key").to_numpy()  # type: ignore[no-any-return]


def _find(sorted_keys: U64, wanted: U64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Positions of ``wanted`` in ``sorted_keys`` and which were found."""
    at = np.searchsorted(sorted_keys, wanted)
    inside = at < sorted_keys.size
    found = np.zeros(wanted.size, dtype=bool)
    found[inside] = sorted_keys[at[inside]] == wanted[inside]
    return at, found


def _concat(tables: list[pa.Table]) -> pa.Table:
    from mloop.artifacts.collected import concat_unified

    return concat_unified([t for t in tables if t.num_rows] or tables[:1])


def _missing(sorted_keys: U64 | None, wanted: U64) -> U64:
    """``wanted`` without the keys in ``sorted_keys``."""
    if sorted_keys is None or not sorted_keys.size:
        return wanted
    return wanted[~_find(sorted_keys, wanted)[1]]


def _keys_of(table: pa.Table | None) -> U64 | None:
    return None if table is None or table.num_rows == 0 else _keys(table)


def add_run(run: pa.Table, labels: pa.Table | None, matches: pa.Table | None) -> pa.Table | None:
    """``matches`` with the labels not matched yet that ``run`` holds."""
    if labels is None or labels.num_rows == 0 or run.num_rows == 0:
        return matches
    wanted = _missing(_keys_of(matches), _keys(labels))
    at, found = _find(_keys(run), wanted)
    if not found.any():
        return matches
    import pyarrow as pa

    got = run.take(pa.array(at[found]))
    return _sorted(_concat([matches, got]) if matches is not None else got)


def _sorted(table: pa.Table) -> pa.Table:
    import pyarrow as pa

    return table.take(pa.array(np.argsort(_keys(table), kind="stable")))


def add_labels(
    labels: pa.Table | None, new: pa.Table, runs: list[pa.Table], matches: pa.Table | None, seq: int
) -> tuple[pa.Table, pa.Table | None]:
    """Feedback rows ``new`` (``key``, ``ground_truth``, ``ts`` µs) merged into ``labels`` (the latest per key,
    sorted by key), and the keys not seen before searched in every run."""
    import pyarrow as pa

    new = new.append_column("seq", pa.array(np.full(new.num_rows, seq, np.int64)))
    old = _keys_of(labels)
    new_keys = _keys(new)
    fresh = _missing(old, new_keys)
    merged = new if labels is None else _concat([labels, new])
    keys = _keys(merged)
    if fresh.size == new_keys.size and np.unique(new_keys).size == new_keys.size:  # no key labelled twice
        merged = merged.take(pa.array(np.argsort(keys, kind="stable")))
    else:
        ts, order = merged.column("ts").to_numpy(), merged.column("seq").to_numpy()
        last = np.lexsort((order, ts, keys))  # by key, then time, then arrival: the last of each key wins
        k = keys[last]
        keep = np.ones(k.size, dtype=bool)
        keep[:-1] = k[1:] != k[:-1]
        merged = merged.take(pa.array(last[keep]))
    fresh = np.unique(_missing(_keys_of(matches), fresh))
    found_tables = []
    for run in runs:
        if not fresh.size:
            break
        at, found = _find(_keys(run), fresh)
        if found.any():
            found_tables.append(run.take(pa.array(at[found])))
            fresh = fresh[~found]
    if found_tables:
        matches = _sorted(_concat([m for m in [matches, *found_tables] if m is not None]))
    return merged, matches


def labelled_rows(labels: pa.Table | None, matches: pa.Table | None) -> tuple[Any, Any, Any] | None:
    """(prediction, ground truth, probabilities or None) of the labelled rows with a prediction."""
    if labels is None or matches is None or not labels.num_rows or not matches.num_rows:
        return None
    import pyarrow as pa

    at, found = _find(_keys(labels), _keys(matches))
    rows = matches.filter(pa.array(found))
    truth = labels.column("ground_truth").take(pa.array(at[found]))
    proba = rows.column("probabilities") if "probabilities" in rows.column_names else None
    return rows.column("prediction"), truth, proba
