"""``mloop pipelines publish / trigger / published / versions / alias``: published pipeline versions.

Registered here on the ``pipelines`` group (``pipelines_app``, which :mod:`mloop.cli.app` adds); the group's own
commands live in :mod:`mloop.cli.pipelines`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mloop.cli.common import JsonOpt, VersionArg, open_client

__all__ = ["alias", "publish", "published", "trigger", "versions"]

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A published pipeline's name (or pipeline:<name>).")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", metavar="KEY=VALUE",
                 help="A parameter override: STEP.NAME=VALUE or NAME=VALUE. VALUE is JSON, else text."),
]  # fmt: skip


def _name(text: str) -> str:
    from mloop.errors import InvalidInput
    from mloop.refs import parse_ref

    ref = parse_ref(text, default_kind="pipeline")
    if ref.kind != "pipeline" or ref.version is not None or ref.alias is not None:
        raise InvalidInput(f"{text!r} is not a pipeline name; give the name alone, e.g. `train`.")
    return ref.name


def publish(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(metavar="FILE:NAME", help="A Python file and the Pipeline variable in it.")],
    name: Annotated[str | None, typer.Option("--name", help="Publish under this name (default: its own).")] = None,
    description: Annotated[str, typer.Option("--description", "-m", help="What this version is.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Publish a pipeline: an immutable version of its definition with a snapshot of its code."""
    from mloop.cli.output import print_json
    from mloop.pipelines import publish as publish_pipeline

    with open_client(ctx) as client:
        done = publish_pipeline(client, spec, name=name, description=description)
    if as_json:
        print_json(done.to_dict())
        return
    v = done.version
    if done.created:
        typer.echo(f"published {v.ref} ({len(v.files)} files, code {v.code_digest[:19]})")
    else:
        typer.echo(f"{v.ref} already holds this definition (code {v.code_digest[:19]}): no new version.")
    for p in v.params:
        typer.echo(f"  {p.name}: {p.type} = {'(required)' if p.required else p.default!r}")


def trigger(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="NAME[/VERSION]", help="NAME (newest), NAME/VERSION or NAME@ALIAS.")],
    param: ParamOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Run every step, ignoring the cache.")] = False,
    compute: Annotated[str | None, typer.Option("--compute", metavar="NAME",
                                                help="A compute target (default: the workspace's).")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Run a published pipeline with parameter overrides (the run is tagged with who triggered it); exits 1 if a
    step failed."""
    from mloop.cli.output import cell, heading, print_json, short_id, table
    from mloop.pipelines import trigger as trigger_pipeline
    from mloop.pipelines.trigger import parse_overrides

    params = parse_overrides(param or [])
    with open_client(ctx) as client:
        result = trigger_pipeline(target, params=params, client=client, force=force, compute=compute)
    if as_json:
        print_json(result.to_dict())
    else:
        heading(f"pipeline {result.pipeline}: run {result.run_id} {result.status} in {result.duration_s:.2f} s")
        styles = {"cached": "green", "ran": "cyan", "failed": "red", "skipped": "dim", "killed": "red"}
        rows: list[list[Any]] = [[s.step, cell(s.status, styles.get(s.status, "")),
                                  short_id(s.run_id) if s.run_id else "-", s.reason]
                                 for s in result.steps.values()]  # fmt: skip
        table(["step", "status", "run", "why"], rows)
        for s in result.steps.values():
            if s.status == "failed" and s.error:
                typer.echo(f"\nstep {s.step} failed:\n{s.error}", err=True)
    if not result.ok:
        raise typer.Exit(1)


def published(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List published pipelines."""
    from mloop.cli.output import format_time, print_json, table
    from mloop.pipelines.publish import list_published

    with open_client(ctx) as client:
        items = list_published(client)
    if as_json:
        print_json([p.to_dict() for p in items])
        return
    table(["name", "latest", "versions", "created"],
          [[p.name, p.latest_version, p.version_count, format_time(p.created_at)] for p in items])  # fmt: skip


def versions(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """List the published versions of a pipeline (newest first) with their parameters."""
    from mloop.cli.output import format_time, print_json, table
    from mloop.pipelines.publish import list_versions

    with open_client(ctx) as client:
        items = list_versions(client, _name(name))
    if as_json:
        print_json([v.to_dict() for v in items])
        return
    table(["version", "aliases", "created", "by", "code", "params", "source"],
          [[v.version, ",".join(v.aliases), format_time(v.created_at), v.actor, v.code_digest[:19],
            ", ".join(f"{p.name}={'?' if p.required else p.default!r}" for p in v.params), v.source]
           for v in items])  # fmt: skip


def alias(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. prod")],
    as_json: JsonOpt = False,
) -> None:
    """Point NAME@ALIAS at a published version (`mloop pipelines trigger NAME@ALIAS` runs it)."""
    from mloop.cli.output import print_json
    from mloop.pipelines.publish import set_alias

    with open_client(ctx) as client:
        v = set_alias(client, _name(name), version, alias_name)
    if as_json:
        print_json(v.to_dict())
    else:
        typer.echo(f"pipeline:{v.name}@{alias_name} -> {v.ref}")


def _pipelines_group() -> typer.Typer:
    """The ``pipelines`` group (cli/pipelines.py) with the commands of published pipelines added."""
    from mloop.cli import pipelines

    group = pipelines.app
    for name, command in (("publish", publish), ("trigger", trigger), ("published", published),
                          ("versions", versions), ("alias", alias)):  # fmt: skip
        group.command(name)(command)
    return group


pipelines_app = _pipelines_group()
