"""``mloop deploy``: endpoints with traffic weights, canary rollouts, shadow traffic, collected data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["app"]

app = typer.Typer(help="Endpoints: serve model versions behind a stable name; canary, shadow, collected data.",
                  no_args_is_help=True)  # fmt: skip

NameArg = Annotated[str, typer.Argument(metavar="ENDPOINT", help="The endpoint's name.")]
ModelsOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", metavar="NAME/VERSION[=WEIGHT]",
    help="A model version (or NAME@ALIAS) and its traffic weight; repeat for a split, e.g. -m churn/3=90 "
         "-m churn/4=10 (no weights: an even split).")]  # fmt: skip
StepsOpt = Annotated[
    str | None,
    typer.Option(
        "--steps", metavar="10,50,100", help="Canary traffic percent per rollout step (100 alone: blue/green)."
    ),
]
MinReqOpt = Annotated[int | None, typer.Option("--min-requests", min=1, help="Canary requests needed per step.")]
DwellOpt = Annotated[float | None, typer.Option("--dwell", min=0, help="Minimum seconds per rollout step.")]
ErrOpt = Annotated[float | None, typer.Option("--max-error-increase", min=0, max=1,
                                              help="Roll back when the canary's 5xx rate exceeds stable's by more "
                                                   "than this (0.02 = 2 points).")]  # fmt: skip
P99Opt = Annotated[
    float | None,
    typer.Option("--max-p99-ratio", min=1, help="Roll back when the canary's p99 exceeds this times stable's."),
]
PsiOpt = Annotated[
    float | None,
    typer.Option(
        "--max-prediction-psi",
        min=0,
        help="Roll back when the canary's predictions shift from stable's by more than this PSI (off).",
    ),
]
ShadowOpt = Annotated[str | None, typer.Option("--shadow", metavar="NAME/VERSION",
                                               help="Mirror requests to this version (answers collected, never "
                                                    "returned).")]  # fmt: skip
ShadowPctOpt = Annotated[
    float | None,
    typer.Option("--shadow-percent", min=0, max=100, help="Share of requests mirrored to the shadow (default 100)."),
]


def _policy(
    min_requests: int | None, dwell: float | None, max_error: float | None, p99: float | None, psi: float | None
) -> dict[str, Any]:
    values = {"min_requests": min_requests, "dwell_seconds": dwell, "max_error_rate_increase": max_error,
              "max_p99_ratio": p99, "max_prediction_psi": psi}  # fmt: skip
    return {k: v for k, v in values.items() if v is not None}


def _traffic(spec: Any) -> str:
    return ", ".join(f"{t['model'].removeprefix('model:')} {t['weight']:g}%" for t in spec.get("traffic", []))


def _rows(items: Sequence[dict[str, Any]], as_json: bool) -> None:
    from mloop.cli.output import format_time, print_json, table

    if as_json:
        print_json(list(items))
        return
    table(["endpoint", "traffic", "shadow", "rollout", "state", "url", "updated"],
          [[i["name"], _traffic(i["spec"]),
            (f"{i['spec']['shadow']['model'].removeprefix('model:')} {i['spec']['shadow']['percent']:g}%"
             if i["spec"].get("shadow") else "-"),
            (f"canary {i['spec']['canary']['model'].removeprefix('model:')} step {i['spec']['canary']['step'] + 1}"
             if i["spec"].get("canary") else ("follows " + i["spec"]["follow"] if i["spec"].get("follow") else "-")),
            (i["status"].get("phase", "-") if i.get("running") else "not running"),
            i.get("url") or i["spec"].get("stream") or "-", format_time(i["updated_at"])] for i in items])  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context, name: NameArg, model: ModelsOpt = None,
    follow: Annotated[bool, typer.Option("--follow", help="Roll out the alias' new version when it moves.")] = False,
    shadow: ShadowOpt = None, shadow_percent: ShadowPctOpt = None,
    sticky_header: Annotated[str | None, typer.Option("--sticky-header", help="Header whose value pins a caller "
                                                      "to one version (default X-Routing-Key).")] = None,
    steps: StepsOpt = None, min_requests: MinReqOpt = None, dwell: DwellOpt = None, max_error_increase: ErrOpt = None,
    max_p99_ratio: P99Opt = None, max_prediction_psi: PsiOpt = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: a free one).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes.")] = 1,
    stream: Annotated[str | None, typer.Option("--stream", metavar="URL",
                                               help="Score a stream instead of HTTP: nats://HOST:PORT/SUBJECT or "
                                                    "redis://HOST:PORT/STREAM.")] = None,
    no_collect: Annotated[bool, typer.Option("--no-collect", help="Do not record requests.")] = False,
    no_start: Annotated[bool, typer.Option("--no-start", help="Only store the endpoint; start it later.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Create an endpoint and start it on this machine (waits until it serves)."""
    from mloop.deployments.endpoints import create as create_endpoint
    from mloop.deployments.endpoints import show

    with open_client(ctx) as client:
        create_endpoint(client, name, model or [], follow=follow, shadow=shadow,
                        shadow_percent=100.0 if shadow_percent is None else shadow_percent,
                        sticky_header=sticky_header, steps=steps,
                        policy=_policy(min_requests, dwell, max_error_increase, max_p99_ratio, max_prediction_psi),
                        host=host, port=port,
                        workers=workers, stream=stream, collect=not no_collect, start_now=not no_start)  # fmt: skip
        _rows([show(client, name)], as_json)


@app.command("update")
def update(
    ctx: typer.Context, name: NameArg, model: ModelsOpt = None,
    canary: Annotated[str | None, typer.Option("--canary", metavar="NAME/VERSION",
                                               help="Roll this version out by the endpoint's policy.")] = None,
    shadow: ShadowOpt = None, shadow_percent: ShadowPctOpt = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Stop mirroring.")] = False,
    steps: StepsOpt = None, min_requests: MinReqOpt = None, dwell: DwellOpt = None, max_error_increase: ErrOpt = None,
    max_p99_ratio: P99Opt = None, max_prediction_psi: PsiOpt = None,
    follow: Annotated[bool | None, typer.Option("--follow/--no-follow", help="Follow the alias or stop.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Change weights, shadow or policy, or start a canary; applied live without dropping requests."""
    from mloop.deployments.endpoints import show
    from mloop.deployments.endpoints import update as update_endpoint

    with open_client(ctx) as client:
        update_endpoint(client, name, models=model, canary=canary, shadow=shadow, shadow_percent=shadow_percent,
                        no_shadow=no_shadow, steps=steps, follow=follow,
                        policy=_policy(min_requests, dwell, max_error_increase, max_p99_ratio,
                                       max_prediction_psi))  # fmt: skip
        _rows([show(client, name)], as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List endpoints with their traffic, rollout and state."""
    from mloop.deployments.endpoints import list_endpoints, show

    with open_client(ctx) as client:
        _rows([show(client, e.name) for e in list_endpoints(client)], as_json)


@app.command("show")
def show_(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Show an endpoint's spec (desired state) and status (actual state)."""
    from mloop.cli.output import print_json
    from mloop.deployments.endpoints import show

    with open_client(ctx) as client:
        info = show(client, name)
    if as_json:
        print_json(info)
        return
    _rows([info], False)
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(Pretty({"spec": info["spec"], "status": info["status"]}))


@app.command("status")
def status(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """The endpoint's actual state: processes, restarts, served generation, the last rollout decision."""
    from mloop.cli.output import print_json, table
    from mloop.deployments.endpoints import show

    with open_client(ctx) as client:
        info = show(client, name)
    st = info["status"]
    if as_json:
        print_json({"name": name, "running": info["running"], "generation": info["generation"], **st})
        return
    decision = st.get("last_decision") or {}
    table(["field", "value"], [
        ["running", "yes" if info["running"] else "no"], ["phase", st.get("phase", "-")],
        ["url", info.get("url") or info["spec"].get("stream")], ["server pid", st.get("pid")],
        ["supervisor pid", st.get("supervisor_pid")], ["restarts", st.get("restarts", 0)],
        ["generation (stored / served)", f"{info['generation']} / {st.get('generation_served', '-')}"],
        ["traffic", _traffic(info["spec"])], ["last rollout decision", decision.get("reason", "-")],
    ], show_header=False)  # fmt: skip


@app.command("logs")
def logs(
    ctx: typer.Context, name: NameArg,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines.")] = 100,
    supervisor: Annotated[bool, typer.Option("--supervisor", help="The supervisor's log instead.")] = False,
) -> None:  # fmt: skip
    """Print the end of the endpoint's server log (on this machine)."""
    from mloop.deployments.endpoints import logs as read_logs

    with open_client(ctx) as client:
        typer.echo(read_logs(client, name, lines=lines, which="supervisor" if supervisor else "server"))


def _change(ctx: typer.Context, name: str, action: str, as_json: bool) -> None:
    from mloop.deployments import endpoints

    with open_client(ctx) as client:
        getattr(endpoints, action)(client, name)
        _rows([endpoints.show(client, name)], as_json)


@app.command("promote")
def promote(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Finish the rollout in progress now: the canary takes all traffic."""
    _change(ctx, name, "promote", as_json)


@app.command("rollback")
def rollback(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop the rollout (stable takes all traffic), or return to the previous version."""
    _change(ctx, name, "rollback", as_json)


@app.command("start")
def start(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Start a stored endpoint on this machine (waits until it serves)."""
    _change(ctx, name, "start", as_json)


@app.command("stop")
def stop(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop the endpoint's processes on this machine (in-flight requests finish, collected rows are flushed)."""
    _change(ctx, name, "stop", as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop and delete an endpoint (its collected data stays)."""
    from mloop.cli.output import print_json
    from mloop.deployments.endpoints import delete as delete_endpoint

    with open_client(ctx) as client:
        gone = delete_endpoint(client, name)
    if as_json:
        print_json(gone.to_dict())
    else:
        typer.echo(f"Deleted endpoint {name}.")


@app.command("data")
def data(
    ctx: typer.Context, name: NameArg,
    since: Annotated[str | None, typer.Option("--since", help="A duration back (30m, 1h, 2d) or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="A duration back or an ISO time.")] = None,
    with_feedback: Annotated[bool, typer.Option("--with-feedback", help="Join the ground truth sent later.")] = False,
    role: Annotated[str | None, typer.Option("--role", metavar="live|shadow", help="Only this role.")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE.parquet|FILE.csv",
                                               help="Write the rows to a file instead.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows shown in the terminal.")] = 20,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """The requests the endpoint collected (with ground truth), as a table."""
    from mloop.cli.output import print_json, table
    from mloop.deployments.collected import read_collected

    with open_client(ctx) as client:
        rows = read_collected(client, name, since=since, until=until, with_feedback=with_feedback, role=role)
    if output:
        _write(rows, output)
        typer.echo(f"Wrote {rows.num_rows} rows to {output}.")
        return
    if as_json:
        print_json(rows.to_pylist())
        return
    shown = rows.slice(max(0, rows.num_rows - limit)).to_pylist()
    columns = rows.column_names
    table(columns, [[r[c] for c in columns] for r in shown],
          caption=f"{rows.num_rows} rows; the last {len(shown)} shown (--limit, --output FILE, --json)")  # fmt: skip


def _write(rows: Any, output: str) -> None:
    from mloop.errors import InvalidInput

    if output.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(rows, output)
    elif output.endswith(".csv"):
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        flat = rows.select([c for c in rows.column_names if not str(rows.schema.field(c).type).startswith("list")])
        for c in rows.column_names:
            if c not in flat.column_names:  # lists (probabilities) as text: CSV has no list type
                flat = flat.append_column(c, pc.cast(pc.binary_join(pc.cast(rows[c], "list<string>"), ";"), "string"))
        pcsv.write_csv(flat, output)
    else:
        raise InvalidInput(f"--output {output!r} must end in .parquet or .csv.")
