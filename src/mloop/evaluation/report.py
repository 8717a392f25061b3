"""Evaluation reports: one self-contained HTML page (inline SVG charts) or one summary PNG.

Charts are drawn with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state), imported only
when a report is rendered. Pages reference nothing outside themselves: no scripts, fonts or CDNs. SVG output
is deterministic (no date, fixed id salt) so the same inputs give the same bytes.

Inputs are the dicts of :mod:`mloop.evaluation.metrics`: ``confusion`` and ``calibration`` default to
``metrics["confusion_matrix"]`` and ``metrics["calibration"]``; ``roc`` is ``(fpr, tpr)`` as returned by
:func:`roc_curve_points`; ``importance`` is ``[(feature, mean, std), ...]`` (e.g. permutation importance);
``comparison`` is one :meth:`BootstrapResult.to_dict() <mloop.evaluation.compare.BootstrapResult.to_dict>`
or a mapping of names to such dicts (McNemar dicts and plain values are listed too).
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import as_array, as_float_array, check_lengths, encode_classes, resolve_positive

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["evaluation_report_html", "evaluation_report_png", "roc_curve_points"]

Importance = Sequence[tuple[str, float, float]]
_MAX_FEATURES = 30
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:1em}"
    ".charts svg{max-width:520px;height:auto}.warn{color:#a15c00}.good{color:#1a7f37}.bad{color:#b42318}"
)


def roc_curve_points(
    y_true: Any, y_score: Any, max_points: int = 200, *, positive: Any = None
) -> tuple[list[float], list[float]]:
    """ROC curve ``(fpr, tpr)`` from (0, 0) to (1, 1), at most ``max_points`` points for charts.

    The full curve has one point per distinct score (equal to scikit-learn's ``roc_curve`` with
    ``drop_intermediate=False``); longer curves keep the points closest to ``max_points`` even steps of
    ``fpr + tpr``. With a single class in ``y_true`` the curve is undefined and both lists are empty.
    """
    if max_points < 2:
        raise InvalidInput(f"max_points must be >= 2; got {max_points}.")
    yt, score = as_array("y_true", y_true), as_float_array("y_score", y_score)
    check_lengths(y_true=yt, y_score=score)
    codes, labels = encode_classes({"y_true": yt}, None, positive)
    y_pos = codes["y_true"] == resolve_positive(labels, positive, [])
    n_pos = int(np.count_nonzero(y_pos))
    if n_pos in (0, yt.size):
        return [], []
    order = np.argsort(-score, kind="stable")
    ordered = score[order]
    last_of_value = np.concatenate((np.flatnonzero(ordered[1:] != ordered[:-1]), [yt.size - 1]))
    tps = np.cumsum(y_pos[order])[last_of_value]
    fpr = np.concatenate(([0.0], (last_of_value + 1 - tps) / (yt.size - n_pos)))
    tpr = np.concatenate(([0.0], tps / n_pos))
    if fpr.size > max_points:
        keep = np.searchsorted(fpr + tpr, np.linspace(0.0, 2.0, max_points))
        keep = np.unique(np.concatenate(([0], np.minimum(keep, fpr.size - 1), [fpr.size - 1])))
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr.tolist(), tpr.tolist()


def evaluation_report_html(
    title: str,
    metrics: Mapping[str, Any],
    *,
    task: str,
    confusion: Mapping[str, Any] | None = None,
    roc: tuple[Sequence[float], Sequence[float]] | None = None,
    calibration: Mapping[str, Any] | None = None,
    importance: Importance | None = None,
    comparison: Mapping[str, Any] | None = None,
) -> str:
    """A self-contained HTML page: metrics table, warnings, per-class table, charts, comparison."""
    panels = _panels(metrics, confusion, roc, calibration, importance)
    rows = _comparison_rows(comparison)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title><style>{_STYLE}</style></head>',
        f"<body><h1>{_esc(title)}</h1><p>Task: <b>{_esc(task)}</b>"
        + (f" &middot; {metrics['n_rows']} rows" if "n_rows" in metrics else "")
        + "</p>",
        "<h2>Metrics</h2>",
        _table(["metric", "value"], [[k, _fmt(v)] for k, v in _scalars(metrics)]),
    ]
    if metrics.get("warnings"):
        items = "".join(f"<li>{_esc(w)}</li>" for w in metrics["warnings"])
        parts.append(f'<h3>Warnings</h3><ul class="warn">{items}</ul>')
    if metrics.get("per_class"):
        cols = ["label", "precision", "recall", "f1", "support"]
        parts += ["<h2>Per class</h2>", _table(cols, [[_fmt(r.get(c)) for c in cols] for r in metrics["per_class"]])]
    if rows.bootstrap:
        parts.append("<h2>Champion vs challenger</h2>")
        cols = ["metric", "champion", "challenger", "improvement", "CI", "P(improvement ≤ 0)", "rows"]
        parts.append(_table(cols, [_bootstrap_cells(r) for r in rows.bootstrap]))
        panels.append(("Improvement of challenger (CI)", lambda ax: _draw_comparison(ax, rows.bootstrap)))
    if rows.other:
        parts.append(_table(["check", "result"], rows.other))
    if panels:
        parts.append('<h2>Charts</h2><div class="charts">')
        # A distinct id salt per chart: inline SVGs share one id space (clip paths are referenced by id).
        parts += [f"<figure>{_svg(draw, caption, f'mloop-{i}')}</figure>" for i, (caption, draw) in enumerate(panels)]
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def evaluation_report_png(
    title: str,
    metrics: Mapping[str, Any],
    *,
    task: str,
    confusion: Mapping[str, Any] | None = None,
    roc: tuple[Sequence[float], Sequence[float]] | None = None,
    calibration: Mapping[str, Any] | None = None,
    importance: Importance | None = None,
    comparison: Mapping[str, Any] | None = None,
    dpi: int = 100,
) -> bytes:
    """One PNG: a panel of key metrics plus every chart the HTML report would draw."""
    figure_cls = _figure_class()
    panels = _panels(metrics, confusion, roc, calibration, importance)
    rows = _comparison_rows(comparison)
    if rows.bootstrap:
        panels.append(("Improvement of challenger (CI)", lambda ax: _draw_comparison(ax, rows.bootstrap)))
    lines = [f"task: {task}", *[f"{k}: {_fmt(v)}" for k, v in _scalars(metrics)][:18]]
    panels.insert(0, ("Metrics", lambda ax: _draw_text(ax, lines)))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = figure_cls(figsize=(5.2 * ncols, 4.4 * nrows), layout="constrained")
    fig.suptitle(title)
    for i, (caption, draw) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.set_title(caption, fontsize=10)
        draw(ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ drawing
def _figure_class() -> type[Figure]:
    # Figure.savefig picks the Agg/SVG canvas for the format itself: no pyplot, no global backend switch.
    from matplotlib.figure import Figure

    return Figure


def _svg(draw: Any, caption: str, salt: str) -> str:
    import matplotlib

    figure_cls = _figure_class()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig = figure_cls(figsize=(5.2, 4.2), layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(caption, fontsize=10)
        draw(ax)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _panels(
    metrics: Mapping[str, Any],
    confusion: Mapping[str, Any] | None,
    roc: tuple[Sequence[float], Sequence[float]] | None,
    calibration: Mapping[str, Any] | None,
    importance: Importance | None,
) -> list[tuple[str, Any]]:
    confusion = confusion if confusion is not None else metrics.get("confusion_matrix")
    calibration = calibration if calibration is not None else metrics.get("calibration")
    panels: list[tuple[str, Any]] = []
    if confusion:
        panels.append(("Confusion matrix (rows: true)", lambda ax: _draw_confusion(ax, confusion)))
    if roc is not None and len(roc[0]):
        auc = metrics.get("roc_auc")
        panels.append(
            (f"ROC curve (AUC {_fmt(auc)})" if auc is not None else "ROC curve", lambda ax: _draw_roc(ax, roc))
        )
    if calibration:
        panels.append((f"Calibration (ECE {_fmt(metrics.get('ece'))})", lambda ax: _draw_calibration(ax, calibration)))
    if importance:
        panels.append(("Feature importance", lambda ax: _draw_importance(ax, importance)))
    return panels


def _draw_confusion(ax: Axes, confusion: Mapping[str, Any]) -> None:
    matrix = np.asarray(confusion["matrix"], dtype=np.float64)
    labels = [str(x) for x in confusion.get("labels", range(matrix.shape[0]))]
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=45 if len(labels) > 4 else 0)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if matrix.size <= 144:
        high = matrix.max() / 2 if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{int(value)}", ha="center", va="center", color="white" if value > high else "black")


def _draw_roc(ax: Axes, roc: tuple[Sequence[float], Sequence[float]]) -> None:
    ax.plot(roc[0], roc[1], lw=2)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)


def _draw_calibration(ax: Axes, calibration: Mapping[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    ax.plot(calibration["mean_predicted"], calibration["fraction_positive"], marker="o", label="model")
    ax.set_xlabel(f"mean predicted probability ({calibration.get('strategy', '')} bins)")
    ax.set_ylabel("fraction of positives")
    ax.legend(loc="upper left")


def _draw_importance(ax: Axes, importance: Importance) -> None:
    top = sorted(importance, key=lambda r: -abs(float(r[1])))[:_MAX_FEATURES][::-1]
    ax.barh([str(r[0]) for r in top], [float(r[1]) for r in top], xerr=[float(r[2]) for r in top], color="#4c78a8")
    ax.set_xlabel("importance (mean ± std)")
    ax.tick_params(axis="y", labelsize=8)


def _draw_comparison(ax: Axes, rows: list[Mapping[str, Any]]) -> None:
    names = [str(r.get("metric", "?")) for r in rows]
    mid = [float(r["improvement"]) for r in rows]
    low = [float(r.get("ci_low", math.nan)) for r in rows]
    high = [float(r.get("ci_high", math.nan)) for r in rows]
    err = np.nan_to_num([np.subtract(mid, low), np.subtract(high, mid)])
    ax.errorbar(mid, range(len(rows)), xerr=np.abs(err), fmt="o", capsize=4)
    ax.axvline(0, color="grey", ls="--", lw=1)
    ax.set_yticks(range(len(rows)), names)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("improvement (positive = challenger better)")


def _draw_text(ax: Axes, lines: list[str]) -> None:
    ax.axis("off")
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9, transform=ax.transAxes)


# ------------------------------------------------------------------------------------------- tables
class _Html(str):
    """Markup built here from escaped parts; inserted into tables as is."""

    __slots__ = ()


@dataclass
class _ComparisonRows:
    bootstrap: list[Mapping[str, Any]] = field(default_factory=list)
    other: list[list[str]] = field(default_factory=list)


def _comparison_rows(comparison: Mapping[str, Any] | None) -> _ComparisonRows:
    rows = _ComparisonRows()
    if not comparison:
        return rows
    items = {comparison.get("metric", "comparison"): comparison} if "improvement" in comparison else comparison
    for name, value in items.items():
        if isinstance(value, Mapping) and "improvement" in value:
            rows.bootstrap.append({"metric": name, **value})
        elif isinstance(value, Mapping) and "b01" in value:
            rows.other.append(
                [
                    f"McNemar ({name})",
                    f"A wrong/B right {value['b01']}, A right/B wrong {value['b10']}, "
                    f"p = {_fmt(value.get('p_value'))} ({value.get('method', '')})",
                ]
            )
        else:
            rows.other.append([str(name), _fmt(value)])
    return rows


def _bootstrap_cells(r: Mapping[str, Any]) -> list[str]:
    conf = float(r.get("confidence", math.nan))
    better = float(r.get("ci_low", math.nan)) > 0
    ci = f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}] at {conf:.0%}"
    improvement = _Html(f'<span class="{"good" if better else "bad"}">{_esc(_fmt(r["improvement"]))}</span>')
    rows = f"{r.get('n_rows_used', '')}/{r.get('n_rows', '')}"
    return [str(r["metric"]), _fmt(r.get("a")), _fmt(r.get("b")), improvement, ci, _fmt(r.get("p_value_like")), rows]


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, _Html) else _esc(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _scalars(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in metrics.items() if isinstance(v, int | float | str | bool) and k not in ("task",)]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        return "undefined" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _esc(value: Any) -> str:
    return html.escape(str(value))
