"""Events: the audit log and the bus automation listens to.

Event *types* are declared next to the code that writes them, not in one list: each store noun's module in
:mod:`mloop.store.protocols` (``RunEvents``, ``DatasetEvents`` ...), :class:`mloop.guard.HoldoutEvents`,
:mod:`mloop.registry.events`, ``mloop.workspace.WORKSPACE_INITIALISED`` and ``mloop.tracking.gc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """``subject`` is a reference (``run:<id>``); ``id`` grows with every event written."""

    id: int
    type: str
    subject: str
    actor: str
    time: int
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (the CLI's ``--json``, the REST server)."""
        return {"id": self.id, "type": self.type, "subject": self.subject, "actor": self.actor, "time": self.time,
                "payload": dict(self.payload)}  # fmt: skip
