"""``mloop events``: the audit log. Every state change is an event with its actor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.common import JsonOpt, open_client, resolve_run

if TYPE_CHECKING:
    from mloop.tracking.client import Client

__all__ = ["app"]

app = typer.Typer(help="Events: the audit log (who changed what, when).", no_args_is_help=True)


def _subject(client: Client, text: str) -> str:
    """A run (``run:<id>``, a bare id or its first/last 8+ characters) becomes ``run:<full id>``; other
    references (``workspace:artifacts``, ``experiment:<id>``, ...) are passed through."""
    text = text.strip()
    if ":" in text and not text.startswith("run:"):
        return text
    return f"run:{resolve_run(client, text)}"


@app.command("list")
def list_events(
    ctx: typer.Context,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", metavar="TYPE", help="Only this type, e.g. run.deleted (repeatable)."),
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", "-s", metavar="REF", help="Only events about REF, e.g. run:<id>.")
    ] = None,
    max_events: Annotated[int, typer.Option("--max", "-n", metavar="N", min=1, help="Show the newest N events.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List events (the audit log), oldest first.

    Shows the newest N events that match: their number, time, type, subject, actor and details.

    \b
    Examples:
      mloop events list --type run.deleted --type run.restored
      mloop events list --subject run:01a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6
    """
    import json

    from mloop.cli.output import format_time, print_json, table

    with open_client(ctx) as client:
        found = client.events(types=event_type or None, subject=None if subject is None else _subject(client, subject))
    shown = found[-max_events:]
    if as_json:
        print_json([e.to_dict() for e in shown])
        return
    if not found:
        caption = "No events match."
    elif len(shown) < len(found):
        caption = f"The newest {len(shown)} of {len(found)} events; use --max for more."
    else:
        caption = f"{len(found)} event(s)."
    table(
        ["#", "time", "type", "subject", "actor", "details"],
        [
            [
                e.id,
                format_time(e.time),
                e.type,
                e.subject,
                e.actor,
                json.dumps(dict(e.payload), default=str) if e.payload else "",
            ]
            for e in shown
        ],
        caption=caption,
        no_wrap=["#", "time", "type"],
    )
