"""Count windows (``{"rows": N}``): the next N live rows, once N have been collected and are ``grace_seconds``
old. The cursor keeps the timestamp (µs) of the last row taken (``after``); each run reads only the hour
partitions from that row's hour on. Rows that share the boundary timestamp stay together in one window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected_read import read_collected
from mloop.entities import Monitor, now_ms
from mloop.monitoring.notify import Dispatcher

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["run_count_windows"]


def run_count_windows(context: Context, monitor: Monitor, *, max_windows: int = 1000) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from mloop.monitoring.monitors import _proba_fn, load_sketch, record_window

    spec = monitor.spec
    size = int(spec["window"]["rows"])
    sketch = load_sketch(context, monitor)
    reference = spec["reference"]
    until = datetime.fromtimestamp((now_ms() - float(spec["grace_seconds"]) * 1000) / 1000, UTC)
    after = monitor.cursor.get("after")
    since = None if after is None else datetime.fromtimestamp(after / 1e6, UTC)
    table = read_collected(context.artifacts.uri, str(spec["endpoint"]), since=since, until=until,
                           with_feedback=True, role="live")  # fmt: skip
    if after is not None:
        table = table.filter(pc.greater(table.column("ts"), pa.scalar(after, pa.timestamp("us", tz="UTC"))))
    ts = table.column("ts").cast(pa.int64()).to_numpy() if table.num_rows else None
    dispatcher = Dispatcher(spec["alerts"]["notify"])
    done: list[dict[str, Any]] = []
    offset = 0
    try:
        while ts is not None and len(done) < max_windows and table.num_rows - offset >= size:
            stop = offset + size
            while stop < table.num_rows and ts[stop] == ts[stop - 1]:
                stop += 1  # keep rows of the boundary timestamp together
            window = table.slice(offset, stop - offset)
            start_ms, end_ms = int(ts[offset] // 1000), int(ts[stop - 1] // 1000) + 1
            monitor, summary = record_window(context, monitor, window, start_ms, end_ms, sketch, dispatcher,
                                             task=reference.get("task"), classes=reference.get("classes"),
                                             extra_cursor={"after": int(ts[stop - 1])},
                                             proba=_proba_fn(context, monitor))  # fmt: skip
            done.append(summary)
            offset = stop
    finally:
        dispatcher.close()
    return done
