"""The collector's ring: a bounded byte ring in memory shared by the serving process (the only producer) and
its writer process (the only consumer), so the request path only copies bytes (bench/RESULTS.md §17).

The memory is an anonymous ``memfd`` (Linux; a deleted temporary file elsewhere) handed to the writer as an
inherited descriptor: it has no name to leak when either side dies, and it is not bounded by ``/dev/shm``'s
size (64 MiB in a default Docker container). Layout: a 64-byte header of eight little-endian ``uint64`` slots
(``HEAD`` bytes ever written, ``TAIL`` bytes ever consumed, ``DRAINED`` request rows and ``FB_DRAINED``
feedback rows the writer took out of the ring),
then ``capacity`` bytes of records, each 8-byte aligned, never split across the end (a padding record fills the
end instead):

- a *fast* record (layout id ≥ 2): :data:`RECORD` (size, layout, µs timestamp, latency ms, status, rows, the
  request id in 48 bytes), then the input matrix's bytes, then the outputs' bytes, in the dtypes and widths of
  its :class:`Layout` (sent once, as a pickled record, before the first record that uses it);
- a *pickled* record (layout id 1): size, 1, then a pickle (a collector :data:`Record`, feedback, a layout);
- a *padding* record (layout id 0): the rest of the ring up to its end.

The producer writes a record, then publishes it by moving ``HEAD``; the consumer reads up to the ``HEAD`` it
read and then moves ``TAIL``: single producer (a lock serialises the serving process's threads), single
consumer, and a full ring refuses the record (:meth:`Ring.put` returns ``False``) instead of waiting.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DRAINED",
    "FB_DRAINED",
    "RECORD",
    "RECORD_FIELDS",
    "FrameMatrix",
    "Layout",
    "Ring",
    "layout_of",
    "open_ring",
]

HEAD, TAIL, DRAINED, FB_DRAINED = 0, 1, 2, 3  # header slots (uint64)
HEADER = 64
PAD, PICKLED = 0, 1  # layout ids of the padding and pickled records; fast layouts start at 2
RECORD = struct.Struct("<IIqdii48s")  # size, layout, ts (µs), latency (ms), status, rows, request id (≤ 48 bytes)
_SHORT = struct.Struct("<II")  # size, layout (padding and pickled records)
ID_BYTES = 48
_FAST_KINDS = frozenset("biuf")  # numpy kinds whose bytes the ring carries as they are
RECORD_FIELDS = 11  # len(mloop.serving.collected_files.Record)


@dataclass(frozen=True)
class Layout:
    """What every fast record of one layout id shares: the model version, role, input names, the input matrix's
    dtype and width, and the outputs' dtype and width (``out_width`` 0: one value a row, a 1-D array)."""

    model: str
    role: str
    columns: tuple[str, ...] | None
    dtype: str
    width: int
    out_dtype: str
    out_width: int
    proba: bool

    def row_bytes(self) -> tuple[int, int]:
        """Bytes of one row of input and of output."""
        import numpy as np

        return (np.dtype(self.dtype).itemsize * self.width,
                np.dtype(self.out_dtype).itemsize * max(self.out_width, 1))  # fmt: skip


def layout_of(key: tuple[Any, ...]) -> Layout | None:
    """The fast layout of a record key ``(model, role, columns, dtype, shape[1:], outputs' dtype, outputs'
    shape[1:], proba)``, or ``None`` when its records go pickled (not a numeric matrix and 1-D or 2-D numeric
    outputs, or names that do not match the width)."""
    model, role, columns, dtype, width, out_dtype, out_width, proba = key
    if len(width) != 1 or dtype.kind not in _FAST_KINDS or out_dtype.kind not in _FAST_KINDS or \
            len(out_width) > 1 or (columns is not None and len(columns) != width[0]):  # fmt: skip
        return None
    return Layout(model, role, columns, dtype.str, width[0], out_dtype.str, out_width[0] if out_width else 0, proba)


class FrameMatrix:
    """``matrix(data, columns)``: the 2-D array behind a DataFrame of one numeric block named ``columns`` (what
    the scoring app builds for a model fitted on named numeric columns, in signature order), or ``data``
    itself. The names are compared in full for the first frame of each ``columns`` and every 256th (reading
    an Arrow-backed column index costs 20+ µs); a mismatch sends that ``columns`` the general way from then
    on."""

    def __init__(self) -> None:
        import numpy as np

        self._ndarray = np.ndarray
        self._checked: dict[tuple[str, ...], int] = {}  # frames seen per columns (-1: names differ)

    def __call__(self, data: Any, columns: tuple[str, ...]) -> Any:
        try:
            blocks = data._mgr.blocks  # pandas' block manager: a view, no copy
            if len(blocks) != 1:
                return data
            matrix = blocks[0].values.T  # one block: its columns are the frame's
        except AttributeError:  # not a DataFrame, or a pandas without blocks: the general path
            return data
        if matrix.__class__ is not self._ndarray or matrix.ndim != 2 or matrix.shape[1] != len(columns):
            return data
        checked = self._checked.get(columns, 0)
        if checked < 0:
            return data
        if checked % 256 == 0 and tuple(map(str, data.columns)) != columns:
            self._checked[columns] = -1
            return data
        self._checked[columns] = checked + 1
        return matrix


def _anonymous_fd(size: int) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mloop-collector", 0)  # not inheritable by default (PEP 446)
    else:  # pragma: no cover - not Linux
        fd, path = tempfile.mkstemp(prefix="mloop-collector-")
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd


def open_ring(capacity: int) -> Ring:
    """A new ring of ``capacity`` bytes (rounded up to 8) in fresh anonymous shared memory."""
    capacity = (capacity + 7) // 8 * 8
    return Ring(_anonymous_fd(HEADER + capacity), capacity)


class Ring:
    """One side's view of the ring in the memory behind ``fd`` (:meth:`put` for the producer, :meth:`take` for
    the consumer)."""

    def __init__(self, fd: int, capacity: int) -> None:
        self.fd, self.capacity = fd, capacity
        self._map = mmap.mmap(fd, HEADER + capacity)
        self.view = memoryview(self._map)
        self.slots = self.view[:HEADER].cast("Q")
        self.head = self.slots[HEAD]  # the producer's own copy (it is the only writer of HEAD)

    def close(self) -> None:
        self.slots.release()
        self.view.release()
        with contextlib.suppress(BufferError):  # a view still alive somewhere: the map goes with it
            self._map.close()
        os.close(self.fd)

    # -- producer ------------------------------------------------------------------------------------------

    def used(self) -> int:
        return int(self.slots[HEAD] - self.slots[TAIL])

    def put(self, layout: int, ts_us: int, latency_ms: float, status: int, rows: int, rid: bytes, data: bytes,
            outputs: bytes) -> bool:  # fmt: skip
        """Append a fast record; ``False`` (nothing written) when the ring has no room for it."""
        body = RECORD.size + len(data) + len(outputs)
        size = (body + 7) & ~7
        at = self._reserve(size)
        if at < 0:
            return False
        view = self.view
        RECORD.pack_into(view, at, size, layout, ts_us, latency_ms, status, rows, rid)
        start = at + RECORD.size
        view[start : start + len(data)] = data
        start += len(data)
        view[start : start + len(outputs)] = outputs
        self.head += size
        self.slots[HEAD] = self.head  # publishes the record (the consumer reads no further than HEAD)
        return True

    @staticmethod
    def row_struct(layout: Layout) -> tuple[struct.Struct, int]:
        """The struct of a whole one-row fast record of ``layout`` (header, input bytes, output bytes, padding)
        and its size, for :meth:`put_row`."""
        data, out = layout.row_bytes()
        size = (RECORD.size + data + out + 7) & ~7
        return struct.Struct(f"{RECORD.format}{data}s{out}s{size - RECORD.size - data - out}x"), size

    def put_row(self, row: struct.Struct, size: int, layout: int, ts_us: int, latency_ms: float, status: int,
                rid: bytes, data: bytes, outputs: bytes) -> bool:  # fmt: skip
        """:meth:`put` of a one-row record in one ``pack_into`` (``row``, ``size``: :meth:`row_struct`)."""
        head, capacity = self.head, self.capacity
        at = head % capacity
        if at + size > capacity or head + size - self.slots[TAIL] > capacity:  # the end, or full: the general way
            return self.put(layout, ts_us, latency_ms, status, 1, rid, data, outputs)
        row.pack_into(self.view, HEADER + at, size, layout, ts_us, latency_ms, status, 1, rid, data, outputs)
        self.head = head + size
        self.slots[HEAD] = self.head  # publishes the record
        return True

    def put_object(self, value: Any) -> bool:
        """Append a pickled record holding ``value``; ``False`` when the ring has no room for it."""
        payload = pickle.dumps(value, protocol=5)
        size = (_SHORT.size + len(payload) + 7) & ~7
        if size > self.capacity // 2:
            return False
        at = self._reserve(size)
        if at < 0:
            return False
        _SHORT.pack_into(self.view, at, size, PICKLED)
        self.view[at + _SHORT.size : at + _SHORT.size + len(payload)] = payload
        self.head += size
        self.slots[HEAD] = self.head
        return True

    def _reserve(self, size: int) -> int:
        """The offset where a record of ``size`` bytes goes (after padding the end if it does not fit there),
        or -1 when the ring is full."""
        head, capacity = self.head, self.capacity
        at = head % capacity
        pad = capacity - at if at + size > capacity else 0
        if head + pad + size - self.slots[TAIL] > capacity:
            return -1
        if pad:
            _SHORT.pack_into(self.view, HEADER + at, pad, PAD)
            self.head = head + pad
            at = 0
        return HEADER + at

    # -- consumer ------------------------------------------------------------------------------------------

    def take(self, layouts: dict[int, Layout], out: list[Any]) -> int:
        """Move every record published so far into ``out`` and free its room: fast records as *runs* (dicts of
        numpy arrays, consecutive single-row records of one layout in one run), pickled ones as their objects
        (layouts go into ``layouts``). Returns the request rows taken."""
        head, tail = int(self.slots[HEAD]), int(self.slots[TAIL])
        total = 0
        while tail < head:
            at = tail % self.capacity
            size, layout = _SHORT.unpack_from(self.view, HEADER + at)
            rows = feedback = 0
            if layout == PAD:
                tail += size
            elif layout == PICKLED:
                value = pickle.loads(self.view[HEADER + at + _SHORT.size : HEADER + at + size])
                tail += size
                if len(value) == RECORD_FIELDS:  # a collector Record (the others are tagged tuples)
                    rows = int(value[-1])
                elif value[0] == "feedback":
                    feedback = len(value[1])
                if value[0] == "layout":  # the records that follow may use it
                    layouts[value[1]] = value[2]
                else:
                    out.append(value)
            else:
                end = min(head - tail, self.capacity - at)  # this contiguous stretch of published records
                run, used = _run(self.view, HEADER + at, end, layouts[layout], layout)
                out.append(run)
                rows = len(run["ts"]) if run["rows"] is None else int(run["rows"].sum())
                tail += used
            self.slots[TAIL] = tail  # the producer may reuse the room now: everything taken is copied out
            if rows:  # what a writer that dies now held (the serving process counts it as dropped)
                self.slots[DRAINED] += rows
            if feedback:
                self.slots[FB_DRAINED] += feedback
            total += rows
        return total


@functools.lru_cache(maxsize=256)
def _dtype(layout: Layout, size: int, rows: int) -> Any:
    """The numpy record type of a fast record of ``layout`` with ``rows`` rows (cached: building one costs more
    than reading a run)."""
    import numpy as np

    out_shape = (rows,) if layout.out_width == 0 else (rows, layout.out_width)
    data_bytes, _ = layout.row_bytes()
    return np.dtype({
        "names": ["size", "layout", "ts", "latency", "status", "rows", "id", "data", "out"],
        "formats": ["<u4", "<u4", "<i8", "<f8", "<i4", "<i4", f"S{ID_BYTES}", (np.dtype(layout.dtype),
                    (rows, layout.width)), (np.dtype(layout.out_dtype), out_shape)],
        "offsets": [0, 4, 8, 16, 24, 28, 32, RECORD.size, RECORD.size + rows * data_bytes],
        "itemsize": size,
    })  # fmt: skip


def _run(view: memoryview, start: int, length: int, layout: Layout, layout_id: int) -> tuple[dict[str, Any], int]:
    """The fast records from ``start`` (of ``layout_id``): every consecutive single-row record of that layout,
    read as one strided numpy view (no Python step per record), or one multi-row record. Returns the run (its
    arrays copied out of the ring) and the bytes it used."""
    import numpy as np

    size, _, _, _, _, rows = RECORD.unpack_from(view, start)[:6]
    if rows != 1:
        record = np.frombuffer(view, _dtype(layout, size, rows), count=1, offset=start)
        return _copied(record, rows), size
    records = np.frombuffer(view, _dtype(layout, size, 1), count=length // size, offset=start)
    same = (records["size"] == size) & (records["layout"] == layout_id) & (records["rows"] == 1)
    count = len(same) if same.all() else int(np.argmin(same))
    return _copied(records[:count], None), count * size


def _copied(records: Any, rows: int | None) -> dict[str, Any]:
    """The run's fields copied out of the ring (the producer reuses its room as soon as ``TAIL`` moves)."""
    import numpy as np

    data, out = records["data"], records["out"]
    return {
        "layout": int(records["layout"][0]), "ts": records["ts"].copy(), "latency": records["latency"].copy(),
        "status": records["status"].copy(), "id": records["id"].copy(),
        "rows": None if rows is None else np.array([rows], dtype=np.int64),
        "data": np.array(data.reshape(-1, data.shape[-1]), order="C", copy=True),
        "out": np.array(out.reshape(-1) if out.ndim == 2 else out.reshape(-1, out.shape[-1]), order="C", copy=True),
    }  # fmt: skip
