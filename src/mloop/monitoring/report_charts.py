"""Charts of the monitoring report: small matplotlib figures rendered as compact SVG to inline in one HTML file.

Every chart is a :class:`matplotlib.figure.Figure` made directly (never pyplot: no global figure registry, no
interactive backend), drawn under :func:`matplotlib.rc_context` so the report's style never leaks into the
caller's settings, and saved with ``format="svg"``. The SVG is then made small and safe to inline:

* text stays text (``svg.fonttype = "none"``), not glyph outlines -- the biggest saving;
* geometry is rounded to 0.1 px, whitespace between tags and null rotations dropped, the XML prolog, metadata,
  per-chart style block and per-text font list removed (the page's CSS carries line joins and fonts once);
* ids nothing refers to are dropped and the rest prefixed per chart (``c7-``), so the clip paths and markers of
  forty inlined charts never collide; ``svg.hashsalt`` is fixed, so the same inputs give the same bytes.

Text from users (feature names, categories) reaches matplotlib with ``parse_math=False`` (a ``$`` is never
mathtext) and matplotlib's SVG writer escapes ``<``/``&``. Times are window ends in UTC milliseconds, shown in
UTC. Numeric distributions arrive as the reference sketch's bins (often 2000 quantile bins, with or without the
two tail bins, see :mod:`mloop.monitoring.reference`) and are re-binned onto ~30 equal-width bins spanning the 1st
to 99th percentiles of both sides (tails pooled into the end bins), so a chart costs the same whatever the sketch.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["Line", "categorical_distribution", "numeric_distribution", "time_chart"]

FloatArray = npt.NDArray[np.float64]

REFERENCE_COLOR = "#8da0cb"
CURRENT_COLOR = "#e8710a"
LINE_COLORS = ("#1f77b4", "#e8710a", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")
THRESHOLD_COLOR = "#d62728"
DISPLAY_BINS = 30
TOP_CATEGORIES = 12
LABEL_CHARS = 28

_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
_GEOMETRY = re.compile(r'\b(d|x|y|x1|x2|y1|y2|width|height|points|transform)="([^"]*)"')
_FONT_FAMILY = re.compile(r"; font-family: [^;\"]*")  # the page's CSS sets one family for every chart
_REFERENCE = re.compile(r'url\(#([^)]+)\)|href="#([^"]+)"')


def _rc() -> Any:  # matplotlib types the keys as literals
    return {
        "svg.fonttype": "none", "svg.hashsalt": "mloop-report", "font.size": 7.5, "axes.titlesize": 8,
        "axes.labelsize": 7.5, "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
        "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.linewidth": 0.4, "grid.alpha": 0.6, "lines.linewidth": 1.2, "path.simplify": True,
        "axes.titlelocation": "left", "timezone": "UTC",
    }  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One series over windows: ``ys[i]`` belongs to the window centred on ``xs[i]`` (UTC ms); ``None`` is a gap.

    ``band`` (low, high) is shaded around it (a confidence interval); ``breaches`` marks windows past their
    threshold; ``dashed`` draws an estimate; ``threshold`` draws it as the red threshold step line."""

    label: str
    xs: Sequence[int]
    ys: Sequence[float | None]
    dashed: bool = False
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None
    breaches: Sequence[bool] = ()
    threshold: bool = False


def time_chart(
    lines: Sequence[Line], *, ylabel: str, key: str, bars: tuple[Sequence[int], Sequence[int]] | None = None,
    bar_label: str = "", width: float = 5.2, height: float = 2.1,
) -> str:  # fmt: skip
    """Lines over time (a threshold line among them) and optional counts as bars on a second axis; SVG."""
    with matplotlib.rc_context(_rc()):
        legend = len(lines) > 1 or bars is not None
        fig, ax = _figure(width, height, right=0.55 if bars is not None else 0.12, top=0.3 if legend else 0.12)
        if bars is not None and len(bars[0]):
            bx = _days(bars[0])
            step = float(np.median(np.diff(bx))) if len(bx) > 1 else 1 / 24
            twin = ax.twinx()
            twin.bar(bx, np.asarray(bars[1], dtype=float), width=step * 0.8, color="#cccccc",
                     align="center", label=bar_label, zorder=0)  # fmt: skip
            twin.set_ylabel(bar_label, parse_math=False)
            twin.grid(visible=False)
            twin.spines["right"].set_visible(True)
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
        colors = iter(LINE_COLORS)
        markers = sum(not line.threshold for line in lines) <= 2  # dots on a busy chart only add bytes
        for line in lines:
            _draw_line(ax, line, THRESHOLD_COLOR if line.threshold else next(colors, "#333333"), markers)
        _date_axis(ax)
        ax.set_ylabel(ylabel, parse_math=False)
        if legend:
            box = ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), borderaxespad=0.2,
                               ncols=min(4, len(lines) + 1), fontsize=6.5)  # fmt: skip
            for text in box.get_texts():
                text.set_parse_math(False)  # labels may be feature names: a "$" is not mathtext
        return _svg(fig, key)


def _draw_line(ax: Axes, line: Line, color: str, markers: bool) -> None:
    if not line.xs:
        return
    xs, ys = _days(line.xs), _floats(line.ys)
    if line.threshold:
        ax.step(xs, ys, where="mid", color=color, linestyle=(0, (4, 2)), linewidth=0.9, label=line.label)
        return
    if line.band is not None:
        ax.fill_between(xs, _floats(line.band[0]), _floats(line.band[1]), color=color, alpha=0.15, linewidth=0)
    marker = "o" if markers and len(xs) <= 60 else None
    ax.plot(xs, ys, color=color, linestyle="--" if line.dashed else "-", marker=marker, markersize=2.2,
            label=line.label)  # fmt: skip
    hit = np.asarray(line.breaches, dtype=bool) if len(line.breaches) == len(xs) else np.zeros(len(xs), bool)
    if hit.any():
        ax.plot(xs[hit], ys[hit], linestyle="none", marker="o", markersize=3.5, color=THRESHOLD_COLOR)


def numeric_distribution(reference: Mapping[str, Any], current: Mapping[str, Any], *, key: str) -> str:
    """Reference (filled) and current (outline) shares of rows over a common equal-width grid; "" if unusable."""
    ref, cur = _histogram(reference), _histogram(current)
    if ref is None or cur is None:
        return ""
    lo = min(_quantile(*ref, 0.01), _quantile(*cur, 0.01))
    hi = max(_quantile(*ref, 0.99), _quantile(*cur, 0.99))
    if not hi > lo:
        pad = max(abs(lo) * 0.05, 0.5)
        lo, hi = lo - pad, hi + pad
    grid = np.linspace(lo, hi, DISPLAY_BINS + 1)
    with matplotlib.rc_context(_rc()):
        fig, ax = _figure(3.6, 2.1)
        ax.stairs(_regrid(*ref, grid), grid, fill=True, color=REFERENCE_COLOR, alpha=0.55, label="reference")
        ax.stairs(_regrid(*cur, grid), grid, color=CURRENT_COLOR, linewidth=1.3, label="current")
        ax.set_ylabel("share of rows")
        ax.legend(loc="upper right")
        return _svg(fig, key)


def categorical_distribution(reference: Mapping[str, Any], current: Mapping[str, Any], *, key: str) -> str:
    """Paired horizontal bars per category (the most frequent, the rest pooled); "" if unusable."""
    ref, cur = _categories(reference), _categories(current)
    if ref is None or cur is None:
        return ""
    ref_total, cur_total = sum(ref.values()) or 1.0, sum(cur.values()) or 1.0
    shares = {c: (ref.get(c, 0.0) / ref_total, cur.get(c, 0.0) / cur_total) for c in {*ref, *cur}}
    order = sorted(shares, key=lambda c: (-max(shares[c]), c))
    shown, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    rows = [(c, *shares[c]) for c in shown]
    if rest:
        rows.append((f"({len(rest)} others)", sum(shares[c][0] for c in rest), sum(shares[c][1] for c in rest)))
    rows.reverse()  # barh draws bottom-up: the most frequent on top
    y = np.arange(len(rows), dtype=float)
    with matplotlib.rc_context(_rc()):
        fig, ax = _figure(3.6, 0.75 + 0.17 * len(rows), left=1.45)
        ax.barh(y + 0.2, [r[1] for r in rows], height=0.4, color=REFERENCE_COLOR, label="reference")
        ax.barh(y - 0.2, [r[2] for r in rows], height=0.4, color=CURRENT_COLOR, label="current")
        ax.set_yticks(y, [_short(r[0]) for r in rows], parse_math=False)
        ax.set_xlabel("share of rows")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        return _svg(fig, key)


def _figure(
    width: float, height: float, *, left: float = 0.62, right: float = 0.12, top: float = 0.12
) -> tuple[Figure, Axes]:
    """A figure with fixed margins in inches (a layout engine would draw every chart twice)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=0.42 / height, top=1 - top / height)
    ax = fig.subplots()
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))  # fewer ticks: ticks are most of the drawing time
    fig.patch.set_visible(False)  # no white rectangles: the page is the background
    ax.patch.set_visible(False)
    return fig, ax


def _histogram(hist: Mapping[str, Any]) -> tuple[FloatArray, FloatArray, float, float] | None:
    """(edges, inner counts, count below the first edge, count at/above the last) or None if malformed."""
    try:
        edges = np.asarray(hist.get("edges") or [], dtype=float)
        counts = np.asarray(hist.get("counts") or [], dtype=float)
    except (TypeError, ValueError, AttributeError):
        return None
    if edges.ndim != 1 or len(edges) < 2 or not np.isfinite(edges).all() or not np.isfinite(counts).all():
        return None
    if len(counts) == len(edges) + 1:
        below, inner, above = float(counts[0]), counts[1:-1], float(counts[-1])
    elif len(counts) == len(edges) - 1:
        below, inner, above = 0.0, counts, 0.0
    else:
        return None
    if below + float(inner.sum()) + above <= 0:
        return None
    return edges, inner, below, above


def _quantile(edges: FloatArray, inner: FloatArray, below: float, above: float, q: float) -> float:
    at_edges = below + np.concatenate(([0.0], np.cumsum(inner)))
    total = at_edges[-1] + above
    i = int(np.searchsorted(at_edges, q * total, side="left"))
    return float(edges[min(i, len(edges) - 1)])


def _regrid(edges: FloatArray, inner: FloatArray, below: float, above: float, grid: FloatArray) -> FloatArray:
    """Shares of all rows per display bin, spreading each source bin's count evenly over its width (the CDF
    interpolated linearly between edges); mass left of the grid goes to the first bin, right of it to the last."""
    at_edges = below + np.concatenate(([0.0], np.cumsum(inner)))
    total = float(at_edges[-1]) + above
    cdf = np.interp(grid, edges, at_edges)
    out = np.diff(cdf)
    out[0] += cdf[0]
    out[-1] += total - cdf[-1]
    return np.asarray(out / total if total > 0 else out, dtype=np.float64)


def _categories(hist: Mapping[str, Any]) -> dict[str, float] | None:
    names, counts = hist.get("categories"), hist.get("counts")
    if not isinstance(names, Sequence) or not isinstance(counts, Sequence) or len(names) != len(counts):
        return None
    out: dict[str, float] = {}
    for name, count in zip(names, counts, strict=True):
        if isinstance(count, int | float) and math.isfinite(count):
            out[str(name)] = out.get(str(name), 0.0) + float(count)
    return out or None


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def _days(ms: Sequence[int]) -> FloatArray:
    return np.asarray(mdates.date2num(np.asarray(ms, dtype="datetime64[ms]")), dtype=np.float64)  # type: ignore[no-untyped-call]


def _floats(values: Sequence[float | None]) -> FloatArray:
    return np.asarray([math.nan if v is None else float(v) for v in values], dtype=float)


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(tz=UTC, minticks=3, maxticks=6)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]


def _svg(fig: Figure, key: str) -> str:
    buffer = io.StringIO()
    with warnings.catch_warnings():  # an odd time span only costs a coarser axis, never the report
        warnings.filterwarnings("ignore", message="AutoDateLocator was unable", category=UserWarning)
        fig.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    return compact_svg(buffer.getvalue(), prefix=f"{key}-")


def compact_svg(svg: str, *, prefix: str) -> str:
    """matplotlib's SVG made small and unique-id'd for inlining (see the module docstring)."""
    svg = svg[svg.find("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>|<style[^>]*>.*?</style>|<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r">\s+<", "><", svg).replace("<defs></defs>", "")
    svg = _GEOMETRY.sub(lambda m: f'{m[1]}="{_NUMBER.sub(_round, m[2])}"', svg)
    svg = _FONT_FAMILY.sub("", svg).replace(" \nL ", " L ").replace(' \n"', '"').replace("\nz\n", "z")
    svg = re.sub(r' transform="rotate\(-0 [^"]*"', "", svg)
    used = {a or b for a, b in _REFERENCE.findall(svg)}
    svg = re.sub(r' id="([^"]+)"', lambda m: f' id="{prefix}{m[1]}"' if m[1] in used else "", svg)
    return _REFERENCE.sub(lambda m: f"url(#{prefix}{m[1]})" if m[1] else f'href="#{prefix}{m[2]}"', svg)


def _round(match: re.Match[str]) -> str:
    text = f"{float(match[0]):.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text
