"""The automation engine: reads the event log by its stored cursor, claims what matches, runs the actions.

::

    engine = Engine(context)
    engine.tick()        # claim due cron fires and new events (once each), then advance every open action

**Exactly once.** A tick reads the events after the engine's cursor (a batch at a time) and records every match
as an action keyed by ``(automation, event)`` *in the transaction that moves the cursor* (see
:mod:`mloop.store.protocols.automations`): after kill -9 the next engine starts from the stored cursor, so no
event is matched twice or missed. Claimed actions are then run; one found ``running`` by a new engine was cut
short and is resumed (actions are idempotent; a pipeline run still going is waited for, one that finished is
adopted: :mod:`mloop.automation.pipeline_action`).

**Storms and loops.** An automation in its ``cooldown`` since its last action, or with ``max_per_hour`` actions in
the last hour, records the match as ``skipped`` with the reason. Events written by an action carry its actor
(``automation:<name>/<action id>``), so a chain's depth is known: a match deeper than ``max_chain`` is recorded
``skipped`` ("chain too long") and one deeper still is ignored. Events of the engine itself (``automation.*``)
only match automations on an ``automation.`` pattern. An automation acts on events written after it was created.

**Approvals.** A promotion whose gate fails only for want of approvals waits (``waiting_approval``); the
``model.approved`` event of that version (``mloop models approve``) resumes it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mloop.automation.actions import Outcome, run_inline
from mloop.automation.pipeline_action import PipelineChildren
from mloop.automation.rules import Condition, match_type, parse_condition
from mloop.automation.spec import render
from mloop.context import Context
from mloop.entities import ActionClaim, Automation, AutomationAction, Event, iter_pages, now_ms
from mloop.errors import Conflict, MloopError, NotFound, StoreUnavailable
from mloop.store.protocols import ModelEvents

__all__ = ["MAX_ATTEMPTS", "Engine"]

_log = logging.getLogger("mloop.automation")
MAX_ATTEMPTS = 3  # a run_pipeline action whose run died (not failed) is started again at most this often
_HOUR = 3_600_000
_OPEN = ["pending", "running", "waiting_approval"]


@dataclass(frozen=True)
class _Rule:
    automation: Automation
    condition: Condition

    @property
    def name(self) -> str:
        return self.automation.name

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.automation.spec


def _event_dict(event: Event | None, cause: str) -> dict[str, Any]:
    if event is None:  # a cron fire: only its time
        return {"type": "cron", "subject": "", "actor": "", "id": None, "time": int(cause.split(":", 1)[1]),
                "payload": {}}  # fmt: skip
    return event.to_dict()


class Engine:
    def __init__(self, ctx: Context, *, python: str = sys.executable, batch: int = 500) -> None:
        self.ctx, self.batch = ctx, batch
        self.children = PipelineChildren(ctx, python=python)
        self._depths: dict[str, int] = {}
        self._approved: set[str] = set()  # model versions approved since the last look at waiting actions
        self._resume_waiting = True  # the first tick looks at every waiting action

    def rules(self) -> list[_Rule]:
        found = iter_pages(lambda cursor: self.ctx.store.list_automations(cursor=cursor))
        return [_Rule(a, parse_condition(a.spec.get("where", ""))) for a in found if not a.paused]

    def tick(self, now: int | None = None) -> list[AutomationAction]:
        """Claim due cron fires and new events, then advance the open actions; the actions that changed."""
        at = now_ms() if now is None else now
        rules = self.rules()
        changed = self.claim_cron(rules, at)
        changed += self.claim_events(rules, at)
        changed += self.work({r.name: r for r in rules})
        return changed

    # -- claiming -------------------------------------------------------------------------------------------

    def claim_cron(self, rules: list[_Rule], now: int) -> list[AutomationAction]:
        from mloop.pipelines.schedules import due_times

        out = []
        for rule in rules:
            cron, anchor = rule.spec["on"].get("cron"), rule.automation.anchor_at
            if cron is None or anchor is None:
                continue
            times, _ = due_times(cron, anchor, now)
            if times:  # missed fires run once, at the newest
                claimed = self.ctx.store.claim_automation_fire(rule.name, times[-1], expected_anchor=anchor,
                                                               actor=self.ctx.actor)  # fmt: skip
                out += [claimed] if claimed is not None else []
        return out

    def _depth(self, event: Event) -> int:
        """1 for an event a person or a service wrote; one more than its action's for an action's event."""
        kind, _, rest = event.actor.partition(":")
        if kind != "automation" or "/" not in rest:
            return 1
        action_id = rest.rsplit("/", 1)[1]
        if action_id not in self._depths:
            try:
                self._depths[action_id] = self.ctx.store.get_automation_action(action_id).depth
            except (NotFound, MloopError):
                self._depths[action_id] = 0
        return self._depths[action_id] + 1

    def _recent(self, name: str, now: int) -> list[int]:
        actions = self.ctx.store.list_automation_actions(automation=name, since=now - _HOUR, limit=100_000)
        return [a.created_at for a in actions if a.status != "skipped"]

    def _decide(self, rule: _Rule, depth: int, recent: list[int], now: int) -> tuple[str, str | None]:
        spec = rule.spec
        if depth > spec["max_chain"]:
            return "skipped", f"chain too long: {depth} automations deep (max_chain {spec['max_chain']})"
        cooldown_ms = int(spec["cooldown_s"] * 1000)
        if recent and cooldown_ms and now - max(recent) < cooldown_ms:
            wait_s = (max(recent) + cooldown_ms - now) / 1000
            ago = (now - max(recent)) / 1000
            return "skipped", f"cool-down: the last action was {ago:.0f} s ago ({wait_s:.0f} s left)"
        limit = spec["max_per_hour"]
        if limit and sum(1 for t in recent if t > now - _HOUR) >= limit:
            return "skipped", f"rate limit: {limit} actions in the last hour (max_per_hour {limit})"
        return "pending", None

    def claim_events(self, rules: list[_Rule], now: int) -> list[AutomationAction]:
        """Claim the matches among the events after the cursor, a batch at a time, until none are left."""
        event_rules = [r for r in rules if "event" in r.spec["on"]]
        recent: dict[str, list[int]] = {}
        out: list[AutomationAction] = []
        while True:
            cursor = self.ctx.store.get_automation_cursor()
            events = self.ctx.store.list_events(after=cursor, limit=self.batch).items
            if not events:
                return out
            claims = []
            for event in events:
                if event.type == ModelEvents.APPROVED:
                    self._approved.add(event.subject)
                claims += self._matches(event, event_rules, recent, now)
            try:
                made = self.ctx.store.claim_automation_actions(claims, cursor=events[-1].id, expected_cursor=cursor,
                                                               actor=self.ctx.actor)  # fmt: skip
            except Conflict:  # another engine claimed this batch (one scheduler per store is the rule)
                return out
            out += made
            if len(events) < self.batch:
                return out

    def _matches(self, event: Event, rules: list[_Rule], recent: dict[str, list[int]], now: int) -> list[ActionClaim]:
        claims = []
        as_dict: dict[str, Any] | None = None
        for rule in rules:
            pattern = rule.spec["on"]["event"]
            if event.type.startswith("automation.") and not pattern.startswith("automation."):
                continue
            if not match_type(pattern, event.type) or event.time < rule.automation.created_at:
                continue  # an automation acts on events from its creation on
            as_dict = as_dict or event.to_dict()
            if not rule.condition.matches(as_dict):
                continue
            depth = self._depth(event)
            if depth > rule.spec["max_chain"] + 1:
                continue  # the skipped claim one level up said why
            if rule.name not in recent:
                recent[rule.name] = self._recent(rule.name, now)
            times = recent[rule.name]
            status, reason = self._decide(rule, depth, times, now)
            if status == "pending":
                times.append(now)
            claims.append(ActionClaim(rule.name, f"event:{event.id}", event.id, depth, status,
                                      {"reason": reason} if reason else {}))  # fmt: skip
        return claims

    # -- running --------------------------------------------------------------------------------------------

    def _event(self, action: AutomationAction) -> Event | None:
        if action.event_id is None:
            return None
        found = self.ctx.store.list_events(after=action.event_id - 1, limit=1).items
        return found[0] if found and found[0].id == action.event_id else None

    def work(self, rules: dict[str, _Rule]) -> list[AutomationAction]:
        """Advance every open action, oldest first."""
        open_actions = self.ctx.store.list_automation_actions(statuses=_OPEN, limit=10_000)
        resume_all, self._resume_waiting = self._resume_waiting, False
        approved, self._approved = self._approved, set()
        out = []
        for action in reversed(open_actions):
            try:
                changed = self._advance(action, rules.get(action.automation), resume_all, approved)
            except StoreUnavailable:
                raise
            except Conflict:  # finished by someone else meanwhile
                changed = None
            out += [changed] if changed is not None else []
        return out

    def _finish(self, action: AutomationAction, outcome: Outcome) -> AutomationAction:
        done = self.ctx.store.finish_automation_action(action.id, status=outcome.status, actor=action.actor,
                                                       outcome=dict(outcome.outcome), error=outcome.error)  # fmt: skip
        _log.info("automation %s: %s -> %s %s", action.automation, action.cause, outcome.status, outcome.error or "")
        if outcome.status != "succeeded":
            self._note_alert(done)
        return done

    def _note_alert(self, action: AutomationAction) -> None:
        """When a chain that began with a ``monitor.alert`` stops short (a gate refused the retrained model, a step
        failed, an approval is awaited), say so on the alert: a ``monitor.alert_noted`` event on the monitor."""
        from mloop.automation.api import chain_root
        from mloop.store.protocols import MonitorEvents

        root = chain_root(self.ctx, action)
        if root is None or root.type != MonitorEvents.ALERT or "alert" not in root.payload:
            return
        why = action.error or "; ".join(action.outcome.get("reasons", [])) or action.outcome.get("reason", "")
        payload = {"alert": root.payload["alert"], "automation": action.automation, "action": action.id,
                   "status": action.status, "why": str(why)[:2000], "model": action.outcome.get("model")}  # fmt: skip
        self.ctx.store.append_event(MonitorEvents.ALERT_NOTED, root.subject, actor=action.actor, payload=payload)

    def _advance(
        self, action: AutomationAction, rule: _Rule | None, resume_all: bool, approved: set[str]
    ) -> AutomationAction | None:
        if rule is None:
            try:
                self.ctx.store.get_automation(action.automation)
                return None  # paused: its open actions wait
            except NotFound:
                return self._finish(action, Outcome("failed", {}, "the automation was deleted before it ran"))
        kind = rule.spec["do"]["action"]
        if action.status == "waiting_approval":
            model = str(action.outcome.get("model", ""))
            if not resume_all and model not in approved:
                return None
        if action.status == "running" and kind == "run_pipeline":
            return self._watch_pipeline(action, rule)
        event = self._event(action)
        try:
            do = render(rule.spec["do"], _event_dict(event, action.cause))
        except MloopError as exc:
            started = self.ctx.store.start_automation_action(action.id, actor=action.actor)
            return self._finish(started, Outcome("failed", {}, f"{type(exc).__name__}: {exc}"))
        started = self.ctx.store.start_automation_action(action.id, actor=action.actor)
        if kind == "run_pipeline":
            try:
                pipeline = self.children.start(started, do)
            except (MloopError, OSError) as exc:
                return self._finish(started, Outcome("failed", {"pipeline": do.get("pipeline")},
                                                     f"{type(exc).__name__}: {exc}"))  # fmt: skip
            _log.info("automation %s: started pipeline %s for %s", action.automation, pipeline, action.cause)
            return started
        try:
            outcome = run_inline(self.ctx, started, do, _event_dict(event, action.cause))
        except MloopError as exc:
            outcome = Outcome("failed", {}, f"{type(exc).__name__}: {exc}")
        return self._finish(started, outcome)

    def _watch_pipeline(self, action: AutomationAction, rule: _Rule) -> AutomationAction | None:
        children = self.children
        if children.running(action.id) or (action.id not in children.children and children.adopt(action)):
            return None
        result = children.outcome(action)
        if result is not None and result.get("status") == "KILLED":  # stopped with the scheduler: not a failure
            children.clean(action.id)
            result = None
        if result is None:  # the run process died (or was stopped) with no finished run: start it again
            if action.attempts >= MAX_ATTEMPTS:
                return self._finish(action, Outcome("failed", {}, f"the pipeline run died {action.attempts} times"))
            return self._restart(action, rule)
        children.clean(action.id)
        return self._finish(action, self._pipeline_outcome(action, result))

    def _restart(self, action: AutomationAction, rule: _Rule) -> AutomationAction | None:
        event = self._event(action)
        do = render(rule.spec["do"], _event_dict(event, action.cause))
        started = self.ctx.store.start_automation_action(action.id, actor=action.actor)
        self.children.start(started, do)
        return started

    def _pipeline_outcome(self, action: AutomationAction, result: Mapping[str, Any]) -> Outcome:
        run_id, status = result.get("run_id"), result.get("status")
        registered = [e.subject for e in self.ctx.store.list_events(types=[ModelEvents.VERSION_REGISTERED],
                                                                    limit=100_000).items
                      if e.actor == action.actor]  # fmt: skip
        outcome = {"run": f"run:{run_id}" if run_id else None, "status": status, "registered": registered,
                   **({"adopted": True} if result.get("adopted") else {})}  # fmt: skip
        if run_id:
            self._link(action, [f"run:{run_id}", *registered])
        if status != "FINISHED":
            return Outcome("failed", outcome, str(result.get("error") or f"the pipeline run ended {status}"))
        return Outcome("succeeded", outcome)

    def _link(self, action: AutomationAction, targets: list[str]) -> None:
        """Lineage: the cause's subject (the monitor that raised the alert ...) -> the run and what it registered."""
        event = self._event(action)
        source = event.subject if event is not None else f"automation:{action.automation}"
        for target in targets:
            try:
                self.ctx.store.add_lineage(source, target, "triggered", actor=action.actor)
            except MloopError as exc:  # a subject lineage cannot name: the history still has it
                _log.info("no lineage edge %s -> %s: %s", source, target, exc)

    def stop(self) -> None:
        self.children.stop()
