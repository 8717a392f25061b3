"""Automations, the actions they take, and the engine's cursor over the event log.

**Exactly once.** The engine reads events after its cursor and, for a batch of them, records every match as an
action keyed by ``(automation, cause)`` *and* moves its cursor past the batch in one transaction
(:meth:`AutomationStore.claim_automation_actions`, a compare-and-swap on the cursor). A restarted engine (after
kill -9) starts from the stored cursor: an event is never matched twice and never missed; an action claimed but
not finished is found by its status and resumed. A cron trigger claims its fire time like a schedule does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.entities import ActionClaim, Automation, AutomationAction, Page

__all__ = ["ENGINE_CURSOR", "WRITES", "AutomationEvents", "AutomationStore"]

ENGINE_CURSOR = "engine"


class AutomationEvents:
    CREATED = "automation.created"
    UPDATED = "automation.updated"
    DELETED = "automation.deleted"
    ACTION_QUEUED = "automation.action_queued"
    ACTION_SKIPPED = "automation.action_skipped"
    ACTION_STARTED = "automation.action_started"
    ACTION_FINISHED = "automation.action_finished"


WRITES: dict[str, str | tuple[str, ...] | None] = {
    "create_automation": AutomationEvents.CREATED,
    "update_automation": AutomationEvents.UPDATED,
    "delete_automation": AutomationEvents.DELETED,
    # one event per claim (queued or skipped); the contract's call claims one pending and one skipped action
    "claim_automation_actions": (AutomationEvents.ACTION_QUEUED, AutomationEvents.ACTION_SKIPPED),
    "claim_automation_fire": AutomationEvents.ACTION_QUEUED,
    "start_automation_action": AutomationEvents.ACTION_STARTED,
    "finish_automation_action": AutomationEvents.ACTION_FINISHED,
}


class AutomationStore(Protocol):
    def create_automation(
        self, name: str, *, spec: Mapping[str, Any], actor: str, anchor_at: int | None = None
    ) -> Automation:
        """A new active automation (AlreadyExists if the name is taken); the caller validates ``spec``.
        ``anchor_at`` (cron triggers): nothing at or before it fires."""
        ...

    def get_automation(self, name: str) -> Automation: ...

    def list_automations(self, *, cursor: str | None = None, limit: int = 100) -> Page[Automation]:
        """By name."""
        ...

    def update_automation(
        self, name: str, *, actor: str, spec: Mapping[str, Any] | None = None, paused: bool | None = None,
        anchor_at: int | None = None,
    ) -> Automation:  # fmt: skip
        """Change the spec and/or pause (no change, no event). Resuming moves a cron anchor to ``anchor_at``
        (default now): fire times that passed while paused never fire."""
        ...

    def delete_automation(self, name: str, *, actor: str) -> Automation:
        """Delete the rule; its actions stay (the history names the automation)."""
        ...

    def get_automation_cursor(self, name: str = ENGINE_CURSOR) -> int:
        """The id of the last event the engine handled (0 before the first)."""
        ...

    def claim_automation_actions(
        self, claims: Sequence[ActionClaim], *, cursor: int, expected_cursor: int, actor: str,
        name: str = ENGINE_CURSOR,
    ) -> list[AutomationAction]:  # fmt: skip
        """Record ``claims`` (each with its event) and move the cursor from ``expected_cursor`` to ``cursor``, in
        one transaction; :class:`~mloop.errors.Conflict` if the cursor moved (another engine handled them)."""
        ...

    def claim_automation_fire(
        self, name: str, fire_time: int, *, expected_anchor: int, actor: str
    ) -> AutomationAction | None:
        """Claim cron fire ``fire_time`` of automation ``name`` (a pending action, cause ``cron:<time>``) and move
        its anchor there, if the anchor is still ``expected_anchor``; else ``None``."""
        ...

    def start_automation_action(self, action_id: str, *, actor: str) -> AutomationAction:
        """``pending``/``running``/``waiting_approval`` -> ``running``, one more attempt (Conflict if finished)."""
        ...

    def finish_automation_action(
        self, action_id: str, *, status: str, actor: str, outcome: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> AutomationAction:  # fmt: skip
        """Record the outcome (``succeeded``, ``failed``, ``refused`` or ``waiting_approval``) with its event.
        Conflict if it is finished already (an action is finished once)."""
        ...

    def get_automation_action(self, action_id: str) -> AutomationAction: ...

    def list_automation_actions(
        self, *, automation: str | None = None, statuses: Sequence[str] | None = None, since: int | None = None,
        cause: str | None = None, limit: int = 100,
    ) -> list[AutomationAction]:  # fmt: skip
        """Newest first (by creation time); ``since``: created at or after it (ms)."""
        ...
