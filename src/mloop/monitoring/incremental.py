"""Incremental windows: every collected part is read once, summarised into the windows it falls in, and a window
closes by reading its summary instead of its rows.

Each run of a time-window monitor (``mloop monitors run``, e.g. every minute) *absorbs* the parts that appeared
since the last run into the windows from the monitor's cursor up to now (the open one included): request parts
become :class:`~mloop.monitoring.summaries.RowSummary` sums per window plus a run of predictions; feedback parts
become labels (:mod:`mloop.monitoring.labels`). When a window is due, only the parts that arrived since the last
run are read; its signals come from its summary (:func:`~mloop.monitoring.summaries.summary_signals`) and its
live performance from the matched labelled rows. A part is never read again once absorbed; a part whose rows
lie past the last window (a clock ahead of the monitor's) waits for a later run.

Compaction merges the parts of a closed hour into one file whose footer names them
(:func:`~mloop.artifacts.compaction.compacted_sources`): absorbing a merged file reads only the rows of the parts
it had not absorbed, so nothing is counted twice.

The state is derived data, under ``<artifact root>/monitors/<name>/incremental/<digest of id and spec>/``:
data files with fresh names, and ``state.json`` naming them and the absorbed parts, published whole (temporary
file and rename): a crash leaves the previous state, whose parts are absorbed again, never a half-written one.
Windows the cursor has passed are dropped with their files. More than :data:`MAX_WINDOWS` windows behind, a
window is computed from its rows as before (:func:`~mloop.monitoring.signals.window_signals`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.artifacts.collected import FEEDBACK, REQUESTS, CollectedRoot, concat_unified
from mloop.artifacts.collected_read import collected_files
from mloop.artifacts.compaction import compacted_sources, uncovered_rows
from mloop.entities import Monitor, MonitorResult
from mloop.entities.ids import new_id
from mloop.monitoring.labels import add_labels, add_run, labelled_rows, make_run, row_keys
from mloop.monitoring.reference import ReferenceSketch
from mloop.monitoring.signals import Window, live_result
from mloop.monitoring.spec import window_ms
from mloop.monitoring.summaries import RowSummary, dump_summary, load_summary, summarise_rows, summary_signals

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.context import Context

__all__ = ["MAX_WINDOWS", "Accumulator", "supported"]

MAX_WINDOWS = 48
_log = logging.getLogger("mloop.monitoring")
_GROUP = 400  # request parts read before their rows are summarised
_US = 1000


def supported(monitor: Monitor) -> bool:
    """Whether the monitor's windows can be computed from summaries (fast drift, time windows, and an estimated
    metric that sums can give: not multiclass ROC AUC)."""
    spec, ref = monitor.spec, monitor.spec["reference"]
    if window_ms(spec) is None or spec["drift"]["mode"] != "fast" or not spec.get("incremental", True):
        return False
    classes = ref.get("classes") or []
    return not (spec["estimated"]["metric"] == "roc_auc" and len(classes) > 2)


def _digest(monitor: Monitor) -> str:
    """The monitor's id and spec: a monitor created again under the same name never reuses an old state."""
    body = json.dumps([monitor.id, monitor.spec], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class Accumulator:
    """The incremental state of one monitor (see the module docstring)."""

    def __init__(self, context: Context, monitor: Monitor, sketch: ReferenceSketch, proba: Callable[[Any], Any] | None):
        self.root = CollectedRoot(context.artifacts.uri)
        self.fs, self.base = self.root.filesystem()
        self.monitor, self.sketch, self.proba = monitor, sketch, proba
        self.spec = monitor.spec
        self.size = int(window_ms(self.spec) or 0)
        self.features = list(self.spec["features"])
        self.folder = f"monitors/{monitor.name}/incremental/{_digest(monitor)}"
        self.state = self._load_json()
        self.summaries: dict[str, RowSummary] = {}
        self.tables: dict[str, pa.Table | None] = {}
        self.stale: list[str] = []  # files of the previous state to remove once the new one is published
        self.absorbed = 0  # parts read by this accumulator (for benchmarks)

    # -- files ------------------------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return f"{self.base}/{self.folder}/{name}"

    def _load_json(self) -> dict[str, Any]:
        try:
            with self.fs.open(self._path("state.json"), "rb") as f:
                return dict(json.loads(f.read()))
        except FileNotFoundError:
            return _empty_state()

    def _put(self, prefix: str, data: bytes) -> str:
        name = f"{prefix}-{new_id()}"
        self.root.write(f"{self.folder}/{name}", data)
        return name

    def _table(self, name: str | None) -> pa.Table | None:
        if name is None:
            return None
        if name not in self.tables:
            import pyarrow as pa

            with self.fs.open(self._path(name), "rb") as f:
                self.tables[name] = pa.ipc.open_file(pa.BufferReader(f.read())).read_all()
        return self.tables[name]

    def _put_table(self, prefix: str, table: pa.Table) -> str:
        import pyarrow as pa

        sink = io.BytesIO()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        name = self._put(prefix, sink.getvalue())
        self.tables[name] = table
        return name

    def _summary(self, slot: str) -> RowSummary:
        if slot not in self.summaries:
            name = self.state["slots"][slot].get("summary")
            if name is None:
                self.summaries[slot] = RowSummary()
            else:
                with self.fs.open(self._path(name), "rb") as f:
                    self.summaries[slot] = load_summary(f.read())
        return self.summaries[slot]

    def save(self) -> None:
        """Publish the state (data files first, then ``state.json`` whole), then remove replaced files."""
        self.root.write(f"{self.folder}/state.json", json.dumps(self.state).encode())
        for name in self.stale:
            with contextlib.suppress(FileNotFoundError):  # a concurrent run removed it first
                self.fs.rm(self._path(name))
        self.stale = []

    # -- absorbing --------------------------------------------------------------------------------------------
    def _slots(self, first: int, now: int) -> list[int]:
        slots = list(range(first, now + 1, self.size))[: MAX_WINDOWS + 1]
        for key in list(self.state["slots"]):
            if int(key) < first:  # recorded already: drop it and its files
                self.stale.extend(n for n in _files(self.state["slots"].pop(key)))
        for s in slots:
            self.state["slots"].setdefault(str(s), {"summary": None, "runs": [], "labels": None, "matches": None,
                                                    "predicted": False})  # fmt: skip
        low = first // 3_600_000
        for kind in ("requests", "feedback"):  # hours before the first window are never listed again
            self.state[kind] = {k: h for k, h in self.state[kind].items() if h >= low}
        return slots

    def absorb(self, first: int, now: int) -> bool:
        """Absorb new parts into the windows from ``first`` (ms) to the one holding ``now``; False when that is
        more than :data:`MAX_WINDOWS` windows (compute from rows instead). A state naming a file that is gone (two
        runs raced and one removed what the other still named) is dropped and rebuilt from the parts."""
        try:
            if not self._whole():
                raise FileNotFoundError(self.folder)
            return self._absorb(first, now)
        except FileNotFoundError:
            _log.warning("monitor %s: incremental state incomplete; rebuilding it from the parts", self.monitor.name)
            self.state, self.summaries, self.tables, self.stale = _empty_state(), {}, {}, []
            return self._absorb(first, now)

    def _whole(self) -> bool:
        """Whether every file the state names is there."""
        named = {n for entry in self.state["slots"].values() for n in _files(entry)}
        if not named:
            return True
        try:
            present = {str(p).rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self._path(""), detail=False)}
        except FileNotFoundError:
            return False
        return named <= present

    def _absorb(self, first: int, now: int) -> bool:
        slots = self._slots(first, now)
        if len(slots) > MAX_WINDOWS:
            return False
        end = slots[-1] + self.size
        endpoint = str(self.spec["endpoint"])
        uri = self.root.uri
        feedback = [(h, p) for h, p in collected_files(uri, FEEDBACK, endpoint, first // 3_600_000, None)
                    if _name(p) not in self.state["feedback"]]  # fmt: skip
        arrived: list[tuple[int, pa.Table]] = []
        for (hour, path), table in zip(feedback, self._read_all(feedback, self.state["feedback"]), strict=True):
            if table is not None and table.num_rows:
                arrived.append((hour, self._labels(table)))
            self.state["feedback"][_name(path)] = hour
        if arrived:
            self._add_feedback(arrived, slots)
        listed = collected_files(uri, REQUESTS, endpoint, first // 3_600_000, end // 3_600_000)
        requests = [(h, p) for h, p in listed if _name(p) not in self.state["requests"]]
        for group in range(0, len(requests), _GROUP):  # memory stays bounded when a monitor catches up
            files = requests[group : group + _GROUP]
            batches: dict[int, list[pa.Table]] = {}
            for (hour, path), table in zip(files, self._read_all(files, self.state["requests"]), strict=True):
                if table is not None and not self._split(table, slots, end, batches):
                    continue  # rows past the last window: absorb it in a later run
                self.state["requests"][_name(path)] = hour
            for s, pieces in batches.items():
                for chunk in _chunks(pieces):
                    self._add_requests(str(s), chunk)
        for slot, summary in self.summaries.items():
            entry = self.state["slots"].get(slot)
            if entry is not None and summary.rows and entry.get("dirty"):
                self.stale.extend([entry["summary"]] if entry["summary"] else [])
                entry["summary"] = self._put("summary", dump_summary(summary))
                entry.pop("dirty")
        self.save()
        return True

    def _read_all(self, files: list[tuple[int, str]], covered: dict[str, int]) -> list[pa.Table | None]:
        """The new rows of ``files``, read by a few threads (Parquet decoding releases the GIL)."""
        names = set(covered)
        if len(files) < 4:
            out = [self._read(path, names) for _, path in files]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=4) as pool:
                out = list(pool.map(lambda item: self._read(item[1], names), files))
        self.absorbed += sum(t is not None for t in out)
        return out

    def _read(self, path: str, covered: set[str]) -> pa.Table | None:
        """The rows of a part not absorbed yet (a merged file: only its parts' rows that were not), live only."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        with self.fs.open(path, "rb") as f:
            part = pq.ParquetFile(f)
            sources = compacted_sources(part.schema_arrow)
            ranges = None if sources is None else uncovered_rows(sources, covered)
            if ranges == []:
                return None
            table = part.read()
        if ranges is not None:
            table = concat_unified([table.slice(o, n) for o, n in ranges])
        if "role" in table.column_names:
            table = table.filter(pc.equal(table.column("role"), "live"))
        return table

    def _split(self, table: pa.Table, slots: list[int], end: int, batches: dict[int, list[pa.Table]]) -> bool:
        """``table``'s rows per window (False, and nothing taken, when a row lies past the last window)."""
        import pyarrow as pa

        ts = table.column("ts").cast(pa.int64()).to_numpy() // _US if table.num_rows else np.zeros(0, np.int64)
        if ts.size and int(ts.max()) >= end:
            return False
        for s in slots:
            inside = (ts >= s) & (ts < s + self.size)
            if inside.all():
                batches.setdefault(s, []).append(table)
            elif inside.any():
                batches.setdefault(s, []).append(table.filter(pa.array(inside)))
        return True

    def _add_requests(self, slot: str, pieces: list[pa.Table]) -> None:
        """Summarise a batch of rows of one window (summaries add up: a batch is as good as its parts one by one)
        and add the scored rows' predictions as a run."""
        import pyarrow as pa

        rows = concat_unified(pieces)
        ref = self.spec["reference"]
        got = summarise_rows(rows, self.sketch, self.features, task=ref.get("task"), classes=ref.get("classes"),
                             proba=self.proba, auc=self.spec["estimated"]["metric"] == "roc_auc")  # fmt: skip
        self.summaries[slot] = self._summary(slot) + got
        entry = self.state["slots"][slot]
        entry["dirty"] = True
        keep = [c for c in ("prediction", "probabilities") if c in rows.column_names]
        if not keep or not ref.get("task"):
            return
        entry["predicted"] = True
        scored = rows.filter(pa.array(rows.column("status").to_numpy(zero_copy_only=False) < 400))
        run = make_run(row_keys(scored.column("request_id"), _row(scored)), scored.select(keep))
        entry["runs"].append(self._put_table("run", run))
        self._replace(entry, "matches", add_run(run, self._table(entry["labels"]), self._table(entry["matches"])))

    def _labels(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        keys = row_keys(table.column("request_id"), _row(table))
        return pa.table({"key": pa.array(keys, pa.uint64()), "ground_truth": table.column("ground_truth"),
                         "ts": table.column("ts").cast(pa.int64())})  # fmt: skip

    def _add_feedback(self, arrived: list[tuple[int, pa.Table]], slots: list[int]) -> None:
        """Labels merged into every window whose first hour is at or before their hour (as read_collected
        searches feedback from the window's first hour on)."""
        for s in slots:
            tables = [t for hour, t in arrived if s // 3_600_000 <= hour]
            if not tables:
                continue
            entry = self.state["slots"][str(s)]
            runs = [t for t in (self._table(r) for r in entry["runs"]) if t is not None]
            seq = int(entry.get("seq", 0)) + 1
            new = concat_unified(tables)
            labels, matches = add_labels(self._table(entry["labels"]), new, runs, self._table(entry["matches"]), seq)
            entry["seq"] = seq
            self._replace(entry, "labels", labels)
            self._replace(entry, "matches", matches)

    def _replace(self, entry: dict[str, Any], key: str, table: pa.Table | None) -> None:
        if table is None or (entry[key] is not None and self.tables.get(entry[key]) is table):
            return
        if entry[key] is not None:
            self.stale.append(entry[key])
        entry[key] = self._put_table(key, table)

    # -- closing ----------------------------------------------------------------------------------------------
    def results(self, start: int, end: int) -> tuple[list[MonitorResult], int]:
        """The signals of the absorbed window ``[start, end)`` and its row count."""
        slot = str(start)
        summary = self._summary(slot) if slot in self.state["slots"] else RowSummary()
        entry = self.state["slots"].get(slot) or {}
        ref = self.spec["reference"]
        task = ref.get("task")

        def live(w: Window) -> None:
            if task is None or not entry.get("predicted"):
                return
            got = labelled_rows(self._table(entry.get("labels")), self._table(entry.get("matches")))
            prediction, truth, proba = got if got is not None else (np.zeros(0), np.zeros(0), None)
            live_result(w, self.spec, task, ref.get("classes"), prediction, truth, proba,
                        rows_in_window=summary.rows - summary.errors - summary.invalid)  # fmt: skip

        results = summary_signals(summary, start, end, self.sketch, self.spec, self.features, live=live)
        return results, summary.rows


def _empty_state() -> dict[str, Any]:
    return {"requests": {}, "feedback": {}, "slots": {}}


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _chunks(pieces: list[pa.Table], rows: int = 250_000) -> list[list[pa.Table]]:
    """Batches of at most about ``rows`` rows (memory stays bounded when a monitor catches up)."""
    out: list[list[pa.Table]] = [[]]
    size = 0
    for piece in pieces:
        if size and size + piece.num_rows > rows:
            out.append([])
            size = 0
        out[-1].append(piece)
        size += piece.num_rows
    return out


def _row(table: pa.Table) -> Any:
    return table.column("row").to_numpy() if "row" in table.column_names else np.zeros(table.num_rows, np.int64)


def _files(entry: dict[str, Any]) -> list[str]:
    names = [entry.get("summary"), entry.get("labels"), entry.get("matches"), *entry.get("runs", [])]
    return [n for n in names if n]
