"""What an automation does: promote through the gate, deploy (canary, then full), roll back, notify.

Each action runs in an :class:`ActingContext` whose actor is the action's own (``automation:<name>/<action id>``),
so every write it makes is recorded as the automation's and the engine can follow chains (an event written by an
action is one step deeper). Actions are idempotent: run again after a crash, each first checks whether its effect
is there already (the alias already points at the version, the endpoint already rolls it out, a rollback event by
this actor exists) and then does nothing. Notifications are at least once (documented). ``run_pipeline`` runs in
a process of its own: :mod:`mloop.automation.pipeline_action`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.context import Context
from mloop.entities import AutomationAction
from mloop.errors import GateFailed, InvalidInput, NotFound
from mloop.refs import parse_ref

__all__ = ["ActingContext", "Outcome", "run_inline"]

_log = logging.getLogger("mloop.automation")


class ActingContext(Context):
    """The same workspace as ``base``, writing as ``actor``."""

    def __init__(self, base: Context, actor: str) -> None:
        self.workspace = base.workspace
        self._packages = None
        self._actor = actor

    @property
    def actor(self) -> str:
        return self._actor

    def close(self) -> None:  # the base context owns the workspace
        return None


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | failed | refused | waiting_approval
    outcome: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


def _version(ctx: Context, text: str) -> tuple[str, int]:
    ref = parse_ref(str(text), default_kind="model")
    if ref.kind != "model":
        raise InvalidInput(f"{text!r} is not a model version; use model:NAME/VERSION (or ${{subject}} of a "
                           "model.version_registered event).")  # fmt: skip
    version = ctx.store.get_model_version(ref.name, ref.version, ref.alias)
    return version.name, version.version


def _done_before(ctx: Context, action: AutomationAction, subject: str, types: tuple[str, ...]) -> bool:
    """An earlier attempt of this action wrote one of ``types`` on ``subject`` (it was killed before finishing)."""
    if action.attempts <= 1:
        return False
    events = ctx.store.list_events(subject=subject, types=list(types), limit=1000).items
    return any(e.actor == action.actor for e in events)


def promote(ctx: Context, action: AutomationAction, do: Mapping[str, Any]) -> Outcome:
    from mloop.registry import api

    name, version = _version(ctx, do.get("model") or "")
    alias = str(do.get("alias") or "production")
    target = {"model": f"model:{name}/{version}", "alias": alias}
    try:
        if ctx.store.get_model_version(name, alias=alias).version == version:
            return Outcome("succeeded", {**target, "already": True})
    except NotFound:
        pass
    if do.get("evaluate_on"):
        ev = api.evaluate(target["model"], str(do["evaluate_on"]), target=do.get("target"), client=ctx)
        target["evaluated_on"] = ev.data_ref
    try:
        report = api.promote(name, version, to=alias, policy=do.get("policy"), client=ctx)
    except GateFailed as refusal:
        report_dict = refusal.report.to_dict() if hasattr(refusal.report, "to_dict") else {}
        failed = [c for c in report_dict.get("checks", []) if not c["passed"]]
        reasons = [f"{c['check']}: measured {c['measured']}; required {c['required']}" for c in failed]
        only_approvals = bool(failed) and all(str(c["check"]).startswith("approvals") for c in failed)
        status = "waiting_approval" if only_approvals else "refused"
        return Outcome(status, {**target, "reasons": reasons, "report": report_dict})
    return Outcome("succeeded", {**target, "report": report.to_dict(), "previous": report.previous})


def deploy(ctx: Context, action: AutomationAction, do: Mapping[str, Any]) -> Outcome:
    from mloop.deployments import endpoints
    from mloop.deployments.spec import stable_version, traffic_of

    name, version = _version(ctx, do.get("model") or "")
    model = f"model:{name}/{version}"
    endpoint = ctx.store.get_endpoint(str(do["endpoint"]))
    spec = dict(endpoint.spec)
    canary = (spec.get("canary") or {}).get("model")
    if canary == model or (canary is None and stable_version(spec) == model and len(traffic_of(spec)) == 1):
        return Outcome("succeeded", {"endpoint": endpoint.name, "model": model, "already": True})
    cause = f"automation {action.automation} ({action.cause})"
    made = endpoints.update(ctx, endpoint.name, canary=model, steps=do.get("steps"), cause=cause)
    state = "canary" if made.spec.get("canary") else "switched"
    return Outcome("succeeded", {"endpoint": endpoint.name, "model": model, "rollout": state,
                                 "generation": made.generation})  # fmt: skip


def rollback(ctx: Context, action: AutomationAction, do: Mapping[str, Any]) -> Outcome:
    from mloop.deployments import endpoints
    from mloop.registry import api
    from mloop.store.protocols import DeploymentEvents, ModelEvents

    if do.get("endpoint"):
        name = str(do["endpoint"])
        if _done_before(ctx, action, f"deployment:{name}", (DeploymentEvents.ROLLED_BACK,)):
            return Outcome("succeeded", {"endpoint": name, "already": True})
        made = endpoints.rollback(ctx, name, cause=f"automation {action.automation} ({action.cause})")
        return Outcome("succeeded", {"endpoint": name, "traffic": made.spec.get("traffic")})
    model = parse_ref(str(do["model"]), default_kind="model").name
    alias = str(do.get("alias") or "production")
    if _done_before(ctx, action, f"model:{model}", (ModelEvents.ALIAS_MOVED,)):
        return Outcome("succeeded", {"model": model, "alias": alias, "already": True})
    back = api.rollback(model, alias=alias, client=ctx)
    return Outcome("succeeded", {"model": model, "alias": alias, "now": back.ref})


def notify(ctx: Context, action: AutomationAction, do: Mapping[str, Any], event: Mapping[str, Any]) -> Outcome:
    import subprocess

    from mloop.monitoring.notify import post_json

    body = {"automation": action.automation, "action": action.id, "cause": action.cause,
            "message": str(do.get("message") or f"automation {action.automation}: {action.cause}"),
            "event": dict(event)}  # fmt: skip
    raw = json.dumps(body, sort_keys=True, default=str).encode()
    if do.get("webhook"):
        post_json(str(do["webhook"]), raw, int(do.get("retries", 4)), float(do.get("timeout", 5.0)))
        return Outcome("succeeded", {"webhook": do["webhook"]})
    if do.get("command"):
        argv = [str(a) for a in do["command"]]
        done = subprocess.run(argv, input=raw, capture_output=True, timeout=float(do.get("timeout", 30.0)), check=False)
        if done.returncode != 0:
            return Outcome(
                "failed",
                {"command": argv, "exit_code": done.returncode},
                f"{argv[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}",
            )
        return Outcome("succeeded", {"command": argv})
    logger = do["log"] if isinstance(do.get("log"), str) else "mloop.automation"
    logging.getLogger(logger).warning("%s", body["message"])
    return Outcome("succeeded", {"log": logger, "message": body["message"]})


def run_inline(ctx: Context, action: AutomationAction, do: Mapping[str, Any], event: Mapping[str, Any]) -> Outcome:
    """Run a promote, deploy, rollback or notify action (``do`` already rendered from ``event``)."""
    acting = ActingContext(ctx, action.actor)
    kind = do["action"]
    if kind == "promote":
        return promote(acting, action, do)
    if kind == "deploy":
        return deploy(acting, action, do)
    if kind == "rollback":
        return rollback(acting, action, do)
    if kind == "notify":
        return notify(acting, action, do, event)
    raise InvalidInput(f"Action {kind!r} does not run inline.")
