"""The sections of the HTML monitoring report (called through :func:`mloop.monitoring.report.render_html`).

Layout, top to bottom: header (monitor, source, reference, window, time range, open alerts), the latest window
of every signal (folded), dataset drift over time, one section per feature (the latest window's reference vs
current distribution beside its drift score over time against the threshold; breached features first),
prediction drift (the same for the model's output), live performance (each realised metric with its confidence
band, the estimated metric dashed beside it, labelled rows as grey bars on a second axis), data quality (a table
of the latest rates, then the features with the highest rates over time) and technical signals (request rate,
error rate, p50/p99 latency). A section with no results says so rather than disappearing, so readers learn
what a monitor could show. Every string from users goes through :func:`html.escape`; anchors are numbered, never
built from names.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mloop.entities import Monitor, MonitorAlert, MonitorResult
from mloop.monitoring import report_charts as charts
from mloop.monitoring.report import (
    Key,
    alert_figures,
    describe_spec,
    finite,
    format_time,
    format_value,
    open_alerts,
    series_by_key,
    summary_rows,
)

__all__ = ["render_document"]

Series = dict[Key, list[MonitorResult]]
METRICS = ("accuracy", "f1", "roc_auc", "mae", "rmse")
QUALITY = ("missing_rate", "out_of_range", "unseen_categories", "invalid_requests")
SHARES = frozenset({"dataset_drift", "error_rate", *QUALITY})
QUALITY_LINES = 6
DASH, DOT = "\u2013", " \u00b7 "
STYLE = (
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;max-width:1180px;"
    "margin:0 auto;padding:0 16px 32px}h1{font-size:22px;margin:20px 0 6px}h2{font-size:18px;margin-top:34px;"
    "border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 2px}"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:2px 9px;text-align:left;"
    "border-bottom:1px solid #eee;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 14px;margin:8px 0}dt{color:#666}dd{margin:0}"
    ".ok{color:#1a7f37}.breach{color:#c62828;font-weight:600}.unknown{color:#9a6700}.none,.facts,footer"
    "{color:#666;font-size:13px}.facts{margin:2px 0 4px}.charts{display:flex;flex-wrap:wrap;gap:6px 14px;"
    "align-items:flex-start}svg{max-width:100%;height:auto}svg *{stroke-linejoin:round;stroke-linecap:butt}"
    "svg text{font-family:'DejaVu Sans','Bitstream Vera Sans',Verdana,Arial,Helvetica,sans-serif}"
    "ul.toc{columns:3;font-size:13px;padding-left:18px}nav a{margin-right:12px}code{font-size:13px}"
)  # fmt: skip


def render_document(
    monitor: Monitor, results: list[MonitorResult], alerts: list[MonitorAlert], *, generated_at: str | None,
    max_windows: int, max_features: int,
) -> str:  # fmt: skip
    starts = sorted({r.window_start for r in results})
    kept = set(starts[-max_windows:])
    series = {k: s for k, v in series_by_key(results).items() if (s := [r for r in v if r.window_start in kept])}
    counter = itertools.count()

    def key() -> str:  # chart ids: c0, c1, ... in drawing order (deterministic)
        return f"c{next(counter)}"

    sections = [
        _header(monitor, results, alerts, len(starts), max_windows), _latest(results),
        _section("dataset-drift", "Dataset drift", _dataset_drift(series, key)),
        _section("features", "Data drift per feature", _features(series, key, max_features)),
        _section("prediction-drift", "Prediction drift", _prediction(series, key)),
        _section("performance", "Live performance", _performance(series, key)),
        _section("quality", "Data quality", _quality(series, key)),
        _section("technical", "Technical", _technical(series, key)),
    ]  # fmt: skip
    footer = f"<footer><p>mloop monitoring report{_generated(generated_at)}</p></footer>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>Monitor {_e(monitor.name)} \u2013 mloop</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}{footer}</body></html>\n")  # fmt: skip


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _generated(generated_at: str | None) -> str:
    return f", generated at {_e(generated_at)}" if generated_at else ""


def _section(anchor: str, title: str, body: str) -> str:
    body = body or '<p class="none">No results for these signals in the windows shown.</p>'
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _status(status: str) -> str:
    return f'<span class="{_e(status)}">{_e(status)}</span>'


def _x(result: MonitorResult) -> int:
    return (result.window_start + result.window_end) // 2


def _line(series: Sequence[MonitorResult], label: str, **kwargs: Any) -> charts.Line:
    return charts.Line(label, [_x(r) for r in series], [finite(r.value) for r in series],
                       breaches=[r.status == "breach" for r in series], **kwargs)  # fmt: skip


def _threshold(series: Sequence[MonitorResult], label: str = "threshold") -> list[charts.Line]:
    values = [finite(r.threshold) for r in series]
    if all(v is None for v in values):
        return []
    return [charts.Line(label, [_x(r) for r in series], values, threshold=True)]


def _header(monitor: Monitor, results: list[MonitorResult], alerts: list[MonitorAlert], windows: int,
            max_windows: int) -> str:  # fmt: skip
    facts = [("monitor", monitor.ref + (" (paused)" if monitor.paused else "")), *describe_spec(monitor.spec)]
    if results:
        first, last = min(r.window_start for r in results), max(r.window_end for r in results)
        shown = f" (charts show the last {max_windows})" if windows > max_windows else ""
        facts.append(("time range", f"{format_time(first)} \u2192 {format_time(last)} UTC, {windows} windows{shown}"))
    still_open = open_alerts(alerts)
    facts.append(("open alerts", str(len(still_open))))
    dl = "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in facts)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("alerts", "Alerts"), ("dataset-drift", "Dataset drift"), ("features", "Features"),
        ("prediction-drift", "Prediction drift"), ("performance", "Performance"), ("quality", "Data quality"),
        ("technical", "Technical")))  # fmt: skip
    rows = "".join(
        f"<tr><td>{_e(a.signal)}</td><td>{_e(a.feature or DASH)}</td><td>{format_time(a.opened_at)}</td>"
        f'<td class="n">{a.windows}</td><td>{_e(alert_figures(a))}</td></tr>'
        for a in still_open
    )
    table = ("<table><tr><th>signal</th><th>feature</th><th>opened (UTC)</th><th>windows</th><th>figures</th></tr>"
             f"{rows}</table>") if rows else '<p class="ok">No open alerts.</p>'  # fmt: skip
    return (f"<header><h1>Monitor {_e(monitor.name)}</h1><dl>{dl}</dl><nav>{nav}</nav></header>"
            f'<section id="alerts"><h2>Open alerts</h2>{table}</section>')  # fmt: skip


def _latest(results: list[MonitorResult]) -> str:
    rows = "".join(
        f"<tr><td>{_e(r['signal'])}</td><td>{_e(r['feature'] or DASH)}</td>"
        f'<td class="n">{format_value(r["value"])}</td><td class="n">{format_value(r["threshold"])}</td>'
        f'<td>{_status(r["status"])}</td><td class="n">{r["rows"]:,}</td><td>{_e(r["trend"])}</td></tr>'
        for r in summary_rows(results)
    )
    if not rows:
        return ""
    return ("<details><summary>Latest window of every signal</summary><table><tr><th>signal</th><th>feature</th>"
            f"<th>value</th><th>threshold</th><th>status</th><th>rows</th><th>trend</th></tr>{rows}</table>"
            "</details>")  # fmt: skip


def _dataset_drift(series: Series, key: Callable[[], str]) -> str:
    runs = series.get(("dataset_drift", ""))
    if not runs:
        return ""
    last = runs[-1]
    facts = (f"{format_value(last.value, share=True)} of the features drifted in the latest window "
             f"(threshold {format_value(last.threshold, share=True)}): {_status(last.status)}")  # fmt: skip
    chart = charts.time_chart([_line(runs, "share of drifted features"), *_threshold(runs)],
                              ylabel="share drifted", key=key())  # fmt: skip
    return f'<p class="facts">{facts}</p>{chart}'


def _drift_block(
    runs: Sequence[MonitorResult], title: str, anchor: str, key: Callable[[], str], css: str = "feature"
) -> str:
    last = runs[-1]
    detail = last.detail
    ref, cur = detail.get("reference"), detail.get("current")
    dist = ""
    if isinstance(ref, Mapping) and isinstance(cur, Mapping):
        draw = charts.categorical_distribution if "categories" in ref else charts.numeric_distribution
        dist = draw(ref, cur, key=key())
    dist = dist or '<p class="none">No distribution stored for the latest window.</p>'
    methods = sorted({str(r.detail.get("method")) for r in runs if r.detail.get("method")})
    label = methods[0] if len(methods) == 1 else "drift score"
    over_time = charts.time_chart([_line(runs, label), *_threshold(runs)], ylabel=label, key=key(), width=4.4)
    facts = [_status(last.status), f"{_e(label)} {format_value(last.value)}",
             f"threshold {format_value(last.threshold)}"]  # fmt: skip
    if finite(detail.get("p_value")) is not None:
        facts.append(f"p-value {format_value(detail.get('p_value'))}")
    if detail.get("kind"):
        facts.append(_e(detail["kind"]))
    facts.append(f"{last.rows:,} rows, window ending {format_time(last.window_end)} UTC")
    return (f'<section class="{css}" id="{anchor}"><h3>{_e(title)}</h3><p class="facts">{DOT.join(facts)}'
            f'</p><div class="charts">{dist}{over_time}</div></section>')  # fmt: skip


def _severity(result: MonitorResult) -> tuple[bool, float]:
    """Breached first, then by how far past (or close to) its threshold the value is."""
    value, threshold = finite(result.value), finite(result.threshold)
    ratio = value / threshold if value is not None and threshold else (value or 0.0)
    return (result.status != "breach", -ratio)


def _features(series: Series, key: Callable[[], str], max_features: int) -> str:
    names = [f for s, f in series if s == "data_drift"]
    names.sort(key=lambda f: (*_severity(series[("data_drift", f)][-1]), f))
    if not names:
        return ""
    charted, rest = names[:max_features], names[max_features:]
    toc = "".join(
        f'<li><a href="#feature-{i}">{_e(f)}</a> {_status(series[("data_drift", f)][-1].status)}</li>'
        for i, f in enumerate(charted)
    )
    blocks = "".join(_drift_block(series[("data_drift", f)], f, f"feature-{i}", key) for i, f in enumerate(charted))
    if rest:
        rows = "".join(
            f'<tr><td>{_e(f)}</td><td class="n">{format_value(last.value)}</td>'
            f'<td class="n">{format_value(last.threshold)}</td><td>{_status(last.status)}</td></tr>'
            for f in rest
            for last in [series[("data_drift", f)][-1]]
        )
        blocks += (f'<h3 id="features-rest">{len(rest)} more features</h3><p class="facts">Charts are drawn for the '
                   f"{len(charted)} features that drifted most; the others, latest window:</p><table><tr><th>feature"
                   f"</th><th>drift</th><th>threshold</th><th>status</th></tr>{rows}</table>")  # fmt: skip
    return f'<ul class="toc">{toc}</ul>{blocks}'


def _prediction(series: Series, key: Callable[[], str]) -> str:
    found = [(f, s) for (signal, f), s in series.items() if signal == "prediction_drift"]
    return "".join(
        _drift_block(s, f or "prediction", f"prediction-{i}", key, "prediction") for i, (f, s) in enumerate(found)
    )


def _band(runs: Sequence[MonitorResult]) -> tuple[list[float | None], list[float | None]] | None:
    """The confidence interval stored in each window's detail (``ci_low``/``ci_high``), if any window has one."""
    low = [finite(r.detail.get("ci_low")) for r in runs]
    high = [finite(r.detail.get("ci_high")) for r in runs]
    return (low, high) if any(v is not None for v in low + high) else None


def _performance(series: Series, key: Callable[[], str]) -> str:
    out = []
    for metric in METRICS:
        real, estimated = series.get((metric, ""), []), series.get((f"estimated_{metric}", ""), [])
        if not real and not estimated:
            continue
        lines, facts, bars = [], [], None
        if real:
            band = _band(real)
            lines.append(_line(real, metric, band=band))
            bars = ([_x(r) for r in real], [r.rows for r in real])
            last = real[-1]
            ci = f" [{format_value(band[0][-1])}, {format_value(band[1][-1])}]" if band else ""
            facts += [_status(last.status), f"{metric} {format_value(last.value)}{ci}",
                      f"{last.rows:,} labelled rows"]  # fmt: skip
        if estimated:
            lines.append(_line(estimated, f"estimated {metric}", dashed=True, band=_band(estimated)))
            facts.append(f"estimated {format_value(estimated[-1].value)}")
        chart = charts.time_chart([*lines, *_threshold(real or estimated)], ylabel=metric, key=key(), bars=bars,
                                  bar_label="labelled rows", width=6.2, height=2.3)  # fmt: skip
        out.append(f'<h3>{_e(metric)}</h3><p class="facts">{DOT.join(facts)}</p>{chart}')
    return "".join(out)


def _quality(series: Series, key: Callable[[], str]) -> str:
    signals = [s for s in QUALITY if any(k[0] == s for k in series)]
    if not signals:
        return ""
    features = sorted({f for s, f in series if s in signals})
    head = "".join(f"<th>{_e(s)}</th>" for s in signals)
    body = []
    for feature in features:
        cells = []
        for signal in signals:
            runs = series.get((signal, feature))
            last = runs[-1] if runs else None
            text = format_value(last.value, share=True) if last else "\u2013"
            cells.append(f'<td class="n {_e(last.status) if last else ""}">{text}</td>')
        body.append(f"<tr><td>{_e(feature or DASH)}</td>{''.join(cells)}</tr>")
    out = [f"<table><tr><th>feature (latest window)</th>{head}</tr>{''.join(body)}</table>"]
    for signal in signals:
        found = {f: s for (sig, f), s in series.items() if sig == signal}
        ranked = sorted(
            found,
            key=lambda f: (
                found[f][-1].status != "breach",
                -max((finite(r.value) or 0.0 for r in found[f]), default=0.0),
                f,
            ),
        )
        shown = ranked[:QUALITY_LINES]  # fmt: skip
        lines = [_line(found[f], f or "all") for f in shown]
        chart = charts.time_chart([*lines, *_threshold(found[shown[0]])], ylabel=signal, key=key(), width=6.2)
        note = f"the {len(shown)} of {len(found)} features with the highest rates" if len(found) > len(shown) else ""
        out.append(f'<h3>{_e(signal)}</h3><p class="facts">{note}</p>{chart}')
    return "".join(out)


def _technical(series: Series, key: Callable[[], str]) -> str:
    out = []
    for signal, label in (("request_rate", "requests / s"), ("error_rate", "error rate")):
        runs = series.get((signal, ""))
        if runs:
            value = format_value(runs[-1].value, share=signal in SHARES)
            chart = charts.time_chart([_line(runs, label), *_threshold(runs)], ylabel=label, key=key(), width=4.4)
            out.append(f'<div><h3>{_e(signal)}</h3><p class="facts">latest {value}</p>{chart}</div>')
    p50, p99 = series.get(("latency_p50_ms", ""), []), series.get(("latency_p99_ms", ""), [])
    if p50 or p99:
        lines = [_line(s, name) for s, name in ((p50, "p50"), (p99, "p99")) if s]
        thresholds = [*_threshold(p50, "p50 threshold"), *_threshold(p99, "p99 threshold")]
        latest = ", ".join(f"{n} {format_value(s[-1].value)} ms" for s, n in ((p50, "p50"), (p99, "p99")) if s)
        chart = charts.time_chart([*lines, *thresholds], ylabel="latency (ms)", key=key(), width=4.4)
        out.append(f'<div><h3>latency</h3><p class="facts">latest {latest}</p>{chart}</div>')
    return f'<div class="charts">{"".join(out)}</div>' if out else ""
