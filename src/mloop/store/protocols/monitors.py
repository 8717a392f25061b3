"""Monitors (``monitor:<name>``), their results per window (a time series) and their alerts.

A window's results, the monitor's new cursor and its alert changes are written in one transaction by
:meth:`MonitorStore.record_monitor_window`, with a compare-and-swap on the cursor the caller read: a window is
recorded exactly once even if two processes compute it, and a crash leaves either all of it or none. Each alert
change records one ``monitor.alert`` event (``state``: ``opened``, ``still_open`` or ``resolved``, with the
figures that caused it); results are data and record no event (a monitor writes dozens per window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.entities import AlertChange, Monitor, MonitorAlert, MonitorResult, Page

__all__ = ["WRITES", "MonitorEvents", "MonitorStore"]


class MonitorEvents:
    CREATED = "monitor.created"
    UPDATED = "monitor.updated"
    DELETED = "monitor.deleted"
    ALERT = "monitor.alert"
    ALERT_NOTED = "monitor.alert_noted"  # appended (not a store write): what an automation did about an alert


WRITES: dict[str, str | tuple[str, ...] | None] = {
    "create_monitor": MonitorEvents.CREATED,
    "update_monitor": MonitorEvents.UPDATED,
    "record_monitor_window": (MonitorEvents.ALERT,),  # one per alert change (the contract's call makes one)
    "delete_monitor": MonitorEvents.DELETED,
}


class MonitorStore(Protocol):
    def create_monitor(self, name: str, *, spec: Mapping[str, Any], actor: str) -> Monitor:
        """A new monitor (AlreadyExists if the name is taken); the caller validates ``spec``."""
        ...

    def get_monitor(self, name: str) -> Monitor: ...

    def list_monitors(self, *, cursor: str | None = None, limit: int = 100) -> Page[Monitor]:
        """By name."""
        ...

    def update_monitor(
        self, name: str, *, actor: str, spec: Mapping[str, Any] | None = None, paused: bool | None = None
    ) -> Monitor:
        """Change the spec and/or pause it (no change, no event)."""
        ...

    def record_monitor_window(
        self, name: str, *, results: Sequence[MonitorResult], cursor: Mapping[str, Any],
        expected_cursor: Mapping[str, Any], alerts: Sequence[AlertChange] = (), actor: str,
    ) -> Monitor:  # fmt: skip
        """Store one window: its results, the new cursor (Conflict if the stored cursor is not
        ``expected_cursor``: someone recorded it first) and its alert changes, each with its ``monitor.alert``
        event, in one transaction."""
        ...

    def list_monitor_results(
        self, name: str, *, since: int | None = None, until: int | None = None, signal: str | None = None,
        feature: str | None = None, limit: int = 10_000,
    ) -> list[MonitorResult]:  # fmt: skip
        """Results with ``since <= window_start < until``, oldest first (then by signal, feature)."""
        ...

    def list_monitor_alerts(self, name: str | None = None, *, state: str | None = None) -> list[MonitorAlert]:
        """Alerts of one monitor (or all), newest first; ``state`` ``open`` or ``resolved``."""
        ...

    def delete_monitor(self, name: str, *, actor: str) -> Monitor:
        """Delete it with its results and alerts."""
        ...
