"""The ``mloop`` command: a Typer app whose commands each call one library function.

Only ``typer`` and the command modules (which import nothing heavy at module level) are imported here, so
``mloop --help`` stays fast. Errors of the :class:`~mloop.errors.MloopError` tree become ``error: <message>``
on stderr and the exit code of the error's class; they never show a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mloop.cli.common import Globals

__all__ = ["build_app", "main"]

# The commands in the order `mloop --help` lists them: name -> (module in mloop.cli, attribute, kind). A command
# line that names one is built with that one alone (its module imported, its parameters read), not all of them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("workspace", "init", "command"),
    "info": ("workspace", "info", "command"),
    "experiments": ("experiments", "app", "group"),
    "runs": ("runs", "app", "group"),
    "events": ("events", "app", "group"),
    "data": ("data", "app", "group"),
    "lineage": ("lineage", "lineage", "command"),
    "models": ("models", "app", "group"),
    "pipelines": ("published", "pipelines_app", "group"),  # the group with its published-pipeline commands
    "schedules": ("schedules", "app", "group"),
    "compute": ("compute", "app", "group"),
    "scheduler": ("scheduler", "scheduler", "command"),
    "evaluate": ("evaluate", "evaluate", "command"),
    "serve": ("serve", "serve", "command"),
    "profile": ("profile", "profile", "command"),
    "score": ("score", "score", "command"),
    "package": ("package", "package", "command"),
    "deploy": ("deploy", "app", "group"),
    "monitors": ("monitors", "app", "group"),
    "automations": ("automations", "app", "group"),
    "gc": ("gc", "gc", "command"),
    "demo": ("demo", "demo", "command"),
}
_ROOT_OPTIONS_WITH_VALUE = frozenset({"--uri", "--artifacts"})


class MloopGroup(TyperGroup):
    """The root group: maps :class:`~mloop.errors.MloopError` to its exit code for every subcommand."""

    def invoke(self, ctx: Any) -> Any:
        from mloop.errors import MloopError

        try:
            return super().invoke(ctx)
        except MloopError as exc:
            from mloop.cli.output import report_error

            raise typer.Exit(report_error(exc)) from None


def build_app(only: str | None = None) -> typer.Typer:
    """The ``mloop`` app with every command, or with the command ``only`` (what :func:`main` runs)."""
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
    app.callback()(root)
    for name, (module, attribute, kind) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(import_module(f"mloop.cli.{module}"), attribute)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def _version(value: bool) -> None:
    if value:
        from mloop import __version__

        typer.echo(f"mloop {__version__}")
        raise typer.Exit()


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


def _invoked(argv: list[str]) -> str | None:
    """The command a command line runs, when it names a known one; ``None`` (build them all) otherwise."""
    args = iter(argv)
    for arg in args:
        if arg in _ROOT_OPTIONS_WITH_VALUE:
            next(args, None)
        elif arg.startswith("-"):
            if arg.partition("=")[0] not in _ROOT_OPTIONS_WITH_VALUE:
                return None  # --help, --version, or an unknown option: the whole app answers
        else:
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    """``app``: the whole app, built on first use (tests and docs/gen_cli.py import it)."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    from mloop.errors import MloopError

    try:
        build_app(_invoked(sys.argv[1:]))(prog_name="mloop")
    except MloopError as exc:  # raised outside a command (e.g. while resolving options)
        from mloop.cli.output import report_error

        sys.exit(report_error(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
