"""``mloop compute``: named compute targets of the workspace (``local``, ``dask``), where pipeline steps run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.common import JsonOpt, open_client

if TYPE_CHECKING:
    from mloop.pipelines.compute import ComputeTarget

__all__ = ["app"]

NameArg = Annotated[str, typer.Argument(help="A target's name.")]

app = typer.Typer(
    help="Compute targets: where pipeline steps run (`local`: a process pool; `dask`: a Dask cluster).",
    no_args_is_help=True,
)


def _describe(t: ComputeTarget) -> str:
    if t.type == "local":
        return f"process pool of {t.params.get('max_workers', 'every CPU')}"
    if "address" in t.params:
        return f"Dask scheduler at {t.params['address']}"
    p = t.params
    memory = f", {p['memory_limit']:,} bytes each" if "memory_limit" in p else ""
    return (f"local Dask cluster, {p.get('min_workers', 1)}..{p.get('max_workers', 'CPUs')} workers (adaptive), "
            f"{p.get('threads_per_worker', 1)} thread(s) each{memory}")  # fmt: skip


def _print(target: ComputeTarget, as_json: bool) -> None:
    from mloop.cli.output import print_json

    if as_json:
        print_json(target.to_dict())
        return
    typer.echo(f"{target.name} ({target.type}{', default' if target.default else ''}): {_describe(target)}")


@app.command("list")
def list_targets(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List compute targets (`local` is built in); the default one is marked."""
    from mloop.cli.output import print_json, table
    from mloop.pipelines.compute import list_targets

    with open_client(ctx) as client:
        targets = list_targets(client)
    if as_json:
        print_json([t.to_dict() for t in targets])
        return
    table(["name", "type", "default", "what"], [[t.name, t.type, "yes" if t.default else "", _describe(t)]
                                                 for t in targets])  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The target's name, e.g. cluster.")],
    type_: Annotated[str, typer.Option("--type", help="local or dask.")] = "dask",
    address: Annotated[
        str | None, typer.Option(help="dask: a running scheduler, e.g. tcp://HOST:8786 (mloop never closes it).")
    ] = None,
    min_workers: Annotated[int | None, typer.Option(help="dask (local cluster): workers kept when idle.")] = None,
    max_workers: Annotated[
        int | None, typer.Option(help="Most workers (local: processes; dask: adaptive cluster's ceiling).")
    ] = None,
    threads_per_worker: Annotated[
        int | None, typer.Option(help="dask (local cluster): threads = the 'cpu' resource of each worker.")
    ] = None,
    memory_limit: Annotated[
        str | None, typer.Option(help="dask (local cluster): each worker's memory ('memory' resource), e.g. 4GB.")
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Also make it the workspace's default target.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a compute target: `--type local --max-workers N`, or `--type dask` with `--address` or sizes."""
    from mloop.pipelines.compute import create_target

    params = {"address": address, "min_workers": min_workers, "max_workers": max_workers,
              "threads_per_worker": threads_per_worker, "memory_limit": memory_limit}  # fmt: skip
    with open_client(ctx) as client:
        target = create_target(client, name, type_, params, default=default)
    _print(target, as_json)


@app.command("show")
def show(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Show one compute target and its parameters."""
    from mloop.pipelines.compute import get_target

    with open_client(ctx) as client:
        target = get_target(client, name)
    _print(target, as_json)
    if not as_json:
        for key, value in sorted(target.params.items()):
            typer.echo(f"  {key}: {value}")


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Delete a compute target (if it was the default, `local` becomes the default)."""
    from mloop.pipelines.compute import delete_target

    with open_client(ctx) as client:
        target = delete_target(client, name)
    if as_json:
        from mloop.cli.output import print_json

        print_json({"deleted": target.to_dict()})
        return
    typer.echo(f"Deleted compute target {target.name!r}{' (local is the default again)' if target.default else ''}.")


@app.command("default")
def default(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Make a compute target the one pipeline runs use when they name none."""
    from mloop.pipelines.compute import set_default_target

    with open_client(ctx) as client:
        target = set_default_target(client, name)
    _print(target, as_json)
