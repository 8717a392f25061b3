"""``mloop runs``: list, inspect, compare, delete and restore runs, and fetch their artifacts.

RUN arguments accept a full id, ``run:<id>``, or a unique first or last 8+ characters of an id (tables show
the last 8).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.common import JsonOpt, local_path, open_client, resolve_run

if TYPE_CHECKING:
    from mloop.entities import RunRecord
    from mloop.tracking.details import RunDetails

__all__ = ["app"]

app = typer.Typer(help="Runs: list, inspect, compare, delete; get artifacts.", no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run id, run:<id>, or the first/last 8+ characters.")]
RunsArg = Annotated[list[str], typer.Argument(metavar="RUN", help="Run ids, run:<id>, or first/last 8+ characters.")]


def _status(record: RunRecord) -> Any:
    from mloop.cli.output import STATUS_STYLES, cell

    text = record.status.value + (" (deleted)" if record.deleted else "")
    return cell(text, "dim" if record.deleted else STATUS_STYLES.get(record.status.value, ""))


def _pick_keys(values: Sequence[Mapping[str, object]], first: Sequence[str], limit: int) -> list[str]:
    """Up to ``limit`` keys: ``first`` (if present), then keys that vary across runs, then the most common."""
    counts = Counter(k for v in values for k in v)
    distinct = {k: len({str(v.get(k)) for v in values}) for k in counts}
    ranked = sorted(counts, key=lambda k: (-(distinct[k] > 1), -counts[k], k))
    return list(dict.fromkeys([k for k in first if k in counts] + ranked))[:limit]


def _ordered_keys(order_by: Sequence[str], entity: str) -> list[str]:
    keys = []
    for item in order_by:
        field = item.strip().split()[0] if item.strip() else ""
        if field.startswith(entity + "."):
            keys.append(field[len(entity) + 1 :].strip("`"))
    return keys


@app.command("list")
def list_runs(
    ctx: typer.Context,
    *,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", metavar="NAME", help="Only this experiment (repeatable).")
    ] = None,
    filter_: Annotated[
        str, typer.Option("--filter", "-f", metavar="EXPR", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\".")
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", metavar="FIELD [ASC|DESC]", help='e.g. "metrics.acc DESC" (repeatable).'),
    ] = None,
    max_results: Annotated[int, typer.Option("--max", "-n", metavar="N", min=1, help="Show at most N runs.")] = 100,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Only deleted runs (restorable until `mloop gc`).")
    ] = False,
    all_runs: Annotated[bool, typer.Option("--all", help="Include deleted runs.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first.

    The table shows the last 8 characters of each id (enough for RUN arguments), the status, the duration and
    a few metrics and params, preferring those that differ between runs.

    \b
    Examples:
      mloop runs list -e churn --filter "metrics.auc > 0.8" --order-by "metrics.auc DESC"
      mloop runs list --deleted
      mloop runs list --json
    """
    from mloop.cli.output import cell, format_number, format_time, human_duration, print_json, short_id, table
    from mloop.tracking.search import run_row

    with open_client(ctx) as client:
        found = client.search_runs(
            experiment or None, filter_, order_by or None, max_results, include_deleted=all_runs, deleted_only=deleted
        )
        names = {e.id: e.name for e in client.list_experiments()}
    if as_json:
        print_json([{**run_row(r), "experiment": names.get(r.experiment_id), "deleted": r.deleted} for r in found])
        return
    metric_keys = _pick_keys([r.metrics for r in found], _ordered_keys(order_by or [], "metrics"), 4)
    param_keys = _pick_keys([r.params for r in found], _ordered_keys(order_by or [], "params"), 3)
    show_experiment = len({r.experiment_id for r in found}) > 1
    columns = [
        "id",
        "name",
        *(["experiment"] if show_experiment else []),
        "status",
        "started",
        "duration",
        *metric_keys,
        *param_keys,
    ]
    rows = []
    for r in found:
        rows.append(
            [
                cell(short_id(r.id), "cyan"),
                r.name,
                *([names.get(r.experiment_id, r.experiment_id)] if show_experiment else []),
                _status(r),
                format_time(r.start_time)[:16],
                human_duration(r.duration_ms),
                *(format_number(r.metrics.get(k)) for k in metric_keys),
                *(r.params.get(k) for k in param_keys),
            ]
        )
    if not found:
        caption = "No runs match." if filter_ or experiment or deleted else "No runs yet: try `mloop demo`."
    elif len(found) == max_results:
        caption = f"Showing the first {max_results} runs; use --max for more. Ids are the last 8 characters."
    else:
        caption = f"{len(found)} run(s). Ids are the last 8 characters; `mloop runs show ID` for details."
    table(columns, rows, caption=caption, no_wrap=["id"])


@app.command("show")
def show(ctx: typer.Context, run: RunArg, as_json: JsonOpt = False) -> None:
    """Show a run's details.

    Attributes, params, the latest value of each metric, tags, artifacts (path, size, digest) and the
    environment it ran in (Python, platform, git commit, number of installed packages).
    """
    from mloop.cli.output import print_json
    from mloop.tracking.details import describe_run

    with open_client(ctx) as client:
        details = describe_run(client, run)
    if as_json:
        print_json(details.to_dict())
        return
    _print_run(details)


def _print_run(details: RunDetails) -> None:
    from mloop.cli.output import (
        cell,
        format_number,
        format_time,
        human_duration,
        human_size,
        short_digest,
        stdout_console,
        table,
    )

    record, experiment, artifacts, env = details.run, details.experiment, details.artifacts, details.environment
    console = stdout_console()
    console.print(cell(f"Run {record.name}  run:{record.id}", "bold"))
    table(
        ["attribute", "value"],
        [
            ["experiment", f"{experiment} ({record.experiment_id})"],
            ["status", _status(record)],
            ["started", format_time(record.start_time)],
            ["ended", format_time(record.end_time)],
            ["duration", human_duration(record.duration_ms)],
            ["actor", record.actor],
            ["parent", record.parent_id],
        ],
        no_wrap=["attribute"],
    )
    for title, values in (("params", record.params), ("metrics", record.metrics), ("tags", record.tags)):
        if not values:
            console.print(cell(f"No {title}.", "dim"))
            continue
        table(
            [title[:-1], "value"],
            [[k, format_number(v) if isinstance(v, float) else v] for k, v in sorted(values.items())],
        )
    if artifacts:
        table(
            ["artifact", "size", "digest"],
            [[a.path, human_size(a.size), short_digest(a.digest)] for a in artifacts],
            no_wrap=["digest"],
        )
    else:
        console.print(cell("No artifacts.", "dim"))
    if env is None:
        console.print(cell("Environment not captured.", "dim"))
    else:
        dirty = " (uncommitted changes)" if env.git_dirty is True else ""
        git = f"{env.git_commit[:12]} on {env.git_branch}{dirty}" if env.git_commit else "-"
        table(
            ["environment", "value"],
            [
                ["python", f"{env.python} ({env.implementation})"],
                ["platform", env.platform],
                ["git", git],
                ["packages", f"{env.packages} installed"],
                ["command", env.command],
            ],
            no_wrap=["environment"],
        )


@app.command("compare")
def compare(
    ctx: typer.Context,
    runs: RunsArg,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", metavar="KEY", help="Only this metric (repeatable).")
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", metavar="FILE", help="Also draw metric histories to FILE.png or FILE.html."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side.

    Params (those that differ are marked *) and the latest metrics of each run; --chart also draws the
    history of each metric, one line per run, to a PNG image or a self-contained HTML page.

    \b
    Examples:
      mloop runs compare 1a2b3c4d 5e6f7a8b
      mloop runs compare 1a2b3c4d 5e6f7a8b --metric loss --chart loss.html
    """
    from mloop.cli.output import cell, format_number, human_duration, print_json, short_id, stdout_console, table
    from mloop.tracking.compare import compare_runs, write_chart

    with open_client(ctx) as client:
        ids = [resolve_run(client, r) for r in runs]
        result = compare_runs(client, ids, metrics=metric)
        written = write_chart(client, result.runs, chart, metrics=metric) if chart is not None else None
    if as_json:
        print_json({**result.to_dict(), "chart": None if written is None else str(written)})
        return
    differing = set(result.differing_params)
    rows: list[list[Any]] = [
        ["status", *(_status(r) for r in result.runs)],
        ["duration", *(human_duration(r.duration_ms) for r in result.runs)],
    ]
    for key, values in result.params.items():
        style = "bold yellow" if key in differing else ""
        rows.append(
            [cell(("* " if key in differing else "  ") + f"params.{key}", style), *(cell(v, style) for v in values)]
        )
    rows.extend([f"  metrics.{key}", *(format_number(v) for v in values)] for key, values in result.metrics.items())
    header = ["", *(f"{r.name}\n{short_id(r.id)}" for r in result.runs)]
    table(header, rows, caption="* params that differ between the runs" if differing else None)
    if written is not None:
        stdout_console().print(cell(f"Chart written to {written}", "green"))


def _set_deleted(ctx: typer.Context, runs: Sequence[str], deleted: bool) -> None:
    from mloop.cli.output import stdout_console

    console = stdout_console()
    with open_client(ctx) as client:
        for run in runs:
            run_id = resolve_run(client, run)
            if deleted:
                client.delete_run(run_id)
                console.print(f"Deleted run:{run_id}", highlight=False)
            else:
                client.restore_run(run_id)
                console.print(f"Restored run:{run_id}", highlight=False)
    if deleted:
        console.print("Undo with `mloop runs restore RUN`; `mloop gc` removes deleted runs for good.")


@app.command("delete")
def delete(ctx: typer.Context, runs: RunsArg) -> None:
    """Mark runs deleted (restorable until gc).

    Deleted runs are hidden from listings; `mloop runs restore` undoes it and `mloop gc` purges them.
    """
    _set_deleted(ctx, runs, True)


@app.command("restore")
def restore(ctx: typer.Context, runs: RunsArg) -> None:
    """Restore deleted runs that gc has not purged."""
    _set_deleted(ctx, runs, False)


@app.command("artifacts")
def artifacts(ctx: typer.Context, run: RunArg, as_json: JsonOpt = False) -> None:
    """List a run's artifacts: path, size, digest."""
    from mloop.cli.output import format_time, human_size, print_json, short_digest, table

    with open_client(ctx) as client:
        entries = client.list_artifacts(resolve_run(client, run))
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    total = sum(e.size for e in entries)
    table(
        ["path", "size", "digest", "logged"],
        [[e.path, human_size(e.size), short_digest(e.digest), format_time(e.created_at)] for e in entries],
        caption=f"{len(entries)} artifact(s), {human_size(total)}" if entries else "No artifacts.",
        no_wrap=["digest"],
    )


@app.command("download")
def download(
    ctx: typer.Context,
    run: RunArg,
    path: Annotated[
        str | None, typer.Argument(metavar="PATH", help="An artifact or a folder of them (default: all).")
    ] = None,
    dest: Annotated[
        Path, typer.Option("--dest", "-d", metavar="DIR", help="Where to write them.", parser=local_path)
    ] = Path("."),
) -> None:
    """Download a run's artifacts.

    Every file is verified against its digest. PATH picks one artifact or a folder of them.

    \b
    Examples:
      mloop runs download 1a2b3c4d
      mloop runs download 1a2b3c4d model/ --dest ./restored
    """
    from mloop.cli.output import cell, stdout_console

    with open_client(ctx) as client:
        written = client.download_artifacts(resolve_run(client, run), path, dest)
    stdout_console().print(cell(f"Downloaded to {written}", "green"))
