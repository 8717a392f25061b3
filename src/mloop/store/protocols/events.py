"""The event log: the audit trail and the bus automation reads by cursor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.entities import Event, Page

__all__ = ["WRITES", "EventStore"]


WRITES: dict[str, str | None] = {"append_event": "*"}


class EventStore(Protocol):
    def append_event(self, type: str, subject: str, *, actor: str, payload: Mapping[str, Any] | None = None) -> Event:
        """Record an event that is not a state change of its own (an audited read, a refused promotion)."""
        ...

    def list_events(
        self,
        *,
        types: Sequence[str] | None = None,
        subject: str | None = None,
        after: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Event]:
        """Events in the order they were committed (oldest first), after the event id ``after`` when given.

        Ids grow in commit order on every implementation, so a reader that remembers the last id it handled
        (the automation engine's cursor) sees every event exactly once, even with concurrent writers.
        """
        ...
