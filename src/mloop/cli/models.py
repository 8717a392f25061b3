"""``mloop models``: list and inspect registered models, register, promote through the gates, approve, roll back.

REF arguments accept ``model:<name>/<version>``, ``model:<name>@<alias>`` and ``model:<name>`` (the newest
version); the ``model:`` prefix may be left out. Aliases move only through the promotion gates: ``promote``
and ``alias`` run the alias's policy and refuse (exit 7) when a check fails, leaving the alias where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from mloop.cli.context import open_client
from mloop.cli.evaluate import compare, evaluation_dict, heading, print_evaluations

if TYPE_CHECKING:
    from mloop.entities import Approval, Evaluation, Model, ModelVersion
    from mloop.errors import GateFailed
    from mloop.registry.promote import GateReport
    from mloop.tracking.client import Client

__all__ = ["app"]

app = typer.Typer(
    help="Models: list, show, register, promote through the gates, approve, roll back, archive, compare.",
    no_args_is_help=True,
)

RefArg = Annotated[
    str, typer.Argument(metavar="REF", help="model:<name>/<version>, model:<name>@<alias> or model:<name> (newest).")
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A model name (or model:<name>).")]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", min=1, help="The version number.")]
ToOpt = Annotated[str, typer.Option("--to", metavar="ALIAS", help="The alias, e.g. production or staging.")]
PolicyOpt = Annotated[
    str | None,
    typer.Option("--policy", metavar="EXPR",
                 help="Checks to run instead of the configured policy, e.g. \"min_metric('roc_auc', 0.85)\"."),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


# helpers ---------------------------------------------------------------------------------------------------
def _name(text: str) -> str:
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


def print_report(report: GateReport) -> None:
    """The checks of a gate report: PASS/FAIL, check, measured, required, detail."""
    from mloop.cli.output import cell, table

    heading(f"Policy for {report.model_ref} → @{report.alias}: {report.policy}")
    table(["", "check", "measured", "required", "detail"],
          [[cell("PASS", "green") if c.passed else cell("FAIL", "bold red"), c.check, c.measured, c.required,
            c.detail or ""] for c in report.checks],
          caption=None if report.checks else "The policy has no checks: any version may take this alias.")  # fmt: skip


def _refused(exc: GateFailed, as_json: bool) -> NoReturn:
    """Show a refusal: the table of checks when the error carries its report, then the error; exit 7."""
    from mloop.cli.output import print_json, report_error

    report: GateReport | None = getattr(exc, "report", None)
    if report is not None:
        if as_json:
            print_json({**report.to_dict(), "moved": False})
        else:
            print_report(report)
    raise typer.Exit(report_error(exc))


def _promote(ctx: typer.Context, name: str, version: int, alias: str, policy: str | None, as_json: bool) -> None:
    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.errors import GateFailed
    from mloop.registry.api import promote

    model = _name(name)
    with open_client(ctx) as client:
        try:
            report = promote(model, version, to=alias, policy=policy or None, client=client)
        except GateFailed as exc:
            _refused(exc, as_json)
    if as_json:
        print_json({**report.to_dict(), "moved": True, "version": version})
        return
    print_report(report)
    was = {None: "had no holder", version: "it already held it"}.get(report.previous, f"was version {report.previous}")
    stdout_console().print(cell(f"Moved model:{model}@{alias} → version {version} ({was}).", "green"))


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

    model = _name(name)
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
    from mloop.registry.api import register_model

    model = _name(name)
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


# moving aliases ----------------------------------------------------------------------------------------------
@app.command("promote")
def promote(
    ctx: typer.Context, name: NameArg, version: VersionArg, to: ToOpt, policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Move an alias to a version if the alias's policy passes; otherwise refuse (exit 7).

    The policy is --policy if given, else the team policy set with `mloop models policy`, else the
    workspace file's [policies.NAME], else the default (production: evaluated on a private holdout and beats
    the current holder; staging: evaluated). Every check is printed with what was measured and required. A
    refusal never moves the alias; two promotions racing for one alias give one winner and a conflict (exit 5).

    \b
    Examples:
      mloop models promote churn 4 --to production
      mloop models promote churn 4 --to staging --policy "min_metric('roc_auc', 0.85) & approvals(1)"
    """
    _promote(ctx, name, version, to, policy, as_json)


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    alias_: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. production, staging, champion.")],
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS at a version: the same as `promote --to ALIAS`, through the alias's policy.

    There is no way around the gates: this runs the policy configured for the alias (`mloop models policy
    NAME ALIAS` shows it; by default staging needs an evaluation and production an evaluation on a private
    holdout that beats the current holder). A refusal exits 7 and leaves the alias where it was.
    """
    _promote(ctx, name, version, alias_, None, as_json)


@app.command("check")
def check(
    ctx: typer.Context, name: NameArg, version: VersionArg, to: ToOpt, policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Run the gates of a promotion without moving anything: exit 0 if they pass, 7 if not.

    \b
    Example:
      mloop models check churn 4 --to production
    """
    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.registry.promote import check_policy

    model = _name(name)
    with open_client(ctx) as client:
        report = check_policy(client, client.store.get_model_version(model, version), to, policy or None)
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
        if report.passed:
            stdout_console().print(cell(f"Would pass: `mloop models promote {model} {version} --to {to}`.", "green"))
        else:
            failed = sum(not c.passed for c in report.checks)
            stdout_console().print(cell(f"Would be refused: {failed} check(s) failed.", "red"))
    if not report.passed:
        raise typer.Exit(7)


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    to: ToOpt,
    comment: Annotated[str, typer.Option("--comment", "-c", metavar="TEXT", help="Why (kept with the approval).")] = "",
) -> None:
    """Approve a version for an alias, as the current user with their roles.

    Roles come from the workspace file ([roles] alice = ["approver"]); the user from MLOOP_USER, the file's
    [user] name, or the login name. approvals(N, role=...) checks count distinct approvers.
    """
    from mloop.cli.output import cell, stdout_console
    from mloop.registry.api import approve as approve_

    with open_client(ctx) as client:
        a = approve_(_name(name), version, to=to, comment=comment, client=client)
    roles = f"roles: {', '.join(a.roles)}" if a.roles else "no roles; set them under [roles] in .mloop/config.toml"
    stdout_console().print(cell(f"{a.actor} approved {a.model_ref} for @{a.alias} ({roles}).", "green"))


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: NameArg,
    alias_: Annotated[str, typer.Option("--alias", metavar="ALIAS", help="The alias to move back.")] = "production",
) -> None:
    """Point an alias back at the version it held before its last move.

    The move is checked against the current holder (a concurrent change gives a conflict, exit 5) and
    recorded as an event; `mloop models show` lists it in the alias history.
    """
    from mloop.cli.output import cell, stdout_console
    from mloop.registry.api import rollback as rollback_

    model = _name(name)
    with open_client(ctx) as client:
        v = rollback_(model, alias=alias_, client=client)
    stdout_console().print(cell(f"Rolled back model:{model}@{alias_} → {v.ref}.", "green"))


@app.command("archive")
def archive(ctx: typer.Context, name: NameArg, version: VersionArg) -> None:
    """Archive a version: it stays loadable by number but can no longer receive an alias.

    A version that holds an alias is refused (exit 5): promote another version first.
    """
    from mloop.cli.output import cell, stdout_console

    model = _name(name)
    with open_client(ctx) as client:
        v = client.store.set_model_version_status(model, version, "archived", actor=client.actor)
    stdout_console().print(cell(f"Archived {v.ref}.", "green"))


@app.command("policy")
def policy(
    ctx: typer.Context,
    name: NameArg,
    alias_: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias the policy guards.")],
    expr: Annotated[
        str | None, typer.Argument(metavar="EXPR", help="Set this policy (checks joined by &); omit to show.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the policy guarding NAME@ALIAS, or set the team policy (stored in the metadata store).

    The stored team policy wins over the workspace file's [policies.NAME] and the defaults. Checks:
    evaluated(private=True), min_metric(m, x), max_metric(m, x), beats(alias, metric, margin, confidence),
    approvals(n, role=None), max_latency_ms(ms, percentile='p95').

    \b
    Examples:
      mloop models policy churn production
      mloop models policy churn production "evaluated() & approvals(1, role='approver')"
    """
    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.registry.promote import policy_for, policy_source, set_policy

    model = _name(name)
    with open_client(ctx) as client:
        chosen = set_policy(client, model, alias_, expr) if expr is not None else policy_for(client, model, alias_)
        _, source = policy_source(client, model, alias_)
    text = repr(chosen)
    if as_json:
        print_json({"model": model, "alias": alias_, "policy": text, "set": expr is not None, "source": source,
                    "checks": [repr(c) for c in chosen.checks]})  # fmt: skip
        return
    console = stdout_console()
    verb = "Set" if expr is not None else "Policy"
    console.print(cell(f"{verb} model:{model}@{alias_}: {text}", "green" if expr is not None else "bold"))
    console.print(
        cell(f"Source: {source}. A --policy given to promote adds checks to it; it never replaces it.", "dim")
    )
    if not chosen.checks:
        console.print(cell("No checks: any version can take this alias. Set one to guard it.", "yellow"))


app.command("compare")(compare)
