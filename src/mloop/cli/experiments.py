"""``mloop experiments``: the experiments of the workspace."""

from __future__ import annotations

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["app"]

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """List experiments, oldest first."""
    from mloop.cli.output import format_time, print_json, table

    with open_client(ctx) as client:
        experiments = client.list_experiments()
    if as_json:
        print_json([e.to_dict() for e in experiments])
        return
    table(
        ["name", "id", "created", "deleted"],
        [[e.name, e.id, format_time(e.created_at), "yes" if e.deleted else ""] for e in experiments],
        caption=None if experiments else "No experiments yet: start a run, or try `mloop demo`.",
        no_wrap=["id"],
    )
