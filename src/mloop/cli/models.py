"""``mloop models``: list and inspect registered models, register, promote through the gates, approve, roll back.

REF arguments accept ``model:<name>/<version>``, ``model:<name>@<alias>`` and ``model:<name>`` (the newest
version); the ``model:`` prefix may be left out. Aliases move only through the promotion gates: ``promote``
and ``alias`` run the alias's policy and refuse (exit 7) when a check fails, leaving the alias where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.context import open_client
from mloop.cli.evaluate import compare, evaluation_dict, heading, print_evaluations
from mloop.cli.options import JsonOpt, VersionArg
from mloop.cli.options import ModelNameArg as NameArg
from mloop.cli.options import ModelRefArg as RefArg
from mloop.cli.promotion import alias, approve, check, policy, promote, rollback

if TYPE_CHECKING:
    from mloop.entities import Approval, Evaluation, Model, ModelVersion
    from mloop.tracking.client import Client

__all__ = ["app"]

app = typer.Typer(
    help="Models: list, show, register, promote through the gates, approve, roll back, archive, compare.",
    no_args_is_help=True,
)



# helpers ---------------------------------------------------------------------------------------------------
def model_name(text: str) -> str:
    """The model name in ``NAME`` or ``model:NAME`` (a version or alias is a mistake here)."""
    from mloop.errors import InvalidInput
    from mloop.refs import parse_ref

    ref = parse_ref(text, default_kind="model")
    if ref.kind != "model" or ref.version is not None or ref.alias is not None:
        raise InvalidInput(f"{text!r} is not a model name; give the name alone, e.g. `churn` or `model:churn`.")
    return ref.name


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "ref": v.ref, "name": v.name, "version": v.version, "id": v.id, "model_id": v.model_id, "flavor": v.flavor,
        "status": v.status, "aliases": list(v.aliases), "created_at": v.created_at, "actor": v.actor,
        "description": v.description, "run_id": v.run_id, "source": v.source, "datasets": list(v.datasets),
        "code_commit": v.code_commit, "target": v.target,
        "files": [{"path": f.path, "size": f.size, "digest": f.digest} for f in v.files],
        "signature": None if v.signature is None else dict(v.signature), "input_example": v.input_example,
        "environment": dict(v.environment), "params": dict(v.params), "metrics": dict(v.metrics),
    }  # fmt: skip


def _approval_dict(a: Approval) -> dict[str, Any]:
    return {"alias": a.alias, "actor": a.actor, "roles": list(a.roles), "comment": a.comment,
            "created_at": a.created_at}  # fmt: skip


def _all_models(client: Client) -> list[Model]:
    found: list[Model] = []
    cursor: str | None = None
    while True:
        page = client.store.list_models(cursor=cursor)
        found.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return found


def _all_versions(client: Client, name: str) -> list[ModelVersion]:
    found: list[ModelVersion] = []
    cursor: str | None = None
    while True:
        page = client.store.list_model_versions(name, cursor=cursor)
        found.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return found


def _signature_rows(signature: Mapping[str, Any]) -> list[list[Any]]:
    from mloop.cli.output import format_number

    rows = []
    for col in signature.get("inputs", []):
        if "categories" in col:
            cats = [str(c) for c in col["categories"]]
            shown = ", ".join(cats[:5]) + (f" … ({col.get('cardinality', len(cats))} values)" if len(cats) > 5 else "")
        elif "min" in col:
            shown = f"{format_number(col['min'])} … {format_number(col['max'])}"
        else:
            shown = "-"
        rows.append([col.get("name"), col.get("type"), shown, col.get("missing", "-")])
    return rows


def _alias_history(client: Client, name: str, version: int) -> list[dict[str, Any]]:
    """Every move of any of the model's aliases that gave ``version`` an alias or took one from it."""
    aliases = sorted({a for v in _all_versions(client, name) for a in v.aliases})
    moves = [{"alias": alias, **move} for alias in aliases for move in client.store.model_alias_history(name, alias)]
    return sorted((m for m in moves if version in (m["version"], m["previous"])), key=lambda m: m["at"])


# listing and inspecting ------------------------------------------------------------------------------------
@app.command("list")
def list_models(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List registered models: name, latest version, number of versions, aliases."""
    from mloop.cli.output import cell, format_time, print_json, table

    with open_client(ctx) as client:
        found = _all_models(client)
    if as_json:
        print_json([{"name": m.name, "id": m.id, "created_at": m.created_at, "latest_version": m.latest_version,
                     "version_count": m.version_count, "aliases": dict(m.aliases)} for m in found])  # fmt: skip
        return
    table(["name", "latest", "versions", "aliases", "created"],
          [[cell(m.name, "cyan"), m.latest_version, m.version_count,
            ", ".join(f"@{a} → {v}" for a, v in sorted(m.aliases.items())) or "-", format_time(m.created_at)]
           for m in found],
          caption=f"{len(found)} model(s). `mloop models versions NAME` lists versions." if found
          else "No models yet: `mloop models register run:<id>/model --name NAME`.")  # fmt: skip


@app.command("versions")
def versions(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """List the versions of a model, newest first."""
    from mloop.cli.output import cell, format_time, print_json, short_id, table

    model = model_name(name)
    with open_client(ctx) as client:
        found = _all_versions(client, model)
    if as_json:
        print_json([_version_dict(v) for v in found])
        return
    table(["version", "created", "by", "flavor", "status", "aliases", "run", "description"],
          [[cell(v.version, "cyan"), format_time(v.created_at), v.actor, v.flavor,
            cell(v.status, "dim" if v.status == "archived" else ""), ", ".join(f"@{a}" for a in v.aliases),
            short_id(v.run_id) if v.run_id else "-", v.description]
           for v in found],
          caption=f"{len(found)} version(s) of {model}. `mloop models show model:{model}/N` for one.",
          no_wrap=["version", "created"])  # fmt: skip


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """Show a model version: files, lineage, signature, environment, evaluations, approvals, alias history.

    \b
    Examples:
      mloop models show model:churn/3
      mloop models show churn@production --json
    """
    from mloop.cli.output import print_json
    from mloop.registry.loader import resolve_model

    with open_client(ctx) as client:
        v = resolve_model(client, ref)
        evaluations = client.store.list_evaluations(v.name, v.version)
        approvals = client.store.list_approvals(v.name, v.version)
        history = _alias_history(client, v.name, v.version)
    if as_json:
        print_json({**_version_dict(v), "evaluations": [evaluation_dict(e) for e in evaluations],
                    "approvals": [_approval_dict(a) for a in approvals], "alias_history": history})  # fmt: skip
        return
    _print_version(v, evaluations, approvals, history)


def _print_version(v: ModelVersion, evaluations: Sequence[Evaluation], approvals: Sequence[Approval],
                   history: Sequence[Mapping[str, Any]]) -> None:  # fmt: skip
    from mloop.cli.output import (
        cell,
        format_number,
        format_time,
        human_size,
        short_digest,
        stdout_console,
        table,
    )

    console = stdout_console()
    heading(f"Model version {v.ref}")
    env = v.environment or {}
    table(["attribute", "value"], [
        ["created", f"{format_time(v.created_at)} by {v.actor}"],
        ["description", v.description or "-"],
        ["flavor", v.flavor],
        ["status", cell(v.status, "dim" if v.status == "archived" else "green")],
        ["aliases", ", ".join(f"@{a}" for a in v.aliases) or "-"],
        ["source", v.source or "-"],
        ["run", f"run:{v.run_id}" if v.run_id else "-"],
        ["datasets", ", ".join(v.datasets) or "-"],
        ["commit", v.code_commit or "-"],
        ["target", v.target or "-"],
        ["input example", short_digest(v.input_example) if v.input_example else "-"],
        ["python", env.get("python", "-")],
    ], no_wrap=["attribute"])  # fmt: skip
    table(["file", "size", "digest"], [[f.path, human_size(f.size), short_digest(f.digest)] for f in v.files],
          caption=f"{len(v.files)} file(s), {human_size(sum(f.size for f in v.files))}; verified on every load.",
          no_wrap=["digest"])  # fmt: skip
    if v.signature:
        output = v.signature.get("output")
        out = f"Output: {output['type']} {tuple(output['shape'])}" if output else "Output type not recorded."
        table(["input", "type", "range / categories", "missing"], _signature_rows(v.signature), caption=out)
    else:
        console.print(cell("No signature: log the model with signature_data= or input_example=.", "dim"))
    packages = env.get("packages") or {}
    if packages:
        heading("Environment lock (checked when loading)")
        table(["package", "version"], sorted(packages.items()))
    for title, values in (("param", v.params), ("metric", v.metrics)):
        if values:
            table([title, "value"], [[k, format_number(x) if isinstance(x, float) else x]
                                     for k, x in sorted(values.items())])  # fmt: skip
    print_evaluations(evaluations)
    if approvals:
        table(["approved for", "by", "roles", "when", "comment"],
              [[f"@{a.alias}", a.actor, ", ".join(a.roles) or "-", format_time(a.created_at), a.comment]
               for a in approvals])  # fmt: skip
    else:
        console.print(cell("No approvals.", "dim"))
    if history:
        heading("Alias history")
        table(["alias", "move", "by", "when", "reason"],
              [[f"@{m['alias']}", f"{m['previous'] or '-'} → {m['version'] or '-'}", m["actor"],
                format_time(m["at"]), m["reason"]] for m in history])  # fmt: skip


# registering ------------------------------------------------------------------------------------------------
@app.command("register")
def register(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="run:<id>[/path] (default path: model), a file, or a folder.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", metavar="NAME", help="The model it becomes a version of.")],
    description: Annotated[str, typer.Option("--description", "-d", metavar="TEXT", help="What this version is.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a model as the next version of NAME.

    SOURCE is a model a run logged (run:<id>/model; the run's first or last 8+ characters are enough), a
    folder saved by mloop, a folder with score.py defining init() and run(data), or a pickle (.pkl/.joblib)
    you trust. Files are stored by digest and verified on every load.

    \b
    Examples:
      mloop models register run:1a2b3c4d/model --name churn -d "gradient boosting, 300 trees"
      mloop models register ./scorer --name churn
      mloop models register model.pkl --name churn --json
    """
    from mloop.cli.output import cell, human_size, print_json, stdout_console
    from mloop.tracking.registering import register_model

    model = model_name(name)
    with open_client(ctx) as client:
        v = register_model(source if source.startswith("run:") else Path(source), model, client=client,
                           description=description)  # fmt: skip
    if as_json:
        print_json(_version_dict(v))
        return
    console = stdout_console()
    size = human_size(sum(f.size for f in v.files))
    console.print(cell(f"Registered {v.ref} ({v.flavor}, {len(v.files)} files, {size}) from {v.source}.", "green"))
    console.print(f"Next: `mloop evaluate {v.ref} --data HOLDOUT`, then `mloop models promote {v.name} {v.version} "
                  "--to staging`.", highlight=False, markup=False)  # fmt: skip


# moving aliases (the commands live in mloop.cli.promotion) ---------------------------------------------------
app.command("promote")(promote)
app.command("alias")(alias)
app.command("check")(check)
app.command("approve")(approve)
app.command("rollback")(rollback)


@app.command("archive")
def archive(ctx: typer.Context, name: NameArg, version: VersionArg) -> None:
    """Archive a version: it stays loadable by number but can no longer receive an alias.

    A version that holds an alias is refused (exit 5): promote another version first.
    """
    from mloop.cli.output import cell, stdout_console

    model = model_name(name)
    with open_client(ctx) as client:
        v = client.store.set_model_version_status(model, version, "archived", actor=client.actor)
    stdout_console().print(cell(f"Archived {v.ref}.", "green"))


app.command("policy")(policy)
app.command("compare")(compare)
