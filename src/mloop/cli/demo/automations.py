"""The demo's automations (the rules that close the loop) and reading what they did.

- ``retrain-on-drift``: on a drift alert opened by a monitor, trigger ``pipeline:retrain`` on ``sensors@latest``
  (a cool-down and an hourly limit: one alert storm, one retrain);
- ``promote-retrained``: when a ``sensors`` version is registered, evaluate it on the newest private holdout and
  promote it to ``production`` through the model's gate (a worse model is refused there; the refusal is
  recorded with the gate's table).

The endpoint follows ``sensors@production``, so a promotion rolls the new version out as a canary by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.entities import AutomationAction

__all__ = ["RULES", "action_row", "actions_since", "create_automations"]

RULES: dict[str, dict[str, Any]] = {
    "retrain-on-drift": {
        "on": "monitor.alert",
        "where": "payload.state == 'opened' and payload.signal matches '*drift*'",
        "do": {"action": "run_pipeline", "pipeline": "retrain", "params": {"data": "sensors@latest"}},
        "cooldown": "10m", "max_per_hour": 3,
    },
    "promote-retrained": {
        "on": "model.version_registered",
        "where": "subject matches 'model:sensors/*'",
        "do": {"action": "promote", "model": "${subject}", "alias": "production",
               "evaluate_on": "sensors-holdout@latest", "target": "failure"},
    },
}  # fmt: skip


def create_automations(context: Context) -> list[str]:
    """Create the demo's rules; one line for each, as the demo prints it."""
    from mloop.automation import create_automation

    lines = []
    for name, spec in RULES.items():
        create_automation(context, name, spec)
        do = spec["do"]
        target = do.get("pipeline") or f"@{do.get('alias')}"
        where = f" where {spec['where']}" if spec.get("where") else ""
        lines.append(f"automation {name}: on {spec['on']}{where} do {do['action']} {target}")
    return lines


def actions_since(context: Context, since: int) -> list[AutomationAction]:
    """The actions created at or after ``since`` (ms), oldest first."""
    actions = context.store.list_automation_actions(since=since, limit=1000)
    return sorted(actions, key=lambda a: (a.created_at, a.id))


def action_row(action: AutomationAction) -> dict[str, Any]:
    """An action as the summary and ``--json`` show it."""
    took = action.duration_ms
    return {"automation": action.automation, "cause": action.cause, "event": action.event_id,
            "status": action.status, "seconds": None if took is None else round(took / 1000, 2),
            "outcome": dict(action.outcome), "error": action.error}  # fmt: skip
