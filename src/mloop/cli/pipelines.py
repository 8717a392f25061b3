"""``mloop pipelines``: run a pipeline from a file, resume a run, plan it, explain a step's caching, show logs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["app"]

app = typer.Typer(help="Pipelines: steps with cached, tracked, parallel runs.", no_args_is_help=True)

SpecArg = Annotated[
    str,
    typer.Argument(metavar="FILE:NAME", help="A Python file and the Pipeline variable in it (NAME optional if one)."),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", metavar="KEY=VALUE",
                 help="A parameter: STEP.NAME=VALUE or NAME=VALUE (every step with it). VALUE is JSON, else text."),
]  # fmt: skip
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="A pipeline run id (or its first or last 8+ characters).")]


WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Processes (default: the CPUs).")]
ComputeOpt = Annotated[
    str | None,
    typer.Option(
        "--compute", metavar="NAME", help="A compute target (`mloop compute list`; default: the workspace's)."
    ),
]


def _params(items: list[str] | None) -> dict[str, Any]:
    from mloop.pipelines.trigger import parse_overrides

    return parse_overrides(items or [])


def _show(result: Any, *, plan: bool) -> None:
    from mloop.cli.output import cell, heading, short_id, table

    styles = {"cached": "green", "ran": "cyan", "to run": "yellow", "failed": "red", "skipped": "dim", "killed": "red"}
    if not plan:
        heading(f"pipeline {result.pipeline}: run {result.run_id} {result.status} in {result.duration_s:.2f} s")
    rows = []
    for s in result.steps.values():
        fallback = [o for o, v in s.outputs.items() if v.get("fallback")]
        why = s.reason + (f" [outputs {fallback} stored with the pickle fallback]" if fallback else "")
        row = [s.step, cell(s.status, styles.get(s.status, "")), why]
        if not plan:
            row.insert(2, short_id(s.run_id) if s.run_id else "-")
        rows.append(row)
    table(["step", "status", "why"] if plan else ["step", "status", "run", "why"], rows)
    for s in result.steps.values():
        if s.error:
            typer.echo(f"\nstep {s.step} failed:\n{s.error}", err=True)


@app.command("run")
def run(
    ctx: typer.Context,
    spec: SpecArg,
    param: ParamOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Run every step, ignoring the cache.")] = False,
    workers: WorkersOpt = None,
    compute: ComputeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline: independent steps in parallel, unchanged steps reused; exits 1 if a step failed."""
    from mloop.cli.output import print_json
    from mloop.pipelines import LocalExecutor, load_pipeline

    pipeline = load_pipeline(spec)
    params = _params(param)
    with open_client(ctx) as client:
        if workers is not None and compute is not None:
            from mloop.errors import InvalidInput

            raise InvalidInput("Give --compute NAME or --workers N, not both (a target sets its own workers).")
        target = LocalExecutor(workers) if workers is not None else compute  # None: the workspace's default target
        result = pipeline.run(params, force=force, compute=target, client=client)
    if as_json:
        print_json(result.to_dict())
    else:
        _show(result, plan=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run: RunArg,
    file: Annotated[
        str | None,
        typer.Option("--file", metavar="FILE:NAME", help="Load the pipeline from here, not from the recorded file."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Resume even if finished steps' code changed, or the run looks still running."),
    ] = False,
    workers: WorkersOpt = None,
    compute: ComputeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run only the steps of a pipeline run that did not finish, as a new run; exits 1 if a step failed."""
    from mloop.cli.output import print_json
    from mloop.errors import InvalidInput
    from mloop.pipelines import LocalExecutor
    from mloop.pipelines import resume as resume_pipeline

    if workers is not None and compute is not None:
        raise InvalidInput("Give --compute NAME or --workers N, not both (a target sets its own workers).")
    target = LocalExecutor(workers) if workers is not None else compute  # None: the workspace's default target
    with open_client(ctx) as client:
        result = resume_pipeline(run, pipeline=file, force=force, compute=target, client=client)
    if as_json:
        print_json(result.to_dict())
    else:
        typer.echo(f"resuming pipeline run {result.resumed_from}")
        _show(result, plan=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command("plan")
def plan(ctx: typer.Context, spec: SpecArg, param: ParamOpt = None, as_json: JsonOpt = False) -> None:
    """Show each step as cached or to run, and why, without running anything."""
    from mloop.cli.output import print_json
    from mloop.pipelines import load_pipeline

    pipeline = load_pipeline(spec)
    params = _params(param)
    with open_client(ctx) as client:
        result = pipeline.plan(params, client=client)
    if as_json:
        print_json(result.to_dict())
    else:
        _show(result, plan=True)


@app.command("explain")
def explain(
    ctx: typer.Context,
    run: RunArg,
    step: Annotated[str, typer.Argument(metavar="STEP", help="The step's name.")],
    as_json: JsonOpt = False,
) -> None:
    """Why a step of a pipeline run was reused or run: which key components changed since the run before."""
    from mloop.cli.output import print_json, table
    from mloop.pipelines import explain_step

    with open_client(ctx) as client:
        info = explain_step(client, run, step)
    if as_json:
        print_json(info)
        return
    typer.echo(f"step {step} of pipeline run {info['run_id']}: {info['status']} ({info['reason']})")
    typer.echo(f"key {info['key']}")
    if info["previous_run_id"] is None:
        typer.echo("No earlier run of this step to compare with.")
    elif not info["changes"]:
        typer.echo(f"Same key as the previous run of this step ({info['previous_run_id']}).")
    else:
        typer.echo(f"Changed since the previous run of this step ({info['previous_run_id']}):")
        table(["component", "change"], [[c["component"], c["change"]] for c in info["changes"]])


@app.command("logs")
def logs(
    ctx: typer.Context,
    run: RunArg,
    step: Annotated[str | None, typer.Argument(metavar="[STEP]", help="One step (default: every step).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the captured stdout, stderr and error of a pipeline run's steps."""
    from mloop.cli.output import print_json
    from mloop.pipelines import step_logs

    with open_client(ctx) as client:
        found = step_logs(client, run, step)
    if as_json:
        print_json(found)
        return
    for name, files in found.items():
        if not files:
            typer.echo(f"== {name}: no output")
        for file, text in sorted(files.items()):
            typer.echo(f"== {name} {file}")
            typer.echo(text.rstrip("\n"))
