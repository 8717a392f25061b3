"""Rollouts of an endpoint: starting one (by hand, or when a followed alias moves), and the canary's steps,
promotion and rollback, each written to the spec with the event and the figures that caused it.

The supervisor calls :meth:`Controller.tick` about once a second with the endpoint's current ``/metrics``
scrape. A rollout in progress keeps its state in the spec's ``canary`` field (``model``, ``stable``, ``step``,
``started_at``, ``step_started_at``), so a restarted supervisor carries on where the last one stopped (its
window starts again at the restart: the counts since the step began are not stored). The window of each step
starts at the first scrape after the step began; both versions are measured over that same window
(:func:`mloop.deployments.promstats.window`), and :func:`mloop.deployments.rollout.decide` says what to do.

Every write goes through :meth:`~mloop.store.protocols.endpoints.EndpointStore.update_endpoint` with the
generation it read, so a rollout step never overwrites a change a user made meanwhile (the controller then
reads the new spec at its next tick).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mloop.deployments.promstats import Scrape, parse_scrape, window
from mloop.deployments.rollout import Decision, RolloutPolicy, WindowStats, decide
from mloop.deployments.spec import canary_traffic, stable_version, traffic_of
from mloop.entities import Endpoint, now_ms
from mloop.errors import Conflict, MloopError
from mloop.store.protocols.endpoints import DeploymentEvents

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["Controller", "finish_rollout", "start_rollout"]

_log = logging.getLogger("mloop.deployments")


def start_rollout(
    context: Context, endpoint: Endpoint, model: str, *, actor: str, cause: str, policy: RolloutPolicy | None = None
) -> Endpoint:
    """Roll ``model`` (a pinned version ref) out on ``endpoint``: a canary at the policy's first step, or all at
    once when the policy has a single 100% step. Conflict if a rollout is already in progress."""
    spec = dict(endpoint.spec)
    if spec.get("canary"):
        raise Conflict(
            f"Endpoint {endpoint.name!r} is already rolling out {spec['canary']['model']}. Finish it first: "
            f"`mloop deploy promote {endpoint.name}` or `mloop deploy rollback {endpoint.name}`."
        )
    stable = stable_version(spec)
    if model == stable and len(traffic_of(spec)) == 1:
        return endpoint
    policy = policy or RolloutPolicy.from_dict(spec.get("rollout") or {})
    now = now_ms()
    figures = {"model": model, "stable": stable, "policy": policy.to_dict()}
    if policy.steps[0] >= 100:  # blue/green: switch at once, keep the old version to roll back to
        spec.update(traffic=canary_traffic(model, stable, 100), previous=stable, canary=None)
        return context.store.update_endpoint(
            endpoint.name, spec=spec, actor=actor, cause=cause, expected_generation=endpoint.generation,
            event=DeploymentEvents.ROLLOUT_FINISHED, payload={**figures, "action": "switch"},
        )  # fmt: skip
    spec.update(traffic=canary_traffic(model, stable, policy.steps[0]), rollout=policy.to_dict(),
                canary={"model": model, "stable": stable, "step": 0, "started_at": now,
                        "step_started_at": now})  # fmt: skip
    return context.store.update_endpoint(
        endpoint.name, spec=spec, actor=actor, cause=cause, expected_generation=endpoint.generation,
        event=DeploymentEvents.ROLLOUT_STARTED, payload={**figures, "canary_percent": policy.steps[0]},
    )  # fmt: skip


def finish_rollout(
    context: Context,
    endpoint: Endpoint,
    *,
    promote: bool,
    actor: str,
    cause: str,
    figures: Mapping[str, Any] | None = None,
) -> Endpoint:
    """End the rollout in progress: promote the canary to 100% or roll back to the stable version. Outside a
    rollout, ``promote=False`` returns to the previous version (the one the last rollout replaced)."""
    spec = dict(endpoint.spec)
    canary = spec.get("canary")
    payload = dict(figures or {})
    if canary:
        winner, loser = (canary["model"], canary["stable"]) if promote else (canary["stable"], canary["model"])
    elif promote:
        raise Conflict(f"Endpoint {endpoint.name!r} has no rollout in progress; nothing to promote.")
    elif spec.get("previous"):
        winner, loser = spec["previous"], stable_version(spec)
    else:
        raise Conflict(f"Endpoint {endpoint.name!r} has no rollout in progress and no previous version to roll "
                       "back to.")  # fmt: skip
    spec.update(traffic=[{"model": winner, "weight": 100.0}], canary=None, previous=loser)
    if not promote:
        spec["held_back"] = loser  # a followed alias still pointing at it is not rolled out again
    event = DeploymentEvents.ROLLOUT_FINISHED if promote else DeploymentEvents.ROLLED_BACK
    payload.update(model=winner, replaced=loser)
    return context.store.update_endpoint(
        endpoint.name, spec=spec, actor=actor, cause=cause, expected_generation=endpoint.generation, event=event,
        payload=payload,
    )  # fmt: skip


class Controller:
    """The rollout loop of one endpoint (run by its supervisor)."""

    def __init__(self, context: Context, name: str, *, actor: str = "mloop-rollout") -> None:
        self.context = context
        self.name = name
        self.actor = actor
        self.baseline: Scrape | None = None  # the scrape at the start of the current step's window
        self.window_key: tuple[Any, ...] | None = None
        self.last: Decision | None = None
        self.stable_before: WindowStats | None = None  # the stable's window in the last step it served traffic
        self.stable_predictions: list[Any] | None = None  # the stable's predictions in the last step it served

    def tick(self, endpoint: Endpoint, metrics_text: str | None) -> Endpoint:
        """Follow the alias, then judge the canary; returns the endpoint as it is after any change."""
        try:
            endpoint = self._follow(endpoint)
            if endpoint.spec.get("canary") and metrics_text is not None:
                endpoint = self._judge(endpoint, parse_scrape(metrics_text))
        except Conflict:  # someone changed the spec meanwhile: look again at the next tick
            self.baseline = None
            return self.context.store.get_endpoint(self.name)
        return endpoint

    def _prediction_guard(self, decision: Decision, bound: float, canary: Mapping[str, Any]) -> Decision:
        """Turn a step or promotion into a rollback when the canary's predictions shifted from the stable's
        over this step's window (the live rows collected since it started); figures go into the decision."""
        from mloop.artifacts.collected_read import read_collected
        from mloop.deployments.divergence import prediction_shift

        since = datetime.fromtimestamp(int(canary["step_started_at"]) / 1000, UTC)
        try:
            table = read_collected(self.context.artifacts.uri, self.name, since=since, role="live", sort=False)
        except (MloopError, OSError) as exc:
            _log.warning("endpoint %s: no collected rows to compare predictions (%s)", self.name, exc)
            return decision
        if "prediction" not in table.column_names:
            return decision
        models, predictions = table.column("model").to_pylist(), table.column("prediction").to_pylist()
        sides = {m: [p for mm, p in zip(models, predictions, strict=True) if mm == m and p is not None]
                 for m in (canary["stable"], canary["model"])}  # fmt: skip
        if not sides[canary["stable"]] or not sides[canary["model"]]:
            stable = self.stable_predictions
            if stable is None or not sides[canary["model"]]:
                return decision
            sides[canary["stable"]] = stable
        self.stable_predictions = sides[canary["stable"]]
        shift = prediction_shift(sides[canary["stable"]], sides[canary["model"]])
        figures = {**decision.figures, "prediction_shift": {**shift, "max_psi": bound}}
        if shift["psi"] <= bound:
            return Decision(decision.action, decision.step, decision.canary_percent, decision.reason, figures)
        reason = (f"rolled back at {decision.figures.get('canary_percent', 0):g}%: the canary's predictions shifted "
                  f"from the stable's (PSI {shift['psi']:.3f} > {bound:g}, {shift['method']}, "
                  f"{shift['stable_rows']} stable and {shift['canary_rows']} canary rows).")  # fmt: skip
        return Decision("rollback", int(canary["step"]), 0.0, reason, figures)

    def _follow(self, endpoint: Endpoint) -> Endpoint:
        spec = endpoint.spec
        alias = spec.get("follow")
        if not alias or spec.get("canary"):
            return endpoint
        from mloop.registry.loader import resolve_model

        try:
            target = resolve_model(self.context, alias).ref
        except MloopError as exc:  # the alias was removed: keep serving what we serve
            _log.warning("endpoint %s: cannot resolve %s (%s)", self.name, alias, exc)
            return endpoint
        if target == stable_version(spec) or target == spec.get("held_back"):
            return endpoint
        _log.info("endpoint %s: %s moved to %s; rolling it out", self.name, alias, target)
        return start_rollout(self.context, endpoint, target, actor=self.actor, cause=f"{alias} moved to {target}")

    def _judge(self, endpoint: Endpoint, scrape: Scrape) -> Endpoint:
        canary = endpoint.spec["canary"]
        key = (canary["model"], canary["step"], canary["step_started_at"])
        if self.window_key != key or self.baseline is None:
            if self.window_key is None or self.window_key[0] != key[0]:
                self.stable_before = None  # another rollout
            self.window_key, self.baseline = key, scrape  # the window of this step starts now
            return endpoint
        policy = RolloutPolicy.from_dict(endpoint.spec.get("rollout") or {})
        stable = window(self.baseline, scrape, canary["stable"])
        if stable.requests == 0 and self.stable_before is not None:
            stable = self.stable_before  # at 100% the stable serves nothing: judge against its last step's window
        decision = decide(
            policy, step=int(canary["step"]), step_started_ms=int(canary["step_started_at"]), now_ms=now_ms(),
            stable=stable, canary=window(self.baseline, scrape, canary["model"]),
        )  # fmt: skip
        if decision.action in ("step", "promote") and policy.max_prediction_psi is not None:
            decision = self._prediction_guard(decision, policy.max_prediction_psi, canary)
        if decision.action == "step" and stable.requests > 0:
            self.stable_before = stable
        self.last = decision
        if decision.action == "hold":
            return endpoint
        figures = decision.to_dict()
        cause = f"canary analysis: {decision.reason}"
        self.baseline = None
        if decision.action in ("promote", "rollback"):
            return finish_rollout(self.context, endpoint, promote=decision.action == "promote", actor=self.actor,
                                  cause=cause, figures=figures)  # fmt: skip
        spec = dict(endpoint.spec)
        spec["traffic"] = canary_traffic(canary["model"], canary["stable"], decision.canary_percent)
        spec["canary"] = {**canary, "step": decision.step, "step_started_at": now_ms()}
        return self.context.store.update_endpoint(
            self.name, spec=spec, actor=self.actor, cause=cause, expected_generation=endpoint.generation,
            event=DeploymentEvents.ROLLOUT_STEP, payload=figures,
        )  # fmt: skip
