"""The SDK's automation functions (``mloop.create_automation`` ...): the library calls of
:mod:`mloop.automation.api` on the current client (``mloop.use_client``) or the one given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.entities import Automation, AutomationAction

__all__ = ["automation_history", "create_automation", "delete_automation", "list_automations"]


def _client(client: Context | None) -> Context:
    from mloop.context import current_context

    return client if client is not None else current_context()


def create_automation(name: str, spec: Mapping[str, Any], *, client: Context | None = None) -> Automation:
    """``mloop.create_automation("retrain", {"on": "monitor.alert", "where": "payload.state == 'opened'",
    "do": {"action": "run_pipeline", "pipeline": "retrain"}, "cooldown": "30m"})`` (docs/automation.md)."""
    from mloop.automation.api import create_automation as create

    return create(_client(client), name, spec)


def list_automations(*, client: Context | None = None) -> list[Automation]:
    from mloop.automation.api import list_automations as listing

    return listing(_client(client))


def delete_automation(name: str, *, client: Context | None = None) -> Automation:
    from mloop.automation.api import delete_automation as delete

    return delete(_client(client), name)


def automation_history(
    name: str | None = None, *, statuses: Sequence[str] | None = None, limit: int = 50, client: Context | None = None
) -> list[AutomationAction]:
    """What automations did, newest first: each action with its cause (event id), status, outcome, duration."""
    from mloop.automation.api import list_actions

    return list_actions(_client(client), automation=name, statuses=statuses, limit=limit)
