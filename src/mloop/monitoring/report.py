"""The monitoring report: a Rich table for the terminal (``mloop monitors show NAME``) and one HTML file.

Both read what a monitor stored -- its :class:`~mloop.entities.MonitorResult` time series and its alerts -- and
compute nothing statistical themselves. The terminal view (:func:`print_summary`) is the latest window of every
(signal, feature) with its value, threshold, status, the rows it rests on and a unicode sparkline of the last
windows, then the open alerts; :func:`summary_rows` is the same data as plain dicts (for ``--json`` and tests).

:func:`render_html` returns ONE self-contained page (inline CSS, charts as inline SVG from
:mod:`.report_charts`, no script, no external reference: it opens offline and can be mailed); its sections are
laid out by :mod:`.report_html`. It is deterministic: the same inputs give the same bytes; the only time of
rendering is the ``generated_at`` text the caller passes. Every user-provided string (monitor, feature and
category names, spec values) is HTML-escaped; matplotlib escapes the text it writes into the SVG.

A report of 20 features x 48 windows is about 0.6 MB and takes 2.3 s of CPU (~30 ms per chart; measured by the
tests). Charts show the last ``max_windows`` windows and the ``max_features`` features that drifted most (the
rest are listed in a table), so a very wide table or a long history still gives a file one can mail.

matplotlib is imported only when HTML is rendered, so the terminal view stays quick to start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.entities import Monitor, MonitorAlert, MonitorResult
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "SIGNAL_ORDER",
    "describe_spec",
    "format_time",
    "format_value",
    "print_summary",
    "render_html",
    "series_by_key",
    "sparkline",
    "summary_rows",
    "write_html",
]

SIGNAL_ORDER = (
    "dataset_drift", "data_drift", "prediction_drift", "accuracy", "estimated_accuracy", "f1", "estimated_f1",
    "roc_auc", "estimated_roc_auc", "mae", "rmse", "missing_rate", "out_of_range", "unseen_categories",
    "invalid_requests",
    "request_rate", "error_rate", "latency_p50_ms", "latency_p99_ms",
)  # fmt: skip
SPARK_BARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
STATUS_STYLES = (("ok", "green"), ("breach", "bold red"), ("unknown", "yellow"))
DEFAULT_TREND = 12

Key = tuple[str, str]


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else None (the store gives back NaN as None)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def series_by_key(results: Iterable[MonitorResult]) -> dict[Key, list[MonitorResult]]:
    """Results grouped by (signal, feature), oldest window first, keys in :data:`SIGNAL_ORDER` then by name.

    A window recorded twice for one key keeps the last one given."""
    by_key: dict[Key, dict[tuple[int, int], MonitorResult]] = {}
    for result in results:
        by_key.setdefault((result.signal, result.feature), {})[(result.window_start, result.window_end)] = result
    order = {signal: i for i, signal in enumerate(SIGNAL_ORDER)}
    keys = sorted(by_key, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    return {k: [by_key[k][w] for w in sorted(by_key[k])] for k in keys}


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled between their minimum and maximum; a gap is a space."""
    present = [v for v in (finite(v) for v in values) if v is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    out = []
    for value in values:
        v = finite(value)
        if v is None:
            out.append(" ")
        elif high == low:
            out.append(SPARK_BARS[3])
        else:
            out.append(SPARK_BARS[round((v - low) / (high - low) * (len(SPARK_BARS) - 1))])
    return "".join(out)


def summary_rows(results: Iterable[MonitorResult], *, trend: int = DEFAULT_TREND) -> list[dict[str, Any]]:
    """The latest window of every (signal, feature): its figures, and ``trend``: a sparkline of the last
    ``trend`` windows (``history``: their values)."""
    if not isinstance(trend, int) or trend < 1:
        raise InvalidInput(f"trend={trend!r} must be a positive number of windows, e.g. {DEFAULT_TREND}.")
    rows = []
    for (signal, feature), series in series_by_key(results).items():
        last = series[-1]
        history = [finite(r.value) for r in series[-trend:]]
        rows.append({
            "signal": signal, "feature": feature, "window_start": last.window_start, "window_end": last.window_end,
            "value": finite(last.value), "threshold": finite(last.threshold), "status": last.status,
            "rows": last.rows, "trend": sparkline(history), "history": history,
        })  # fmt: skip
    return rows


def format_value(value: float | None, *, share: bool = False) -> str:
    """A figure for people: 3 significant digits, thousands separated, shares as percentages, a dash if none."""
    v = finite(value)
    if v is None:
        return "\u2013"
    if share:
        return f"{v * 100:.1f}%"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if v == 0 or abs(v) >= 0.001:
        return f"{v:.3g}"
    return f"{v:.2e}"


def format_time(ms: int) -> str:
    """UTC milliseconds as ``2026-12-03 16:00`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def describe_spec(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) for what the monitor watches, its reference and its window, as far as the spec says
    (:mod:`mloop.monitoring.spec`: ``endpoint``; ``reference`` a dataset (and model) or a fixed earlier
    window ``since``/``until``; ``window`` ``every`` a duration or ``rows``)."""
    source = next((f"{k} {_describe(spec[k])}" for k in ("endpoint", "source", "output", "dataset") if spec.get(k)),
                  "\u2013")  # fmt: skip
    reference = spec.get("reference")
    if isinstance(reference, Mapping) and ("dataset" in reference or "since" in reference):
        parts = [str(reference["dataset"])] if reference.get("dataset") else []
        parts += [f"model {reference['model']}"] if reference.get("model") else []
        if reference.get("since") or reference.get("until"):
            since, until = reference.get("since") or "\u2026", reference.get("until") or "\u2026"
            parts.append(f"window {since} \u2192 {until}")
        described = ", ".join(parts)
    else:
        described = _describe(reference)
    window = spec.get("window")
    if isinstance(window, Mapping) and isinstance(window.get("rows"), int):
        shown = f"{window['rows']:,} rows"
    elif isinstance(window, Mapping) and window.get("every"):
        shown = f"every {window['every']}"
    else:
        shown = _describe(window)
    return [("source", source), ("reference", described), ("window", shown)]


def _describe(value: Any) -> str:
    if value is None or value in ("", {}):
        return "\u2013"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_describe(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_describe(v) for v in value)
    return str(value)


def open_alerts(alerts: Iterable[MonitorAlert]) -> list[MonitorAlert]:
    """The alerts still open, oldest first (then by signal, feature)."""
    return sorted((a for a in alerts if a.state == "open"), key=lambda a: (a.opened_at, a.signal, a.feature))


def alert_figures(alert: MonitorAlert) -> str:
    """The figures that caused an alert as ``value 0.31, threshold 0.2, rows 1,000, method psi`` (the window and
    streak are shown beside it, not repeated here)."""
    items = []
    for key, value in alert.figures.items():
        if key in ("windows", "window_start", "window_end") or isinstance(value, bool):
            continue
        if key == "rows" and isinstance(value, int):
            items.append(f"rows {value:,}")
        elif isinstance(value, int | float):
            items.append(f"{key} {format_value(value)}")
        elif isinstance(value, str):
            items.append(f"{key} {value}")
    return ", ".join(items)


def print_summary(
    monitor: Monitor, results: Iterable[MonitorResult], alerts: Iterable[MonitorAlert],
    console: Console | None = None, *, trend: int = DEFAULT_TREND,
) -> None:  # fmt: skip
    """Print the monitor, the latest window of each (signal, feature) and the open alerts with Rich.

    User strings are printed as :class:`rich.text.Text`, never parsed as markup."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console if console is not None else Console()
    rows = summary_rows(results, trend=trend)
    title = Text.assemble(("Monitor ", "bold"), (monitor.name, "bold cyan"), " (paused)" if monitor.paused else "")
    facts = "  ".join(f"{label}: {text}" for label, text in describe_spec(monitor.spec))
    console.print(title)
    console.print(Text(facts, style="dim"))
    if not rows:
        console.print(Text(f"No windows recorded yet: run `mloop monitors run {monitor.name}`."))
    else:
        styles = dict(STATUS_STYLES)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name, justify in (("signal", "left"), ("feature", "left"), ("window end (UTC)", "left"),
                              ("value", "right"), ("threshold", "right"), ("status", "left"), ("rows", "right"),
                              (f"trend ({trend})", "left")):  # fmt: skip
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(Text(row["signal"]), Text(row["feature"] or "\u2013"), format_time(row["window_end"]),
                          format_value(row["value"]), format_value(row["threshold"]),
                          Text(row["status"], style=styles.get(row["status"], "")), f"{row['rows']:,}",
                          Text(row["trend"], style="cyan"))  # fmt: skip
        console.print(table)
    still_open = open_alerts(alerts)
    if not still_open:
        console.print(Text("No open alerts.", style="green"))
        return
    table = Table(title=Text(f"Open alerts ({len(still_open)})", style="bold red"), box=box.SIMPLE_HEAD)
    for name in ("signal", "feature", "opened (UTC)", "windows", "figures"):
        table.add_column(name)
    for alert in still_open:
        table.add_row(Text(alert.signal), Text(alert.feature or "\u2013"), format_time(alert.opened_at),
                      str(alert.windows), Text(alert_figures(alert)))  # fmt: skip
    console.print(table)


def render_html(
    monitor: Monitor, results: Iterable[MonitorResult], alerts: Iterable[MonitorAlert], *,
    generated_at: str | None = None, max_windows: int = 500, max_features: int = 60,
) -> str:  # fmt: skip
    """The whole report as one self-contained HTML document (see the module docstring)."""
    if not isinstance(max_windows, int) or max_windows < 1:
        raise InvalidInput(f"max_windows={max_windows!r} must be a positive number of windows, e.g. 500.")
    if not isinstance(max_features, int) or max_features < 0:
        raise InvalidInput(f"max_features={max_features!r} must be a number of features to chart, e.g. 60.")
    from mloop.monitoring.report_html import render_document

    return render_document(monitor, list(results), list(alerts), generated_at=generated_at, max_windows=max_windows,
                           max_features=max_features)  # fmt: skip


def write_html(
    path: str | Path, monitor: Monitor, results: Iterable[MonitorResult], alerts: Iterable[MonitorAlert], *,
    generated_at: str | None = None, max_windows: int = 500, max_features: int = 60,
) -> int:  # fmt: skip
    """Write :func:`render_html` to ``path`` (UTF-8); returns its size in bytes."""
    data = render_html(monitor, results, alerts, generated_at=generated_at, max_windows=max_windows,
                       max_features=max_features).encode()  # fmt: skip
    target = Path(path)
    try:
        target.write_bytes(data)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise InvalidInput(f"Cannot write the report to {str(target)!r} ({exc.strerror}); pass a file path in an "
                           "existing folder, e.g. --html report.html.") from exc  # fmt: skip
    return len(data)
