"""``mloop monitors``: watch an endpoint's collected traffic against a reference: drift, quality, performance,
alerts; a terminal summary and a self-contained HTML report."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["app"]

app = typer.Typer(help="Monitors: drift, data quality, live and estimated accuracy, alerts, reports.",
                  no_args_is_help=True)  # fmt: skip

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The monitor's name.")]


def _rows(items: list[Any], as_json: bool) -> None:
    from mloop.cli.output import format_time, print_json, table

    if as_json:
        print_json([m.to_dict() for m in items])
        return
    table(["monitor", "endpoint", "reference", "window", "state", "computed to", "updated"],
          [[m.name, m.spec["endpoint"], m.spec["reference"].get("dataset") or "window",
            m.spec["window"].get("every") or f"{m.spec['window']['rows']} rows", "paused" if m.paused else "active",
            format_time(m.cursor.get("end")), format_time(m.updated_at)] for m in items])  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context, name: NameArg,
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="The endpoint whose traffic it watches.")],
    reference: Annotated[str | None, typer.Option("--reference", metavar="data:NAME/VERSION",
                                                  help="The training data the traffic is compared with.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="The reference's label column (left out).")] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="model:NAME/VERSION",
                                              help="The model whose predictions are the reference's "
                                                   "(default: the endpoint's main version).")] = None,
    reference_since: Annotated[str | None, typer.Option("--reference-since", help="Or: an earlier window of the "
                                                        "endpoint as reference, from (ISO time or 2d) ...")] = None,
    reference_until: Annotated[str | None, typer.Option("--reference-until", help="... until.")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Time windows: 15m, 1h, 1d (default 1h).")] = None,
    rows: Annotated[int | None, typer.Option("--rows", min=1, help="Count windows of this many rows instead.")] = None,
    config: Annotated[str | None, typer.Option("--config", metavar="JSON",
                                               help="More settings as JSON (thresholds, alerts, notifiers), see "
                                                    "docs/monitoring.md.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Create a monitor (its reference sketch is built now, once)."""
    from mloop.errors import InvalidInput
    from mloop.monitoring.monitors import create_monitor

    try:
        spec: dict[str, Any] = json.loads(config) if config else {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--config is not valid JSON: {exc}.") from None
    if not isinstance(spec, dict):
        raise InvalidInput("--config must be a JSON object of settings.")
    ref: dict[str, Any] = dict(spec.get("reference") or {})
    if reference:
        ref.update(dataset=reference if reference.startswith("data:") else f"data:{reference}")
    if reference_since or reference_until:
        ref.update(since=reference_since, until=reference_until)
    if target:
        ref["target"] = target
    if model:
        ref["model"] = model if model.startswith("model:") else f"model:{model}"
    spec.update(endpoint=endpoint, reference=ref)
    if every or rows:
        spec["window"] = {"rows": rows} if rows else {"every": every}
    with open_client(ctx) as client:
        _rows([create_monitor(client, name, spec)], as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List monitors."""
    from mloop.monitoring.monitors import list_monitors

    with open_client(ctx) as client:
        _rows(list_monitors(client), as_json)


@app.command("run")
def run(
    ctx: typer.Context, name: NameArg,
    watch: Annotated[float | None, typer.Option("--watch", metavar="SECONDS",
                                                help="Keep running, looking for due windows this often.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Compute every window that is due (each once), raise and resolve alerts."""
    import time

    from mloop.cli.output import format_time, print_json, table
    from mloop.monitoring.monitors import run_monitor

    with open_client(ctx) as client:
        while True:
            done = run_monitor(client, name)
            if as_json:
                print_json(done)
            elif done or watch is None:
                table(["window", "rows", "breaches", "alerts"],
                      [[format_time(w["window_start"]), w["rows"], ", ".join(w["breaches"]) or "-",
                        ", ".join(w["alerts"]) or "-"] for w in done],
                      caption=f"{len(done)} window(s) computed")  # fmt: skip
            if watch is None:
                return
            time.sleep(watch)


@app.command("show")
def show(
    ctx: typer.Context, name: NameArg,
    html: Annotated[str | None, typer.Option("--html", metavar="FILE.html",
                                             help="Also write the report as one self-contained HTML file.")] = None,
    windows: Annotated[int, typer.Option("--windows", min=1, help="How many recent windows to report.")] = 48,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """The latest figures per signal with their trend, the open alerts; --html for charts."""
    from mloop.cli.output import print_json
    from mloop.monitoring.report import print_summary, write_html

    with open_client(ctx) as client:
        monitor = client.store.get_monitor(name)
        results = client.store.list_monitor_results(name, limit=1_000_000)  # then the newest windows of them
        starts = sorted({r.window_start for r in results})[-windows:]
        results = [r for r in results if not starts or r.window_start >= starts[0]]
        alerts = client.store.list_monitor_alerts(name)
        notes = _notes(client, name, alerts)
    size_bytes = None
    if html:
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        size_bytes = write_html(html, monitor, results, alerts, generated_at=stamp)
    if as_json:
        print_json({"monitor": monitor.to_dict(), "results": [r.to_dict() for r in results],
                    "alerts": [{**a.to_dict(), "automation": notes.get(a.id)} for a in alerts],
                    "html": html})  # fmt: skip
        return
    print_summary(monitor, results, alerts)
    for alert_id, note in notes.items():
        typer.echo(
            f"Alert {alert_id[-8:]} still open: automation {note['automation']} {note['status']} "
            f"({note['why'] or '-'}); see `mloop automations history --chain {note['action'][-8:]}`."
        )
    if html:
        typer.echo(f"Report: {html} ({size_bytes:,} bytes)")


def _notes(client: Any, name: str, alerts: list[Any]) -> dict[str, dict[str, Any]]:
    """For each open alert, the last thing an automation said about it (``monitor.alert_noted``)."""
    from mloop.store.protocols import MonitorEvents

    open_ids = {a.id for a in alerts if a.state == "open"}
    events = client.store.list_events(subject=f"monitor:{name}", types=[MonitorEvents.ALERT_NOTED], limit=1000).items
    return {e.payload["alert"]: dict(e.payload) for e in events if e.payload.get("alert") in open_ids}


def _pause(ctx: typer.Context, name: str, paused: bool, as_json: bool) -> None:
    from mloop.monitoring.monitors import set_paused

    with open_client(ctx) as client:
        _rows([set_paused(client, name, paused)], as_json)


@app.command("pause")
def pause(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop computing windows (they are computed when resumed)."""
    _pause(ctx, name, True, as_json)


@app.command("resume")
def resume(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Compute windows again."""
    _pause(ctx, name, False, as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a monitor with its results and alerts."""
    from mloop.monitoring.monitors import delete_monitor

    with open_client(ctx) as client:
        delete_monitor(client, name)
    typer.echo(f"Deleted monitor {name}.")
