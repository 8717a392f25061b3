"""The ``mloop`` command: a Typer app whose commands each call one library function.

Only ``typer`` and the command modules (which import nothing heavy at module level) are imported here, so
``mloop --help`` stays fast. Errors of the :class:`~mloop.errors.MloopError` tree become ``error: <message>``
on stderr and the exit code of the error's class; they never show a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mloop.cli import (
    compute,
    data,
    demo,
    evaluate,
    events,
    experiments,
    gc,
    lineage,
    models,
    pipelines,
    published,
    runs,
    scheduler,
    schedules,
    workspace,
)
from mloop.cli.common import Globals

__all__ = ["app", "main"]


class MloopGroup(TyperGroup):
    """The root group: maps :class:`~mloop.errors.MloopError` to its exit code for every subcommand."""

    def invoke(self, ctx: Any) -> Any:
        from mloop.errors import MloopError

        try:
            return super().invoke(ctx)
        except MloopError as exc:
            from mloop.cli.output import report_error

            raise typer.Exit(report_error(exc)) from None


app = typer.Typer(
    name="mloop",
    cls=MloopGroup,
    help=(
        "mloop: self-hosted MLOps in one tool. Track experiments and runs, version datasets (with private "
        "holdouts and lineage), register models, evaluate them and promote them through gates."
    ),
    epilog="The store is chosen by --uri, else MLOOP_URI, else the nearest .mloop workspace, else ~/.mloop.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from mloop import __version__

        typer.echo(f"mloop {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    uri: Annotated[
        str | None,
        typer.Option(
            "--uri",
            metavar="URI",
            help="Metadata store URI, e.g. sqlite:///path/mloop.db. Overrides MLOOP_URI and the workspace.",
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            metavar="URI",
            help="Artifact store: a folder or s3://bucket/prefix. Overrides MLOOP_ARTIFACT_URI.",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Globals(uri or None, artifacts or None)


app.command("init")(workspace.init)
app.command("info")(workspace.info)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(events.app, name="events")
app.add_typer(data.app, name="data")
app.command("lineage")(lineage.lineage)
app.add_typer(models.app, name="models")
pipelines.app.command("publish")(published.publish)  # published pipelines: cli/published.py
pipelines.app.command("trigger")(published.trigger)
pipelines.app.command("published")(published.published)
pipelines.app.command("versions")(published.versions)
pipelines.app.command("alias")(published.alias)
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(schedules.app, name="schedules")
app.add_typer(compute.app, name="compute")
app.command("scheduler")(scheduler.scheduler)
app.command("evaluate")(evaluate.evaluate)
app.command("gc")(gc.gc)
app.command("demo")(demo.demo)


def main() -> None:
    """Console-script entry point."""
    from mloop.errors import MloopError

    try:
        app(prog_name="mloop")
    except MloopError as exc:  # raised outside a command (e.g. while resolving options)
        from mloop.cli.output import report_error

        sys.exit(report_error(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
