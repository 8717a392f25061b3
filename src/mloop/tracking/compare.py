"""Side-by-side comparison of runs and charts of their metric histories.

``compare_runs`` lines up the params and latest metrics of several runs and says which params differ.
``write_chart`` draws the history of each metric (one panel per metric, one line per run) to a PNG file
(matplotlib, Agg backend, imported only when a PNG is asked for) or to a self-contained HTML page whose charts
are inline SVG generated here (no scripts, no network).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.entities import Metric, RunRecord
from mloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from mloop.tracking.client import Client
    from mloop.tracking.run import Run

__all__ = ["CHART_FORMATS", "RunComparison", "compare_runs", "metric_histories", "render_html", "write_chart"]

CHART_FORMATS = (".png", ".html", ".htm")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_MAX_POINTS = 2000  # per run and metric in an SVG; longer histories are thinned, keeping each bucket's extremes
Histories = Mapping[str, Mapping[str, Sequence[Metric]]]  # metric key -> run id -> points in step order


@dataclass(frozen=True)
class RunComparison:
    """Params and latest metrics of ``runs``, one value per run (``None`` where a run lacks the key)."""

    runs: tuple[RunRecord, ...]
    params: Mapping[str, tuple[str | None, ...]]
    metrics: Mapping[str, tuple[float | None, ...]]

    @property
    def differing_params(self) -> list[str]:
        """Params whose value is not the same in every run (missing counts as a value)."""
        return [k for k, values in self.params.items() if len(set(values)) > 1]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: the runs, then params and metrics keyed by name with one entry per run id."""
        ids = [r.id for r in self.runs]
        return {
            "runs": [
                {
                    "run_id": r.id,
                    "name": r.name,
                    "status": r.status.value,
                    "experiment_id": r.experiment_id,
                    "duration_ms": r.duration_ms,
                }
                for r in self.runs
            ],
            "params": {k: dict(zip(ids, v, strict=True)) for k, v in self.params.items()},
            "metrics": {k: dict(zip(ids, v, strict=True)) for k, v in self.metrics.items()},
            "differing_params": self.differing_params,
        }


def _records(client: Client, runs: Sequence[str | Run | RunRecord]) -> tuple[RunRecord, ...]:
    if not runs:
        raise InvalidInput("Give at least one run to compare, e.g. `mloop runs compare <id> <id>`.")
    out: dict[str, RunRecord] = {}
    for run in runs:
        record = run if isinstance(run, RunRecord) else client.get_run(run)
        out.setdefault(record.id, record)  # the same run twice is compared once
    return tuple(out.values())


def _check_metric_keys(records: Sequence[RunRecord], keys: Sequence[str]) -> None:
    known = sorted({k for r in records for k in r.metrics})
    for key in keys:
        if not any(key in r.metrics for r in records):
            have = ", ".join(known) or "none"
            raise NotFound(f"None of the runs has a metric {key!r} (they have: {have}). Pick one of those.")


def compare_runs(
    client: Client, runs: Sequence[str | Run | RunRecord], *, metrics: Sequence[str] | None = None
) -> RunComparison:
    """Compare ``runs`` (ids, id prefixes, ``run:<id>`` references, handles or records).

    ``metrics`` limits (and orders) the metric keys shown; a key no run has is a :class:`NotFound`.
    """
    records = _records(client, runs)
    param_keys = sorted({k for r in records for k in r.params})
    if metrics:
        _check_metric_keys(records, metrics)
        metric_keys = list(dict.fromkeys(metrics))
    else:
        metric_keys = sorted({k for r in records for k in r.metrics})
    return RunComparison(
        runs=records,
        params={k: tuple(r.params.get(k) for r in records) for k in param_keys},
        metrics={k: tuple(r.metrics.get(k) for r in records) for k in metric_keys},
    )


def metric_histories(
    client: Client, runs: Sequence[str | Run | RunRecord], keys: Sequence[str] | None = None
) -> dict[str, dict[str, list[Metric]]]:
    """``{metric key: {run id: history}}`` for ``keys`` (default: every metric of any of the runs)."""
    records = _records(client, runs)
    if keys:
        _check_metric_keys(records, keys)
        wanted = list(dict.fromkeys(keys))
    else:
        wanted = sorted({k for r in records for k in r.metrics})
    return {key: {r.id: client.get_metric_history(r.id, key) for r in records if key in r.metrics} for key in wanted}


def write_chart(
    client: Client,
    runs: Sequence[str | Run | RunRecord],
    path: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw the metric histories of ``runs`` to ``path``; ``.png`` or ``.html`` decides the format."""
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in CHART_FORMATS:
        raise InvalidInput(
            f"Cannot write a chart to {str(path)!r}: the file name must end in .png or .html "
            f"(got {suffix or 'no extension'!r})."
        )
    records = _records(client, runs)
    histories = metric_histories(client, records, metrics)
    if not histories:
        raise NotFound("None of these runs logged a metric, so there is nothing to chart.")
    labels = {r.id: f"{r.name} ({r.id[-8:]})" for r in records}
    title = title or "Metric history of " + ", ".join(labels[r.id] for r in records)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        _write_png(histories, labels, target, title)
    else:
        target.write_text(render_html(histories, labels, title), encoding="utf-8")
    return target


# PNG (matplotlib) ----------------------------------------------------------------------------------------
def _write_png(histories: Histories, labels: Mapping[str, str], target: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = list(histories)
    ncols = 1 if len(keys) == 1 else 2
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(6.4 * ncols, 3.6 * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = {run_id: _COLORS[i % len(_COLORS)] for i, run_id in enumerate(labels)}
    for ax, key in zip(axes, keys, strict=False):
        for run_id, points in histories[key].items():
            finite = [p for p in points if math.isfinite(p.value)]
            ax.plot(
                [p.step for p in finite],
                [p.value for p in finite],
                label=labels[run_id],
                color=colors[run_id],
                marker="o" if len(finite) <= 50 else None,
                markersize=3,
            )
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize="medium")
    fig.savefig(target, format="png", dpi=100)


# HTML with inline SVG -------------------------------------------------------------------------------------
def render_html(histories: Histories, labels: Mapping[str, str], title: str) -> str:
    """A standalone HTML page: one inline SVG line chart per metric, a legend naming each run."""
    colors = {run_id: _COLORS[i % len(_COLORS)] for i, run_id in enumerate(labels)}
    legend = "".join(
        f'<li><span class="swatch" style="background:{colors[r]}"></span>{html.escape(label)}</li>'
        for r, label in labels.items()
    )
    figures = "\n".join(
        f"<figure>{_svg_chart(key, series, colors, labels)}<figcaption>{html.escape(key)}</figcaption></figure>"
        for key, series in histories.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "figure{display:inline-block;margin:0 1.5em 1.5em 0}figcaption{text-align:center;font-weight:600}"
        "ul.legend{list-style:none;padding:0}ul.legend li{display:inline-block;margin-right:1.5em}"
        ".swatch{display:inline-block;width:1em;height:.6em;margin-right:.4em}"
        "svg text{font-size:11px;fill:#444}\n</style>\n</head>\n<body>\n"
        f'<h1>{html.escape(title)}</h1>\n<ul class="legend">{legend}</ul>\n{figures}\n</body>\n</html>\n'
    )


def _nice_ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False) -> list[float]:
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _domain(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _thin(points: Sequence[Metric]) -> list[Metric]:
    """Keep at most about ``_MAX_POINTS`` points: the first, last, lowest and highest of each bucket."""
    if len(points) <= _MAX_POINTS:
        return list(points)
    size = math.ceil(len(points) / (_MAX_POINTS // 4))
    out: list[Metric] = []
    for start in range(0, len(points), size):
        idx = range(start, min(start + size, len(points)))
        finite = [i for i in idx if math.isfinite(points[i].value)] or list(idx)
        keep = {idx[0], idx[-1], min(finite, key=lambda i: points[i].value), max(finite, key=lambda i: points[i].value)}
        out.extend(points[i] for i in sorted(keep))
    return out


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _svg_chart(
    key: str, series: Mapping[str, Sequence[Metric]], colors: Mapping[str, str], labels: Mapping[str, str]
) -> str:
    width, height, left, right, top, bottom = 560, 300, 60, 15, 15, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    thinned = {run_id: _thin(points) for run_id, points in series.items()}
    finite = [p for pts in thinned.values() for p in pts if math.isfinite(p.value)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(key, quote=True)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    if not finite:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no finite values</text></svg>')
        return "".join(parts)
    x_lo, x_hi = _domain([float(p.step) for p in finite])
    y_lo, y_hi = _domain([p.value for p in finite])

    def sx(step: float) -> float:
        return left + (step - x_lo) / (x_hi - x_lo) * plot_w

    def sy(value: float) -> float:
        return top + plot_h - (value - y_lo) / (y_hi - y_lo) * plot_h

    for tick in _nice_ticks(y_lo, y_hi):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    for tick in _nice_ticks(x_lo, x_hi, integer=True):
        x = sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#999"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_fmt(tick)}</text>'
        )
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">step</text>')
    for run_id, points in thinned.items():
        color, label = colors[run_id], html.escape(labels[run_id])
        segments: list[list[Metric]] = [[]]
        for p in points:  # a NaN or infinity breaks the line
            if math.isfinite(p.value):
                segments[-1].append(p)
            elif segments[-1]:
                segments.append([])
        parts.append(f"<g><title>{label}</title>")
        for segment in segments:
            if len(segment) > 1:
                coords = " ".join(f"{sx(p.step):.1f},{sy(p.value):.1f}" for p in segment)
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
            if len(segment) <= 50:
                parts.extend(
                    f'<circle cx="{sx(p.step):.1f}" cy="{sy(p.value):.1f}" r="2.5" fill="{color}">'
                    f"<title>{label} step {p.step}: {_fmt(p.value)}</title></circle>"
                    for p in segment
                )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
