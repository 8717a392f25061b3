"""``mloop models promote/alias/check/approve/rollback/policy``: move aliases through the promotion gates.

The commands are plain functions registered on the ``mloop models`` group by :mod:`mloop.cli.models` (which
keeps the order of the help listing). Aliases move only through the gates: ``promote`` and ``alias`` run the
alias's policy and refuse (exit 7) when a check fails, leaving the alias where it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from mloop.cli.common import JsonOpt, VersionArg, model_name, open_client
from mloop.cli.common import ModelNameArg as NameArg

if TYPE_CHECKING:
    from mloop.errors import GateFailed
    from mloop.registry.promote import GateReport

__all__ = ["alias", "approve", "check", "policy", "print_report", "promote", "rollback"]

ToOpt = Annotated[str, typer.Option("--to", metavar="ALIAS", help="The alias, e.g. production or staging.")]
PolicyOpt = Annotated[
    str | None,
    typer.Option("--policy", metavar="EXPR",
                 help="Adds checks to the configured policy (never replaces it), e.g. "
                      "\"min_metric('roc_auc', 0.85)\"."),
]  # fmt: skip


# helpers ---------------------------------------------------------------------------------------------------
def print_report(report: GateReport) -> None:
    """The checks of a gate report: PASS/FAIL, check, measured, required, detail."""
    from mloop.cli.output import cell, heading, table

    heading(f"Policy for {report.model_ref} → @{report.alias}: {report.policy}")
    table(["", "check", "measured", "required", "detail"],
          [[cell("PASS", "green") if c.passed else cell("FAIL", "bold red"), c.check, c.measured, c.required,
            c.detail or ""] for c in report.checks],
          caption=None if report.checks else "The policy has no checks: any version may take this alias.")  # fmt: skip


def _refused(exc: GateFailed, as_json: bool) -> NoReturn:
    """Show a refusal once: the checks on stdout (a table, or JSON), then the error without them; exit 7."""
    from mloop.cli.output import print_json, report_error
    from mloop.errors import GateFailed

    report: GateReport | None = getattr(exc, "report", None)
    if report is None:
        raise typer.Exit(report_error(exc))
    if as_json:
        print_json({**report.to_dict(), "moved": False})
    else:
        print_report(report)
    lines = str(exc).splitlines()
    checks = set(report.table().splitlines())  # the message repeats the checks in plain text: drop them
    raise typer.Exit(report_error(GateFailed("\n".join(line for line in lines if line not in checks), report)))


def _promote(ctx: typer.Context, name: str, version: int, alias: str, policy: str | None, as_json: bool) -> None:
    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.errors import GateFailed
    from mloop.registry.api import promote

    model = model_name(name)
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


# commands (registered on `mloop models` by mloop.cli.models) -------------------------------------------
def promote(
    ctx: typer.Context, name: NameArg, version: VersionArg, to: ToOpt, policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Move an alias to a version if the alias's policy passes; otherwise refuse (exit 7).

    The policy is the team policy set with `mloop models policy`, else the workspace file's [policies.NAME],
    else the default (production: evaluated on a private holdout and beats the current holder; staging:
    evaluated); --policy adds checks to it for this call and never replaces it. Every check is printed with
    what was measured and required. A refusal never moves the alias; two promotions racing for one alias give
    one winner and a conflict (exit 5).

    \b
    Examples:
      mloop models promote churn 4 --to production
      mloop models promote churn 4 --to staging --policy "min_metric('roc_auc', 0.85) & approvals(1)"
    """
    _promote(ctx, name, version, to, policy, as_json)


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


def check(
    ctx: typer.Context, name: NameArg, version: VersionArg, to: ToOpt, policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Run the gates of a promotion without moving anything: exit 0 if they pass, 7 if not.

    The checks are those `promote` would run: the alias's policy, plus --policy's checks when given.

    \b
    Example:
      mloop models check churn 4 --to production
    """
    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.registry.promote import check_promotion

    model = model_name(name)
    with open_client(ctx) as client:
        report = check_promotion(client, model, version, to=to, policy=policy or None)
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
        a = approve_(model_name(name), version, to=to, comment=comment, client=client)
    roles = f"roles: {', '.join(a.roles)}" if a.roles else "no roles; set them under [roles] in .mloop/config.toml"
    stdout_console().print(cell(f"{a.actor} approved {a.model_ref} for @{a.alias} ({roles}).", "green"))


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

    model = model_name(name)
    with open_client(ctx) as client:
        v = rollback_(model, alias=alias_, client=client)
    stdout_console().print(cell(f"Rolled back model:{model}@{alias_} → {v.ref}.", "green"))


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
    from mloop.registry.promote import policy_info

    model = model_name(name)
    with open_client(ctx) as client:
        info = policy_info(client, model, alias_, set_to=expr)
    if as_json:
        print_json(info.to_dict())
        return
    text = repr(info.policy)
    console = stdout_console()
    verb = "Set" if info.was_set else "Policy"
    console.print(cell(f"{verb} model:{model}@{alias_}: {text}", "green" if info.was_set else "bold"))
    console.print(
        cell(f"Source: {info.source}. A --policy given to promote adds checks to it; it never replaces it.", "dim")
    )
    if not info.policy.checks:
        console.print(cell("No checks: any version can take this alias. Set one to guard it.", "yellow"))
