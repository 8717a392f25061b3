"""``mloop init`` and ``mloop info``: create a workspace, show which one is in use and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import JsonOpt, globals_of, local_path

__all__ = ["info", "init"]


def init(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Folder to hold the workspace (.mloop/ is created in it).", parser=local_path
        ),
    ] = Path("."),
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URI",
            help="Metadata store URI (default: SQLite in .mloop/mloop.db). E.g. postgresql://host/db.",
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            metavar="URI",
            help="Artifact store: a folder or s3://bucket/prefix (default: .mloop/artifacts).",
        ),
    ] = None,
) -> None:
    """Create a workspace (.mloop/) in DIR.

    By default the workspace is self-contained: SQLite in .mloop/mloop.db and artifacts in .mloop/artifacts.
    Running it again changes nothing. Commands run in DIR or below use this workspace.

    \b
    Examples:
      mloop init
      mloop init . --store postgresql://db.example/mloop --artifacts s3://bucket/mloop
    """
    from mloop.cli.output import cell, stdout_console, table
    from mloop.config import CONFIG_NAME, WORKSPACE_DIRNAME
    from mloop.workspace import init_workspace

    g = globals_of(ctx)
    config = directory.expanduser().resolve() / WORKSPACE_DIRNAME / CONFIG_NAME
    existed = config.is_file()
    ws = init_workspace(directory, store_uri=store or g.uri, artifact_uri=artifacts or g.artifact_uri)
    try:
        settings = ws.settings
        console = stdout_console()
        verb = "Workspace already initialised" if existed else "Initialised workspace"
        console.print(cell(f"{verb} in {settings.workspace}", "bold green"))
        table(
            ["", ""],
            [
                ["config", config],
                ["metadata store", settings.store_uri],
                ["artifacts", settings.artifact_uri],
            ],
            show_header=False,
        )
        if existed and (store or artifacts):
            console.print(
                cell(f"Its configuration was kept; edit {config} to change the store or artifacts.", "yellow")
            )
        console.print("Next: `mloop demo` for a tour, or `import mloop; mloop.start_run()` in your code.")
    finally:
        ws.close()


def info(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """Show which stores are in use and why.

    Prints the metadata store, artifact store, workspace and actor, and where each value came from (an
    option, an environment variable, the workspace file or the default). The metadata store is opened to
    check it: when it does not exist (see `mloop init`) or cannot be reached, the settings are still printed
    (with --json, the message is in "error"), then the error, and the exit code is non-zero.
    """
    from mloop import __version__
    from mloop.cli.output import print_json, table
    from mloop.errors import MloopError
    from mloop.workspace import ARTIFACT_SETTING, open_workspace

    g = globals_of(ctx)
    ws = open_workspace(g.uri, g.artifact_uri)
    failure: MloopError | None = None
    try:
        s = ws.settings
        artifact_uri, artifact_source = s.artifact_uri, s.sources.get("artifact_uri", "")
        try:
            recorded = ws.store.get_setting(ARTIFACT_SETTING)
        except MloopError as exc:
            failure = exc
            recorded = None
        if artifact_uri is None:
            artifact_uri = recorded
        sources = {**s.sources, "artifact_uri": artifact_source}
        workspace = None if s.workspace is None else str(s.workspace)
    finally:
        ws.close()
    if as_json:
        print_json(
            {
                "version": __version__,
                "store_uri": s.store_uri,
                "artifact_uri": artifact_uri,
                "workspace": workspace,
                "actor": s.actor,
                "sources": sources,
                "error": None if failure is None else str(failure),
            }
        )
    else:
        table(
            ["setting", "value", "from"],
            [
                ["metadata store", s.store_uri, sources.get("store_uri", "")],
                ["artifacts", artifact_uri or "(not configured)", artifact_source],
                ["workspace", workspace or "-", ""],
                ["actor", s.actor, sources.get("actor", "MLOOP_USER / workspace [user] / login")],
                ["version", __version__, ""],
            ],
            no_wrap=["setting"],
        )
    if failure is not None:
        raise failure
