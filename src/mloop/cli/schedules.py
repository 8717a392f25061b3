"""``mloop schedules``: cron schedules (UTC) that trigger published pipelines; run by ``mloop scheduler``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.common import JsonOpt, open_client

if TYPE_CHECKING:
    from mloop.entities import Schedule

__all__ = ["app"]

app = typer.Typer(help="Schedules: trigger a published pipeline on a cron (UTC).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]


def _show(items: Sequence[Schedule], as_json: bool) -> None:
    from mloop.cli.output import format_time, print_json, table

    if as_json:
        print_json([s.to_dict() for s in items])
        return
    table(
        ["name", "pipeline", "cron (UTC)", "params", "missed", "state", "last fire", "next fire"],
        [[s.name, s.target, s.cron, ", ".join(f"{k}={v!r}" for k, v in s.params.items()), s.missed,
          "paused" if s.paused else "active", format_time(s.last_fire_at), format_time(s.next_fire_at)]
         for s in items],
    )  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    pipeline: Annotated[str, typer.Option("--pipeline", metavar="NAME[/VERSION]",
                                          help="A published pipeline: NAME (newest at each fire) or NAME/VERSION.")],
    cron: Annotated[str, typer.Option("--cron", help="Five cron fields in UTC, e.g. '0 3 * * *'.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE",
                                                    help="A parameter override stored with the schedule.")] = None,
    missed: Annotated[str, typer.Option("--missed", metavar="skip|run-once",
                                        help="Fire times missed while no scheduler ran: skip them (default) or "
                                             "run once for the newest.")] = "skip",
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Create a schedule (active at once; `mloop scheduler` fires it)."""
    from mloop.pipelines.schedules import create_schedule
    from mloop.pipelines.trigger import parse_overrides

    with open_client(ctx) as client:
        made = create_schedule(client, name, pipeline=pipeline, cron=cron, params=parse_overrides(param or []),
                               missed=missed)  # fmt: skip
    _show([made], as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List schedules with their next fire time (UTC)."""
    from mloop.pipelines.schedules import list_schedules

    with open_client(ctx) as client:
        items = list_schedules(client)
    _show(items, as_json)


@app.command("show")
def show(
    ctx: typer.Context,
    name: NameArg,
    fires: Annotated[int, typer.Option("--fires", min=1, help="How many recent fires to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show a schedule and its recent fires (nominal time, when claimed, missed times folded into it)."""
    from mloop.cli.output import format_time, print_json, table
    from mloop.pipelines.schedules import show_schedule

    with open_client(ctx) as client:
        schedule, recent = show_schedule(client, name, fires=fires)
    if as_json:
        print_json({**schedule.to_dict(), "fires": [f.to_dict() for f in recent]})
        return
    _show([schedule], False)
    table(["fire time (UTC)", "claimed", "by", "missed"],
          [[format_time(f.fire_time), format_time(f.claimed_at), f.actor, f.missed] for f in recent])  # fmt: skip


@app.command("pause")
def pause(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop firing a schedule until it is resumed."""
    from mloop.pipelines.schedules import pause_schedule

    with open_client(ctx) as client:
        _show([pause_schedule(client, name)], as_json)


@app.command("resume")
def resume(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Fire a paused schedule again from now on (times passed while paused never fire)."""
    from mloop.pipelines.schedules import resume_schedule

    with open_client(ctx) as client:
        _show([resume_schedule(client, name)], as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Delete a schedule (its past runs stay)."""
    from mloop.cli.output import print_json
    from mloop.pipelines.schedules import delete_schedule

    with open_client(ctx) as client:
        gone = delete_schedule(client, name)
    if as_json:
        print_json(gone.to_dict())
    else:
        typer.echo(f"deleted schedule {gone.name}")
