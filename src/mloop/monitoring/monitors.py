"""Monitors as users manage them: create (the reference sketch is built once), run (every window that is due),
show, list, pause, resume, delete. Each function takes a :class:`~mloop.context.Context` first.

:func:`run` computes the windows that ended at least ``grace_seconds`` ago, oldest first. A time window is
computed incrementally (:mod:`mloop.monitoring.incremental`): each run reads only the collected parts that
arrived since the last one and adds their summaries to the open windows, so closing a window reads a minute of
parts, not its hour (``"incremental": false``, exact drift mode and count windows read the window's rows from
the hour partitions that overlap it, ``mloop.artifacts.collected_read``). Each window is recorded with
:meth:`~mloop.store.protocols.monitors.MonitorStore.record_monitor_window`: results, the new cursor and the
alert changes in one transaction (compare-and-swap on the cursor, so a window is recorded once even if two
runs race; a crash records all of a window or none). Alert changes then go to the notifiers in the background.
Time windows are aligned to the window size (UTC); the first starts at the first hour the endpoint collected.
Count windows (``{"rows": N}``) take the next N live rows once N have been collected.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected import CollectedRoot
from mloop.artifacts.collected_read import first_collected, read_collected
from mloop.entities import Monitor, MonitorResult, now_ms
from mloop.errors import InvalidInput
from mloop.monitoring.alerts import alert_changes
from mloop.monitoring.notify import Dispatcher
from mloop.monitoring.reference import ReferenceSketch, build_reference
from mloop.monitoring.signals import PREDICTION, window_signals
from mloop.monitoring.spec import check_spec, window_ms

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = [
    "create_monitor",
    "delete_monitor",
    "list_monitors",
    "load_sketch",
    "record_results",
    "record_window",
    "run_monitor",
    "set_paused",
]

_log = logging.getLogger("mloop.monitoring")


def _endpoint_model(context: Context, endpoint: str) -> str:
    """The version answering most of the endpoint's traffic (read from the store, not from deployments)."""
    spec = context.store.get_endpoint(endpoint).spec
    traffic = spec.get("traffic") or []
    if not traffic:
        raise InvalidInput(f"Endpoint {endpoint!r} serves no model; give the reference model with --model.")
    return str(max(traffic, key=lambda t: t["weight"])["model"])


def _reference_columns(context: Context, reference: Mapping[str, Any], endpoint: str) -> tuple[dict[str, Any], Any]:
    """The reference's input columns (name -> array) and, for a dataset, the model's predictions on them."""
    if reference.get("dataset"):
        from mloop.datasets.dataset import get_dataset

        table = get_dataset(str(reference["dataset"]), client=context).to_arrow()
        target = reference.get("target")
        names = [c for c in table.column_names if c != target]
        frame = table.select(names).to_pandas()
        from mloop.registry.loader import load_model

        model = load_model(str(reference["model"]), client=context)
        predictions = model.predict(frame)
        return {c: frame[c].to_numpy() for c in names}, predictions
    rows = read_collected(context.artifacts.uri, endpoint, since=reference["since"], until=reference["until"],
                          role="live", sort=False)  # fmt: skip
    if rows.num_rows == 0:
        raise InvalidInput(f"Endpoint {endpoint!r} collected nothing between {reference['since']} and "
                           f"{reference['until']}; pick a reference window with traffic.")  # fmt: skip
    columns = {c.removeprefix("input."): rows.column(c).to_numpy(zero_copy_only=False)
               for c in rows.column_names if c.startswith("input.")}  # fmt: skip
    predictions = (
        rows.column("prediction").to_numpy(zero_copy_only=False) if "prediction" in rows.column_names else None
    )
    return columns, predictions


def _task(context: Context, model_ref: str | None) -> tuple[str | None, list[Any] | None]:
    if not model_ref:
        return None, None
    from mloop.registry.loader import load_model

    raw = load_model(model_ref, client=context).raw
    classes = getattr(raw, "classes_", None)
    if classes is not None:
        return "classification", [c.item() if hasattr(c, "item") else c for c in classes]
    return "regression", None


def create_monitor(context: Context, name: str, spec: Mapping[str, Any]) -> Monitor:
    """Check ``spec``, build the reference sketch once (stored under the artifact root), and store the monitor."""
    full = check_spec(spec)
    reference = dict(full["reference"])
    endpoint = str(full["endpoint"])
    if reference.get("dataset") and not reference.get("model"):
        reference["model"] = _endpoint_model(context, endpoint)
    columns, predictions = _reference_columns(context, reference, endpoint)
    features = full["features"] or sorted(columns)
    missing = sorted(set(features) - set(columns))
    if missing:
        raise InvalidInput(f"Features {missing} are not in the reference; it has {sorted(columns)}.")
    chosen = {f: columns[f] for f in features}
    task, classes = _task(context, reference.get("model"))
    if predictions is not None:  # a classifier's labels are categories (drift by chi-square / Jensen-Shannon)
        chosen[PREDICTION] = predictions.astype(str) if task == "classification" else predictions
    sketch = build_reference(chosen)
    body = json.dumps(sketch.to_dict(), sort_keys=True).encode()
    import hashlib

    key = f"monitors/{name}/reference-{hashlib.sha256(body).hexdigest()[:16]}.json"
    CollectedRoot(context.artifacts.uri).write(key, body)  # beside the blobs: gc never removes it
    reference["sketch"] = key
    reference.update(task=task, classes=classes)
    full.update(reference=reference, features=features)
    return context.store.create_monitor(name, spec=full, actor=context.actor)


def load_sketch(context: Context, monitor: Monitor) -> ReferenceSketch:
    fs, base = CollectedRoot(context.artifacts.uri).filesystem()
    with fs.open(f"{base}/{monitor.spec['reference']['sketch']}", "rb") as f:
        return ReferenceSketch.from_dict(json.loads(f.read()))


def _next_window(context: Context, monitor: Monitor, now: int) -> tuple[int, int] | None:
    """The next due window. Stretches without traffic are skipped to the window holding the next collected
    hour; with no traffic after the cursor, only the latest due window is computed (it shows the idle endpoint:
    a request rate of 0), never one per empty period since."""
    spec = monitor.spec
    size = window_ms(spec)
    assert size is not None
    due = now - float(spec["grace_seconds"]) * 1000  # windows must end by then
    start = monitor.cursor.get("end")
    after = None if start is None else _iso(int(start))
    following = first_collected(context.artifacts.uri, str(spec["endpoint"]), after)
    if following is not None:
        data_start = int(following.timestamp() * 1000) // size * size
        start = data_start if start is None else max(int(start), data_start)
    elif start is None:
        return None
    else:
        start = max(int(start), int(due) // size * size - size)
    end = int(start) + size
    return (int(start), end) if end <= due else None


def _iso(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def run_monitor(
    context: Context, name: str, *, now: int | None = None, max_windows: int = 1000
) -> list[dict[str, Any]]:
    """Compute and record every due window of monitor ``name``; returns a summary per window."""
    monitor = context.store.get_monitor(name)
    if monitor.paused:
        return []
    spec = monitor.spec
    if window_ms(spec) is None:
        from mloop.monitoring.countwindows import run_count_windows

        return run_count_windows(context, monitor, max_windows=max_windows)
    sketch = load_sketch(context, monitor)
    now = now_ms() if now is None else now
    reference = spec["reference"]
    proba = _proba_fn(context, monitor)
    from mloop.artifacts.compaction import compact_endpoint

    compact_endpoint(context.artifacts.uri, str(spec["endpoint"]), now=now / 1000)  # closed hours: one file each
    from mloop.monitoring.incremental import Accumulator, supported

    acc = Accumulator(context, monitor, sketch, proba) if supported(monitor) else None
    dispatcher = Dispatcher(spec["alerts"]["notify"])
    done: list[dict[str, Any]] = []
    try:
        while len(done) < max_windows:
            bounds = _next_window(context, monitor, now)
            if bounds is None:
                break
            start, end = bounds
            if acc is not None and acc.absorb(start, now):
                results, rows = acc.results(start, end)
            else:  # no summaries (or too far behind): from the rows
                table = read_collected(context.artifacts.uri, str(spec["endpoint"]), since=_iso(start),
                                       until=_iso(end), with_feedback=True, role="live", sort=False)  # fmt: skip
                results = window_signals(table, start, end, sketch, spec, list(spec["features"]), proba=proba,
                                         task=reference.get("task"), classes=reference.get("classes"))  # fmt: skip
                rows = table.num_rows
            monitor, summary = record_results(context, monitor, results, start, end, rows, dispatcher)
            done.append(summary)
        if acc is not None and (opening := _open_start(context, monitor, now)) is not None:
            acc.absorb(opening, now)  # the open window: its close will read only what arrives meanwhile
    finally:
        dispatcher.close()
    return done


def _open_start(context: Context, monitor: Monitor, now: int) -> int | None:
    """The start of the window after the cursor, once traffic has reached it and ``now`` has."""
    size = window_ms(monitor.spec)
    assert size is not None
    end = monitor.cursor.get("end")
    following = first_collected(context.artifacts.uri, str(monitor.spec["endpoint"]),
                                None if end is None else _iso(int(end)))  # fmt: skip
    if following is None:
        return None
    start = int(following.timestamp() * 1000) // size * size
    start = start if end is None else max(int(end), start)
    return start if start <= now else None


def record_window(
    context: Context, monitor: Monitor, table: Any, start: int, end: int, sketch: ReferenceSketch,
    dispatcher: Dispatcher, *, task: str | None, classes: Any, extra_cursor: Mapping[str, Any] | None = None,
    proba: Any = None,
) -> tuple[Monitor, dict[str, Any]]:  # fmt: skip
    """Compute one window's signals from its rows and record them with their alert changes."""
    spec = monitor.spec
    results = window_signals(table, start, end, sketch, spec, list(spec["features"]), task=task, classes=classes,
                             proba=proba)  # fmt: skip
    return record_results(context, monitor, results, start, end, table.num_rows, dispatcher, extra_cursor)


def record_results(
    context: Context, monitor: Monitor, results: list[MonitorResult], start: int, end: int, rows: int,
    dispatcher: Dispatcher, extra_cursor: Mapping[str, Any] | None = None,
) -> tuple[Monitor, dict[str, Any]]:  # fmt: skip
    """Record one window's results, the new cursor and the alert changes (one transaction), then notify."""
    alerts = monitor.spec["alerts"]
    changes, damping = alert_changes(results, monitor.cursor.get("alerts") or {},
                                     consecutive=int(alerts["consecutive"]),
                                     resolve_after=int(alerts["resolve_after"]))  # fmt: skip
    cursor = {"end": end, "alerts": damping, **(extra_cursor or {})}
    monitor = context.store.record_monitor_window(monitor.name, results=results, cursor=cursor,
                                                  expected_cursor=monitor.cursor, alerts=changes,
                                                  actor=context.actor)  # fmt: skip
    dispatcher.send(monitor.name, changes)
    breaches = sorted({f"{r.signal}:{r.feature}" if r.feature else r.signal for r in results if r.status == "breach"})
    return monitor, {"window_start": start, "window_end": end, "rows": rows, "results": len(results),
                     "breaches": breaches, "alerts": [c.state + " " + c.signal + (":" + c.feature if c.feature else "")
                                                      for c in changes]}  # fmt: skip


def _proba_fn(context: Context, monitor: Monitor) -> Any:
    """``predict_proba`` of the reference model for estimated performance when the collected rows have no
    probabilities (``estimated.rescore``, on by default for classifiers); None otherwise."""
    reference = monitor.spec["reference"]
    if reference.get("task") != "classification" or not monitor.spec["estimated"].get("rescore", True):
        return None
    if not reference.get("model"):
        return None
    from mloop.registry.loader import load_model

    model = load_model(str(reference["model"]), client=context)
    return model.predict_proba if model.has_proba else None


def list_monitors(context: Context) -> list[Monitor]:
    from mloop.entities import iter_pages

    return list(iter_pages(lambda cursor: context.store.list_monitors(cursor=cursor)))


def set_paused(context: Context, name: str, paused: bool) -> Monitor:
    return context.store.update_monitor(name, actor=context.actor, paused=paused)


def delete_monitor(context: Context, name: str) -> Monitor:
    """Delete the monitor (its results and alerts go with it) and its incremental state (derived data)."""
    deleted = context.store.delete_monitor(name, actor=context.actor)
    fs, base = CollectedRoot(context.artifacts.uri).filesystem()
    with contextlib.suppress(FileNotFoundError):
        fs.rm(f"{base}/monitors/{name}/incremental", recursive=True)
    return deleted
