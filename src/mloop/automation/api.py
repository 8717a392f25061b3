"""The library behind ``mloop automations`` and the SDK: create, list, pause, resume, delete, history, apply.

::

    from mloop.automation import create_automation, list_actions
    create_automation(context, "retrain-on-drift", {"on": "monitor.alert", "where": "payload.state == 'opened'",
                      "do": {"action": "run_pipeline", "pipeline": "retrain"}, "cooldown": "30m"})
    list_actions(context, automation="retrain-on-drift")      # newest first, with cause, status and outcome

Automations can also live in the workspace file (``[automations.NAME]`` tables, the same fields):
:func:`apply_config` (run by ``mloop scheduler`` at start and by ``mloop automations apply``) creates and
updates them in the store and deletes those it made that the file no longer has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mloop.automation.spec import check_spec
from mloop.context import Context
from mloop.entities import Automation, AutomationAction, Event, iter_pages, now_ms
from mloop.errors import InvalidInput, NotFound

__all__ = [
    "Applied",
    "apply_config",
    "chain",
    "chain_root",
    "create_automation",
    "delete_automation",
    "get_automation",
    "list_actions",
    "list_automations",
    "set_paused",
]

FROM_FILE = "workspace file"  # the spec's "source" for automations made by apply_config


def create_automation(context: Context, name: str, spec: Mapping[str, Any]) -> Automation:
    """Check ``spec`` (:func:`mloop.automation.spec.check_spec`) and store the automation; a cron trigger counts
    from now (nothing before it fires)."""
    checked = check_spec(spec)
    anchor = now_ms() if "cron" in checked["on"] else None
    return context.store.create_automation(name, spec=checked, actor=context.actor, anchor_at=anchor)


def get_automation(context: Context, name: str) -> Automation:
    return context.store.get_automation(name)


def list_automations(context: Context) -> list[Automation]:
    return list(iter_pages(lambda cursor: context.store.list_automations(cursor=cursor)))


def set_paused(context: Context, name: str, paused: bool) -> Automation:
    """Pause (matching events are not acted on; open actions wait) or resume (a cron trigger counts from now)."""
    return context.store.update_automation(name, actor=context.actor, paused=paused)


def delete_automation(context: Context, name: str) -> Automation:
    """Delete the rule; its history stays."""
    return context.store.delete_automation(name, actor=context.actor)


def list_actions(
    context: Context, *, automation: str | None = None, statuses: Sequence[str] | None = None, limit: int = 50
) -> list[AutomationAction]:
    """Actions newest first (all automations unless ``automation``)."""
    if automation is not None and not _has_history(context, automation):
        context.store.get_automation(automation)  # NotFound names the fix for a misspelt name
    return context.store.list_automation_actions(automation=automation, statuses=statuses, limit=limit)


def _has_history(context: Context, name: str) -> bool:
    return bool(context.store.list_automation_actions(automation=name, limit=1))


def _parent(context: Context, action: AutomationAction) -> AutomationAction | None:
    if action.event_id is None:
        return None
    found = context.store.list_events(after=action.event_id - 1, limit=1).items
    if not found or found[0].id != action.event_id:
        return None
    kind, _, rest = found[0].actor.partition(":")
    if kind != "automation" or "/" not in rest:
        return None
    try:
        return context.store.get_automation_action(rest.rsplit("/", 1)[1])
    except NotFound:
        return None


def chain_root(context: Context, action: AutomationAction) -> Event | None:
    """The event that started ``action``'s chain (a person's or a service's event), or None (a cron fire)."""
    first = action
    while (parent := _parent(context, first)) is not None:
        first = parent
    if first.event_id is None:
        return None
    found = context.store.list_events(after=first.event_id - 1, limit=1).items
    return found[0] if found and found[0].id == first.event_id else None


def chain(context: Context, action_id: str, *, window: int = 2000) -> list[AutomationAction]:
    """The chain ``action_id`` is part of, from the action a person's (or a service's) event caused down to the
    last action it led to, in order (looked for among the newest ``window`` actions)."""
    action = context.store.get_automation_action(action_id)
    up = [action]
    while (parent := _parent(context, up[0])) is not None and len(up) < 100:
        up.insert(0, parent)
    recent = context.store.list_automation_actions(limit=window)
    children: dict[str, list[AutomationAction]] = {}
    for candidate in reversed(recent):
        parent = _parent(context, candidate) if candidate.depth > 1 else None
        if parent is not None:
            children.setdefault(parent.id, []).append(candidate)
    out, queue = list(up), [up[-1]]
    while queue and len(out) < 1000:
        for child in children.get(queue.pop(0).id, []):
            if child.id not in {a.id for a in out}:
                out.append(child)
                queue.append(child)
    return out


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted, "unchanged": self.unchanged}


def apply_config(context: Context, config: Mapping[str, Mapping[str, Any]] | None = None) -> Applied:
    """Make the store's automations match the workspace file's ``[automations.NAME]`` tables (or ``config``).

    Every table is checked before anything changes (one bad table changes nothing). Automations created by hand
    (CLI, SDK) are never touched; one of the same name as a table is an error naming it.
    """
    wanted = dict(config if config is not None else context.settings.automations)
    checked: dict[str, dict[str, Any]] = {}
    for name, spec in wanted.items():
        try:
            checked[name] = {**check_spec(spec), "source": FROM_FILE}
        except InvalidInput as exc:
            raise InvalidInput(f"[automations.{name}] in the workspace file: {exc}") from None
    existing = {a.name: a for a in list_automations(context)}
    for name in checked:
        if name in existing and existing[name].spec.get("source") != FROM_FILE:
            raise InvalidInput(
                f"[automations.{name}] in the workspace file has the name of an automation made by hand; rename "
                f"the table or delete it first: `mloop automations delete {name}`."
            )
    applied = Applied()
    for name, spec in checked.items():
        if name not in existing:
            anchor = now_ms() if "cron" in spec["on"] else None
            context.store.create_automation(name, spec=spec, actor=context.actor, anchor_at=anchor)
            applied.created.append(name)
        elif dict(existing[name].spec) != spec:
            context.store.update_automation(name, actor=context.actor, spec=spec,
                                            anchor_at=now_ms() if "cron" in spec["on"] else None)  # fmt: skip
            applied.updated.append(name)
        else:
            applied.unchanged.append(name)
    for name, automation in existing.items():
        if automation.spec.get("source") == FROM_FILE and name not in checked:
            context.store.delete_automation(name, actor=context.actor)
            applied.deleted.append(name)
    return applied
