"""Automations: rules "on an event or a schedule, where a condition holds, do an action", and their actions.

An :class:`Automation` is the rule as stored (its ``spec`` is validated by :mod:`mloop.automation.spec`). Each
time it matches an event (or its schedule fires), the engine claims one :class:`AutomationAction` keyed by
``(automation, cause)``: ``cause`` is ``event:<id>`` or ``cron:<fire time>``, so an event is handled once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTION_STATUSES", "FINISHED_STATUSES", "ActionClaim", "Automation", "AutomationAction"]

# pending -> running -> succeeded | failed | refused | waiting_approval; or skipped at once (cool-down, rate
# limit, chain too long). waiting_approval -> running again when an approval arrives.
ACTION_STATUSES = ("pending", "running", "succeeded", "failed", "refused", "waiting_approval", "skipped")
FINISHED_STATUSES = ("succeeded", "failed", "refused", "skipped")


@dataclass(frozen=True)
class Automation:
    """A rule. ``anchor_at`` is where a cron trigger's next fire is counted from (``None`` for event triggers)."""

    id: str
    name: str
    spec: Mapping[str, Any]
    created_at: int
    updated_at: int
    actor: str
    paused: bool = False
    anchor_at: int | None = None

    @property
    def ref(self) -> str:
        return f"automation:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref, "spec": dict(self.spec), "paused": self.paused,
                "anchor_at": self.anchor_at, "created_at": self.created_at, "updated_at": self.updated_at,
                "actor": self.actor, "id": self.id}  # fmt: skip


@dataclass(frozen=True)
class ActionClaim:
    """What the engine asks the store to record for one match: ``status`` ``pending`` or ``skipped`` (with
    ``outcome`` saying why); ``depth`` counts the automations in the chain that led here (1 for a user's event)."""

    automation: str
    cause: str
    event_id: int | None = None
    depth: int = 1
    status: str = "pending"
    outcome: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AutomationAction:
    """One handling of one cause by one automation, with its outcome; ``actor`` is what its own writes record."""

    id: str
    automation: str
    cause: str
    event_id: int | None
    depth: int
    status: str
    attempts: int
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    outcome: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def actor(self) -> str:
        return f"automation:{self.automation}/{self.id}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "automation": self.automation, "cause": self.cause, "event_id": self.event_id,
                "depth": self.depth, "status": self.status, "attempts": self.attempts,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "duration_ms": self.duration_ms, "outcome": dict(self.outcome), "error": self.error}  # fmt: skip
