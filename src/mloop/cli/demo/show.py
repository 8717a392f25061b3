"""What the demo prints: the pipeline's steps with their cache status, the candidates, and where to look."""

from __future__ import annotations

from typing import Any

__all__ = ["report", "show_pipeline", "stages"]

_STYLES = {"cached": "green", "ran": "cyan", "failed": "red", "skipped": "dim", "killed": "red"}


def stages(graph: Any) -> str:
    """The steps by depth in the DAG: ``prepare → featurise → train_linear | train_forest → ...``."""
    depth: dict[str, int] = {}
    for name in graph.order:  # topological: every upstream step comes first
        depth[name] = 1 + max((depth[u] for u in graph.upstream[name]), default=-1)
    levels = [[n for n in graph.order if depth[n] == d] for d in range(max(depth.values(), default=-1) + 1)]
    return " → ".join(" | ".join(level) for level in levels)


def show_pipeline(out: Any, result: Any) -> None:
    """A Rich table of the run's steps: ran or reused from the cache, the step's run, its time, and why."""
    from rich.table import Table
    from rich.text import Text

    counts = {status: sum(s.status == status for s in result.steps.values()) for status in ("ran", "cached")}
    if counts["cached"] == len(result.steps):
        summary = f"every step reused from the cache ({counts['cached']} cached)"
    else:
        summary = f"{counts['ran']} ran, {counts['cached']} cached"
    out.print(f"Pipeline [bold]{result.pipeline}[/] run {result.run_id}: {result.status} in "
              f"{result.duration_s:.1f} s — {summary}")  # fmt: skip
    table = Table()
    for col in ("step", "status", "run", "time", "why"):
        table.add_column(col, no_wrap=col != "why")
    for s in result.steps.values():
        took = "-" if s.duration_s is None else f"{s.duration_s:.1f} s"
        table.add_row(s.step, Text(s.status, style=_STYLES.get(s.status, "")), (s.run_id or "-")[-8:], took,
                      Text(s.reason))  # fmt: skip
    out.print(table)


def report(out: Any, client: Any, result: Any, producers: dict[str, Any], choice: dict[str, Any],
           *, hint: str | None) -> None:  # fmt: skip
    """The two candidates (the runs that trained them), production, and the commands to look around."""
    from rich.table import Table

    table = Table(title=f"candidates (experiment {result.experiment!r})")
    for col in ("candidate", "run", "val_accuracy", "val_roc_auc"):
        table.add_column(col)
    for name, run in producers.items():
        mark = " *" if name == choice["winner"] else ""
        scores = choice["scores"][name]
        table.add_row(name + mark, run.id[-8:], f"{scores['val_accuracy']:.4f}", f"{scores['val_roc_auc']:.4f}")
    out.print(table)
    m = result.production_metrics
    if m:
        out.print(f"Production: [bold]{result.production}[/] — holdout roc_auc {m['roc_auc']:.4f}, "
                  f"accuracy {m['accuracy']:.4f}")  # fmt: skip
    else:
        out.print(f"Production: [bold]{result.production}[/]")
    if result.chart is not None:
        out.print(f"Chart of validation accuracy per epoch / stage: {result.chart}")
    out.print("Look around (from that folder, or pass --uri):")
    if hint is not None:
        out.print(hint, markup=False)
    run = result.pipeline_run_id
    for line in (
        f"cd {result.workspace}",
        "mloop pipelines run train_pipeline.py:train    # every step reused; add -p train_forest.trees=200",
        f"mloop pipelines explain {run} train_forest",
        f"mloop pipelines logs {run} register",
        f"mloop runs list --experiment {result.experiment}",
        f"mloop models show {result.production}",
        f"mloop lineage {result.production}",
        "mloop data versions breast-cancer-holdout",
        "mloop events list",
    ):
        out.print(f"  {line}", markup=False, highlight=False)
    out.print(f"Done in {result.seconds:.1f} s.")
