"""``mloop models``: list and inspect registered models, register, promote through the gates, approve, roll back.

REF arguments accept ``model:<name>/<version>``, ``model:<name>@<alias>`` and ``model:<name>`` (the newest
version); the ``model:`` prefix may be left out. Aliases move only through the promotion gates: ``promote``
and ``alias`` run the alias's policy and refuse (exit 7) when a check fails, leaving the alias where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.common import JsonOpt, VersionArg, model_name, open_client
from mloop.cli.common import ModelNameArg as NameArg
from mloop.cli.common import ModelRefArg as RefArg
from mloop.cli.evaluate import compare, print_evaluations
from mloop.cli.promotion import alias, approve, check, policy, promote, rollback

if TYPE_CHECKING:
    from mloop.registry.versions import VersionDetails

__all__ = ["app"]

app = typer.Typer(
    help="Models: list, show, register, promote through the gates, approve, roll back, archive, compare.",
    no_args_is_help=True,
)


# helpers ---------------------------------------------------------------------------------------------------
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


# listing and inspecting ------------------------------------------------------------------------------------
@app.command("list")
def list_models(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List registered models: name, latest version, number of versions, aliases."""
    from mloop.cli.output import cell, format_time, print_json, table
    from mloop.registry.versions import list_models as registered_models

    with open_client(ctx) as client:
        found = registered_models(client)
    if as_json:
        print_json([m.to_dict() for m in found])
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
    from mloop.registry.versions import list_model_versions

    model = model_name(name)
    with open_client(ctx) as client:
        found = list_model_versions(client, model)
    if as_json:
        print_json([v.to_dict() for v in found])
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
    from mloop.registry.versions import describe_version

    with open_client(ctx) as client:
        details = describe_version(client, ref)
    if as_json:
        print_json(details.to_dict())
        return
    _print_version(details)


def _print_version(details: VersionDetails) -> None:
    from mloop.cli.output import (
        cell,
        format_number,
        format_time,
        heading,
        human_size,
        short_digest,
        stdout_console,
        table,
    )

    v, evaluations, approvals, history = (details.version, details.evaluations, details.approvals,
                                          details.alias_history)  # fmt: skip
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
        print_json(v.to_dict())
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
    from mloop.registry.versions import archive_version

    model = model_name(name)
    with open_client(ctx) as client:
        v = archive_version(client, model, version)
    stdout_console().print(cell(f"Archived {v.ref}.", "green"))


app.command("policy")(policy)
app.command("compare")(compare)
