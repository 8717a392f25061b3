"""Moving aliases only through the gates: promote, approve, rollback, and register-only-if-better.

``promote`` reads the alias's current holder, runs the policy, and moves the alias with a compare-and-swap, so
a promotion that fails any check never moves it, and two promotions racing for one alias cannot both win.
Policies come from (first found): the ``policy=`` argument, the team policy stored in the metadata store
(``mloop models policy``), the workspace file (``[policies.<model>]``), then the defaults below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.entities import ModelVersion
from mloop.errors import GateFailed, InvalidInput, NotFound
from mloop.refs import parse_ref
from mloop.registry.events import MODEL_POLICY_SET, MODEL_PROMOTION_REFUSED
from mloop.registry.gates import Check, CheckResult, GateContext, Policy, parse_policy, uncontaminated

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = [
    "DEFAULT_POLICIES",
    "GateReport",
    "PolicyInfo",
    "approve",
    "check_policy",
    "check_promotion",
    "policy_for",
    "policy_info",
    "policy_source",
    "promote",
    "rollback",
    "set_policy",
]

DEFAULT_POLICIES: Mapping[str, str] = {
    "production": "evaluated() & beats('production', metric='primary')",
    "staging": "evaluated()",
}


@dataclass(frozen=True)
class GateReport:
    model_ref: str
    alias: str
    policy: str
    passed: bool
    checks: list[CheckResult] = field(default_factory=list)
    previous: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_ref, "alias": self.alias, "policy": self.policy, "passed": self.passed,
            "previous": self.previous,
            "checks": [{"check": c.check, "passed": c.passed, "measured": c.measured, "required": c.required,
                        "detail": c.detail} for c in self.checks],
        }  # fmt: skip

    def table(self) -> str:
        rows = [f"  {'PASS' if c.passed else 'FAIL'}  {c.check}: measured {c.measured}; required {c.required}"
                + (f" ({c.detail})" if c.detail else "") for c in self.checks]  # fmt: skip
        return "\n".join(rows) or "  (no checks)"


def _policy_key(name: str, alias: str) -> str:
    return f"policy:{name}:{alias}"


def policy_source(client: Context, name: str, alias: str) -> tuple[str, str]:
    """The policy text for ``name@alias`` and where it comes from: store, workspace file, default or none."""
    stored = client.store.get_setting(_policy_key(name, alias))
    if stored is not None:
        return stored, "metadata store (mloop models policy)"
    text = client.workspace.settings.policies.get(name, {}).get(alias)
    if text:
        return text, "workspace file [policies]"
    if alias in DEFAULT_POLICIES:
        return DEFAULT_POLICIES[alias], "default"
    return "", "none"


def policy_for(client: Context, name: str, alias: str) -> Policy:
    text, _ = policy_source(client, name, alias)
    return parse_policy(text) if text else Policy()


def set_policy(client: Context, name: str, alias: str, text: str) -> Policy:
    """Store a team-wide policy for ``name@alias`` in the metadata store (validated first)."""
    parse_ref(f"model:{name}@{alias}")
    policy = parse_policy(text)
    client.store.set_setting(_policy_key(name, alias), text, actor=client.actor, event=MODEL_POLICY_SET,
                             subject=f"model:{name}@{alias}", payload={"policy": text})  # fmt: skip
    return policy


@dataclass(frozen=True)
class PolicyInfo:
    """The policy guarding ``model@alias``, where it comes from, and whether this call set it."""

    model: str
    alias: str
    policy: Policy
    source: str  # metadata store (mloop models policy), workspace file [policies], default or none
    was_set: bool = False  # this call stored it as the team policy

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "alias": self.alias, "policy": repr(self.policy), "set": self.was_set,
                "source": self.source, "checks": [repr(c) for c in self.policy.checks]}  # fmt: skip


def policy_info(client: Context, name: str, alias: str, *, set_to: str | None = None) -> PolicyInfo:
    """The policy guarding ``name@alias`` and its source; with ``set_to``, first store that text as the team
    policy (:func:`set_policy`: validated, recorded as a ``model.policy_set`` event)."""
    chosen = set_policy(client, name, alias, set_to) if set_to is not None else policy_for(client, name, alias)
    _, source = policy_source(client, name, alias)
    return PolicyInfo(name, alias, chosen, source, set_to is not None)


def approve(client: Context, name: str, version: int, *, to: str, comment: str = "") -> Any:
    """Record the current actor's approval of ``name/version`` for alias ``to`` (with their configured roles)."""
    roles = client.workspace.settings.roles.get(client.actor, ())
    return client.store.add_approval(name, version, alias=to, actor=client.actor, roles=roles, comment=comment)


def _comparer(client: Context) -> Any:
    def compare(candidate: ModelVersion, champion: ModelVersion, data_ref: str, metric: str) -> Mapping[str, Any]:
        from mloop.registry.evaluate import compare_versions

        return compare_versions(client, candidate.ref, champion.ref, data_ref, metric=metric, record=False)

    return compare


def check_policy(client: Context, version: ModelVersion, alias: str, policy: Check | str | None = None) -> GateReport:
    """Run the policy for promoting ``version`` to ``alias`` without moving anything."""
    if alias == "latest":
        raise InvalidInput("'latest' always means the newest version; it has no promotion policy.")
    chosen = policy_for(client, version.name, alias)
    if policy is not None:  # an explicit policy adds checks; it never removes the configured ones
        chosen = chosen & (parse_policy(policy) if isinstance(policy, str) else policy)
    if not any(isinstance(c, uncontaminated) for c in chosen.checks):  # built in: no policy can drop it
        chosen = Policy(uncontaminated(), *chosen.checks)
    ctx = GateContext(client, version, alias, client.workspace.settings.roles, _comparer(client))
    rows = chosen.run(ctx)
    return GateReport(version.ref, alias, repr(chosen), all(r.passed for r in rows), rows)


def check_promotion(client: Context, name: str, version: int, *, to: str,
                    policy: Check | str | None = None) -> GateReport:  # fmt: skip
    """The checks :func:`promote` would run to move ``name@to`` to ``version`` (the alias's policy, plus
    ``policy``'s checks), run without moving anything."""
    return check_policy(client, client.store.get_model_version(name, version), to, policy)


def _fix_hint(report: GateReport, name: str, version: int, to: str) -> str:
    """What to do next, for the checks that failed (approval advice only when an approval check failed)."""
    failed = [c for c in report.checks if not c.passed]
    steps = []
    if any(c.check.startswith("uncontaminated") for c in failed):
        steps.append("retrain in a new run that reads only the train split")
    if any(c.measured in ("not evaluated", "not measured", "none", "only on non-private data") for c in failed):
        steps.append(f"evaluate with `mloop evaluate model:{name}/{version} --data HOLDOUT`")
    elif any(c.check.startswith(("min_metric", "max_metric", "beats", "max_latency_ms")) for c in failed):
        steps.append("train a better model")
    if any(c.check.startswith("approvals") for c in failed):
        steps.append(f"approve with `mloop models approve {name} {version} --to {to}`")
    return f"Fix what failed ({'; '.join(steps) or 'see the table'}), then retry."


def promote(client: Context, name: str, version: int, *, to: str, policy: Check | str | None = None) -> GateReport:
    """Move ``name@to`` to ``version`` if the policy passes; raise :class:`GateFailed` (with the table) if not."""
    if to == "latest":
        raise InvalidInput("'latest' always means the newest version; promote to another alias.")
    candidate = client.store.get_model_version(name, version)
    try:
        holder: int | None = client.store.get_model_version(name, alias=to).version
    except NotFound:
        holder = None
    report = check_policy(client, candidate, to, policy)
    report = GateReport(report.model_ref, to, report.policy, report.passed, report.checks, holder)
    if not report.passed:
        client.store.append_event(MODEL_PROMOTION_REFUSED, candidate.ref, actor=client.actor,
                                  payload=report.to_dict())  # fmt: skip
        raise GateFailed(
            f"{candidate.ref} was not promoted to @{to}: the policy {report.policy} failed.\n{report.table()}\n"
            f"{_fix_hint(report, name, version, to)}",
            report,
        )
    if holder == version:
        return report  # it already holds the alias: nothing to move
    client.store.move_model_alias(name, to, version, expected=holder, actor=client.actor, reason="promote",
                                  detail={"report": report.to_dict()})  # fmt: skip
    return report


def rollback(client: Context, name: str, *, alias: str = "production") -> ModelVersion:
    """Point ``alias`` back at the version it held before its last move (an event records it)."""
    history = client.store.model_alias_history(name, alias)
    if not history:
        raise NotFound(f"Alias {name}@{alias} has never been set; there is nothing to roll back.")
    last = history[-1]
    previous = last["previous"]
    if previous is None:
        raise InvalidInput(
            f"{name}@{alias} had no holder before version {last['version']}; there is no earlier version to return to."
        )
    detail = {"from": last["version"], "to": previous}
    moved = client.store.move_model_alias(name, alias, previous, expected=last["version"], actor=client.actor,
                                          reason="rollback", detail=detail)  # fmt: skip
    assert moved is not None
    return moved
