"""``mloop scheduler``: the long-running process that fires due schedules and runs automations (one per workspace)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["scheduler"]


def scheduler(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One tick, wait for the runs it started, exit (cron, tests).")]
    = False,
    interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between ticks at most.")] = 30.0,
    grace: Annotated[float, typer.Option("--grace", min=0.0,
                                         help="Seconds a fire may be late and still run under --missed skip.")] = 300.0,
    monitors: Annotated[bool, typer.Option("--monitors/--no-monitors",
                                           help="Also compute the due windows of active monitors.")] = True,
    monitor_interval: Annotated[float, typer.Option("--monitor-interval", min=0.2,
                                                    help="Seconds between looks at the monitors.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Fire due schedules and run automations until Ctrl-C / SIGTERM (each fire and each event handled once:
    claimed in the store); a second scheduler on the same store is refused. Exits 1 when a fire failed (--once)."""
    from mloop.automation.service import serve
    from mloop.cli.output import format_time, stderr_console
    from mloop.entities import AutomationAction
    from mloop.pipelines.scheduler import Fire, SchedulerStatus

    console = stderr_console()
    failed: list[Fire] = []

    def show(status: SchedulerStatus, fires: list[Fire]) -> None:
        failed.extend(f for f in fires if f.status == "failed")
        for f in fires:
            if as_json:
                typer.echo(json.dumps(f.to_dict()))
            else:
                what = f"{f.status} {f.pipeline or ''} run {f.run_id or '-'}" + (f": {f.error}" if f.error else "")
                console.print(f"schedule {f.schedule} @ {format_time(f.fire_time)}: {what}", highlight=False)
        if status_line is not None:
            nxt = f"next {status.next_schedule} at {format_time(status.next_at)}" if status.next_schedule else "idle"
            status_line.update(f"scheduler: {status.active}/{status.schedules} schedules active, {status.running} "
                               f"running, {status.fired} fired; {nxt}")  # fmt: skip

    def acted(actions: list[AutomationAction]) -> None:
        for a in actions:
            if as_json:
                typer.echo(json.dumps({"automation_action": a.to_dict()}))
            else:
                why = a.error or a.outcome.get("reason") or ""
                console.print(f"automation {a.automation} ({a.cause}): {a.status} {why}".rstrip(), highlight=False)

    status_line: Any = None
    options: dict[str, Any] = {
        "once": once,
        "interval_s": interval,
        "grace_s": grace,
        "on_status": show,
        "on_actions": acted,
        "monitors": monitors,
        "monitor_interval_s": monitor_interval,
    }
    with open_client(ctx) as client:
        if once or as_json:
            serve(client, **options)
        else:
            with console.status("scheduler: starting") as status_line:
                serve(client, **options)
    if failed:
        raise typer.Exit(1)
