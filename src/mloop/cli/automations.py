"""``mloop automations``: rules "on an event or a schedule, where a condition holds, do an action", run by
``mloop scheduler``; their history of actions, each with its cause, outcome and duration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

if TYPE_CHECKING:
    from mloop.entities import Automation, AutomationAction

__all__ = ["app"]

app = typer.Typer(help="Automations: on an event or a cron, where a condition holds, do an action.",
                  no_args_is_help=True)  # fmt: skip

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The automation's name.")]


def _trigger(a: Automation) -> str:
    on = a.spec["on"]
    return f"cron {on['cron']}" if "cron" in on else str(on["event"])


def _do(spec: Any) -> str:
    do = dict(spec["do"])
    kind = do.pop("action")
    return str(kind) + " " + " ".join(f"{k}={json.dumps(v)}" for k, v in do.items())


def _show(items: Sequence[Automation], as_json: bool) -> None:
    from mloop.cli.output import format_time, print_json, table

    if as_json:
        print_json([a.to_dict() for a in items])
        return
    table(["automation", "on", "where", "do", "limits", "state", "updated"],
          [[a.name, _trigger(a), a.spec.get("where") or "-", _do(a.spec),
            f"cool-down {a.spec['cooldown_s']:g} s, {a.spec['max_per_hour']}/h, chain {a.spec['max_chain']}",
            "paused" if a.paused else "active", format_time(a.updated_at)] for a in items])  # fmt: skip


def _summary(action: AutomationAction) -> str:
    o = action.outcome
    if action.error:
        return action.error.splitlines()[0][:160]
    for key in ("reason", "run", "model", "endpoint", "message", "webhook"):
        if o.get(key):
            more = f" -> {o['alias']}" if key == "model" and o.get("alias") else ""
            extra = f"; registered {', '.join(o['registered'])}" if key == "run" and o.get("registered") else ""
            reasons = f"; {'; '.join(o['reasons'])}" if o.get("reasons") else ""
            return f"{key} {o[key]}{more}{extra}{reasons}"[:200]
    return ""


def _actions(items: Sequence[AutomationAction], as_json: bool) -> None:
    from mloop.cli.output import format_time, print_json, table

    if as_json:
        print_json([a.to_dict() for a in items])
        return
    table(["action", "automation", "cause", "depth", "status", "tries", "created", "took", "outcome"],
          [[a.id[-8:], a.automation, a.cause, a.depth, a.status, a.attempts, format_time(a.created_at),
            "-" if a.duration_ms is None else f"{a.duration_ms / 1000:.1f} s", _summary(a)]
           for a in items],
          caption=None if items else "No actions yet: `mloop scheduler` runs automations.")  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context, name: NameArg,
    on: Annotated[str | None, typer.Option("--on", metavar="EVENT|cron:EXPR",
                                           help="An event type ('monitor.alert', 'model.*') or 'cron: 0 2 * * *'.")]
    = None,
    where: Annotated[str | None, typer.Option("--where", metavar="CONDITION",
                                              help="e.g. \"payload.state == 'opened'\" (docs/automation.md).")] = None,
    do: Annotated[str | None, typer.Option("--do", metavar="JSON",
                                           help='The action as JSON: {"action": "run_pipeline", "pipeline": "train"}.')]
    = None,
    cooldown: Annotated[str | None, typer.Option("--cooldown", help="No new action this soon after the last (10m).")]
    = None,
    max_per_hour: Annotated[int | None, typer.Option("--max-per-hour", min=0, help="Actions per hour at most.")] = None,
    max_chain: Annotated[int | None, typer.Option("--max-chain", min=1, help="Automations deep at most.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", metavar="SPEC.json",
                                              help="The whole spec as a JSON file (the options override it).")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Create an automation (active at once; `mloop scheduler` runs it)."""
    from mloop.automation import create_automation
    from mloop.errors import InvalidInput

    try:
        spec: dict[str, Any] = json.loads(file.read_text()) if file else {}
        if do:
            spec["do"] = json.loads(do)
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"--do / --file must hold valid JSON: {exc}.") from None
    options = {"on": on, "where": where, "cooldown": cooldown, "max_per_hour": max_per_hour, "max_chain": max_chain}
    spec.update({k: v for k, v in options.items() if v is not None})
    with open_client(ctx) as client:
        made = create_automation(client, name, spec)
    _show([made], as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List automations."""
    from mloop.automation import list_automations

    with open_client(ctx) as client:
        items = list_automations(client)
    _show(items, as_json)


@app.command("show")
def show(ctx: typer.Context, name: NameArg, last: Annotated[int, typer.Option("--last", min=1)] = 20,
         as_json: JsonOpt = False) -> None:  # fmt: skip
    """Show an automation and its recent actions."""
    from mloop.automation import get_automation, list_actions
    from mloop.cli.output import print_json

    with open_client(ctx) as client:
        made, actions = get_automation(client, name), list_actions(client, automation=name, limit=last)
    if as_json:
        print_json({**made.to_dict(), "actions": [a.to_dict() for a in actions]})
        return
    _show([made], False)
    _actions(actions, False)


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="One automation (default: all).")] = None,
    chain: Annotated[str | None, typer.Option("--chain", metavar="ACTION",
                                              help="The whole chain an action is part of, cause first.")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="Only actions in this status.")] = None,
    last: Annotated[int, typer.Option("--last", min=1, help="How many actions.")] = 50,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """What automations did: each action with its cause (event id), status, duration and outcome."""
    from mloop.automation import list_actions
    from mloop.automation.api import chain as chain_of

    with open_client(ctx) as client:
        if chain:
            found = [a for a in client.store.list_automation_actions(limit=5000) if a.id.endswith(chain)]
            if len(found) != 1:
                from mloop.errors import NotFound

                raise NotFound(f"No single action ends with {chain!r}; copy an id from `mloop automations history`.")
            items = chain_of(client, found[0].id)
        else:
            items = list_actions(client, automation=name, statuses=status, limit=last)
    _actions(items, as_json)


@app.command("pause")
def pause(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Pause: matching events are not acted on while paused; open actions wait."""
    from mloop.automation import set_paused

    with open_client(ctx) as client:
        _show([set_paused(client, name, True)], as_json)


@app.command("resume")
def resume(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Resume (a cron trigger counts from now: fire times passed while paused never fire)."""
    from mloop.automation import set_paused

    with open_client(ctx) as client:
        _show([set_paused(client, name, False)], as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Delete an automation (its history stays)."""
    from mloop.automation import delete_automation

    with open_client(ctx) as client:
        _show([delete_automation(client, name)], as_json)


@app.command("apply")
def apply(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Make the store match the workspace file's [automations.NAME] tables (`mloop scheduler` does it at start)."""
    from mloop.automation import apply_config
    from mloop.cli.output import print_json

    with open_client(ctx) as client:
        done = apply_config(client)
    if as_json:
        print_json(done.to_dict())
        return
    for key, names in done.to_dict().items():
        typer.echo(f"{key}: {', '.join(names) if names else '-'}")
