"""``mloop evaluate`` and ``mloop models compare``: score registered versions on a (private) holdout.

Evaluation is the only path that may read a private holdout (made by ``mloop data split``); every read is an
audited event, and the evaluation is stored with the version (the promotion gates read it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.common import JsonOpt, local_path, open_client

if TYPE_CHECKING:
    from mloop.entities import Evaluation

__all__ = ["compare", "evaluate", "print_evaluations", "scalar_metrics"]

ModelRefArg = Annotated[
    str, typer.Argument(metavar="MODEL_REF", help="model:<name>/<version> or model:<name>@<alias>.")
]
DataOpt = Annotated[
    str, typer.Option("--data", metavar="DATA_REF", help="The dataset version, e.g. data:churn-holdout/1.")
]

_HIDDEN = frozenset({"n_rows", "positive", "threshold"})  # numeric entries of a metrics dict that are not metrics
_HEADLINE = ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier", "ece", "rmse", "mae", "r2",
             "mape", "median_absolute_error", "mean_error")  # fmt: skip
_LATENCY = ("p50", "p95", "p99", "max")


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of an evaluation, headline ones first (not the confusion matrix, curves or counts)."""
    numeric = {k: float(v) for k, v in metrics.items()
               if k not in _HIDDEN and isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip
    keys = [k for k in _HEADLINE if k in numeric] + sorted(k for k in numeric if k not in _HEADLINE)
    return {k: numeric[k] for k in keys}


def _print_confusion(confusion: Mapping[str, Any]) -> None:
    from mloop.cli.output import cell, heading, table

    labels = [str(label) for label in confusion.get("labels", [])]
    matrix = confusion.get("matrix", [])
    heading("Confusion matrix (rows: true label, columns: prediction)")
    table(["true \\ predicted", *labels],
          [[cell(label, "bold"), *row] for label, row in zip(labels, matrix, strict=False)])  # fmt: skip


def _print_evaluation(e: Evaluation, report: Path | None, top: int) -> None:
    from mloop.cli.output import cell, format_number, heading, stdout_console, table

    console = stdout_console()
    heading(f"Evaluated {e.model_ref} on {e.data_ref} ({e.rows} rows, {e.task}).")
    positive = e.metrics.get("positive")
    table(
        ["metric", "value"], [[k, format_number(v)] for k, v in scalar_metrics(e.metrics).items()], no_wrap=["metric"]
    )
    if positive is not None:
        console.print(cell(f"precision, recall and f1 are for the positive class {positive!r}.", "dim"))
    confusion = e.metrics.get("confusion_matrix")
    if isinstance(confusion, Mapping):
        _print_confusion(confusion)
    if e.latency_ms:
        order = [k for k in _LATENCY if k in e.latency_ms] + sorted(set(e.latency_ms) - set(_LATENCY))
        console.print(cell("Single-row latency: " + ", ".join(
            f"{k} {format_number(e.latency_ms[k])} ms" for k in order)))  # fmt: skip
    if e.importance and top:
        shown = e.importance[:top]
        more = f"Top {len(shown)} of {len(e.importance)}." if len(e.importance) > len(shown) else None
        heading("Permutation importance (drop in score when the column is shuffled)")
        table(["feature", "importance", "± std"],
              [[f, format_number(m), format_number(s)] for f, m, s in shown],
              caption=more)  # fmt: skip
    for warning in e.metrics.get("warnings") or []:
        console.print(cell(f"warning: {warning}", "yellow"))
    if report is not None:
        console.print(cell(f"Report written to {report}", "green"))


def print_evaluations(evaluations: Sequence[Evaluation], limit: int = 5) -> None:
    """The latest evaluations of a version, one line each with its headline metrics."""
    from mloop.cli.output import cell, format_number, format_time, heading, stdout_console, table

    if not evaluations:
        stdout_console().print(cell("Not evaluated: `mloop evaluate REF --data HOLDOUT`.", "dim"))
        return
    rows = []
    for e in evaluations[:limit]:
        metrics = ", ".join(f"{k} {format_number(x)}" for k, x in list(scalar_metrics(e.metrics).items())[:4])
        p95 = e.latency_ms.get("p95")
        gain = ""
        if e.comparison:
            gain = (f"{format_number(e.comparison.get('improvement'))} vs {e.comparison.get('champion')}"
                    f" ({e.comparison.get('metric')})")  # fmt: skip
        rows.append([format_time(e.created_at), e.data_ref, e.task, e.rows, metrics,
                     "-" if p95 is None else f"{format_number(p95)} ms", gain or "-"])  # fmt: skip
    more = f"Latest {limit} of {len(evaluations)}; --json for all." if len(evaluations) > limit else None
    heading("Evaluations")
    table(["evaluated", "data", "task", "rows", "metrics", "p95 latency", "vs champion"], rows, caption=more)


def evaluate(
    ctx: typer.Context,
    model: ModelRefArg,
    data: DataOpt,
    target: Annotated[
        str | None, typer.Option("--target", metavar="COLUMN", help="The label column (default: the model's).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", metavar="TASK", help="classification, regression or anomaly (default: inferred)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE.html", help="Also write the HTML report to FILE.", parser=local_path),
    ] = None,
    top: Annotated[int, typer.Option("--top", metavar="N", min=0, help="Show the N most important features.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a model version on a dataset version and store the result with the version.

    Prints the task's metrics (and the confusion matrix for classifiers), single-row latency and the most
    important features. Private holdouts made by `mloop data split` are readable here, and only here; the
    read is audited. The promotion gates (evaluated(), min_metric, beats) use the stored evaluation.

    \b
    Examples:
      mloop evaluate model:churn/4 --data data:churn-holdout/1
      mloop evaluate churn@staging --data data:churn-holdout/1 --target label --report churn-4.html
    """
    from mloop.cli.output import print_json
    from mloop.registry.reports import evaluate_with_report

    with open_client(ctx) as client:
        result = evaluate_with_report(client, model, data, target=target, task=task, report=report)
    if as_json:
        print_json(result.to_dict())
        return
    _print_evaluation(result.evaluation, result.report, top)


def compare(
    ctx: typer.Context,
    challenger: Annotated[str, typer.Argument(metavar="CHALLENGER_REF", help="The new version, e.g. churn/5.")],
    champion: Annotated[str, typer.Argument(metavar="CHAMPION_REF", help="The one to beat, e.g. churn@production.")],
    data: DataOpt,
    metric: Annotated[
        str, typer.Option("--metric", "-m", metavar="METRIC",
                          help="e.g. roc_auc, accuracy, f1, rmse (default: the task's primary metric).")
    ] = "primary",
    confidence: Annotated[
        float, typer.Option("--confidence", metavar="LEVEL", min=0.5, max=0.999, help="Of the interval.")
    ] = 0.95,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Compare a challenger with a champion on the same holdout rows.

    A paired bootstrap gives the improvement of the metric (positive = better, whatever its direction) with a
    confidence interval; for classifiers McNemar's test says whether the two disagree more than chance. The
    beats() gate passes when the interval's lower bound is above its margin.

    \b
    Examples:
      mloop models compare churn/5 churn@production --data data:churn-holdout/1
      mloop models compare churn/5 churn/4 --data data:churn-holdout/1 --metric accuracy --json
    """
    from mloop.cli.output import cell, format_number, heading, print_json, stdout_console, table
    from mloop.registry.evaluate import compare_versions

    with open_client(ctx) as client:
        result = compare_versions(client, challenger, champion, data, metric=metric, confidence=confidence)
    if as_json:
        print_json(result)
        return
    console = stdout_console()
    name = result["metric"]
    heading(f"{result['challenger']} (challenger) vs {result['champion']} (champion) on {result['data']}, "
            f"{result.get('n_rows_used', result.get('n_rows'))} rows")  # fmt: skip
    low, high, gain = result["ci_low"], result["ci_high"], result["improvement"]
    level = f"{result.get('confidence', confidence):.0%}"
    table(["", name], [
        ["champion", format_number(result["a"])],
        ["challenger", format_number(result["b"])],
        ["improvement", format_number(gain)],
        [f"{level} interval", f"[{format_number(low)}, {format_number(high)}]"],
    ], no_wrap=[""])  # fmt: skip
    mc = result.get("mcnemar")
    if mc:
        console.print(cell(
            f"McNemar ({mc['method']}): challenger right where the champion is wrong on {mc['b01']} rows, the "
            f"reverse on {mc['b10']}; p = {format_number(mc['p_value'])}."))  # fmt: skip
    if low > 0:
        verdict, style = f"The challenger is better on {name} ({level} interval above 0).", "green"
    elif high < 0:
        verdict, style = f"The challenger is worse on {name} ({level} interval below 0).", "red"
    else:
        verdict, style = f"No clear difference on {name}: the {level} interval contains 0.", "yellow"
    console.print(cell(verdict, style))
    for warning in result.get("warnings") or []:
        console.print(cell(f"warning: {warning}", "yellow"))
