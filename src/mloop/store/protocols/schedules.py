"""Schedules of published pipelines, their claimed fires, and the one-scheduler-per-store lock.

A fire is *claimed* in the store (``claim_schedule_fire``) in the same transaction that moves the schedule's
anchor past it, and a fire time can be claimed once: two schedulers, or one restarted, never fire it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mloop.entities import Page, Schedule, ScheduleFire

__all__ = ["WRITES", "ExclusiveLock", "ScheduleEvents", "ScheduleStore"]


class ScheduleEvents:
    CREATED = "schedule.created"
    PAUSED = "schedule.paused"
    RESUMED = "schedule.resumed"
    DELETED = "schedule.deleted"
    FIRED = "schedule.fired"
    MISSED = "schedule.missed"


WRITES: dict[str, str | None] = {
    "create_schedule": ScheduleEvents.CREATED,
    "pause_schedule": ScheduleEvents.PAUSED,
    "resume_schedule": ScheduleEvents.RESUMED,
    "delete_schedule": ScheduleEvents.DELETED,
    "claim_schedule_fire": ScheduleEvents.FIRED,
    "skip_schedule_fires": ScheduleEvents.MISSED,
}


class ExclusiveLock(Protocol):
    """A held store-wide lock (see :meth:`ScheduleStore.try_exclusive_lock`); released by ``release()``."""

    @property
    def name(self) -> str: ...

    def held(self) -> bool:
        """Still held (``False`` once released, or when the database connection holding it was lost)."""
        ...

    def release(self) -> None: ...


class ScheduleStore(Protocol):
    def create_schedule(
        self,
        name: str,
        *,
        pipeline: str,
        cron: str,
        actor: str,
        version: int | None = None,
        params: Mapping[str, Any] | None = None,
        missed: str = "skip",
        anchor_at: int | None = None,
    ) -> Schedule:
        """A new active schedule (AlreadyExists if the name is taken); nothing at or before ``anchor_at`` (default:
        now) fires. The caller validates ``cron`` and ``params`` (the store keeps them as given)."""
        ...

    def get_schedule(self, name: str) -> Schedule: ...

    def list_schedules(self, *, cursor: str | None = None, limit: int = 100) -> Page[Schedule]:
        """By name."""
        ...

    def pause_schedule(self, name: str, *, actor: str) -> Schedule:
        """Stop firing (no change and no event when already paused)."""
        ...

    def resume_schedule(self, name: str, *, actor: str, anchor_at: int | None = None) -> Schedule:
        """Fire again from ``anchor_at`` (default now) on: times passed while paused never fire."""
        ...

    def delete_schedule(self, name: str, *, actor: str) -> Schedule: ...

    def claim_schedule_fire(
        self, name: str, fire_time: int, *, expected_anchor: int, actor: str, missed: int = 0
    ) -> ScheduleFire | None:
        """Record "``name`` fired for ``fire_time``" and move its anchor there, if the anchor is still
        ``expected_anchor`` and that time was not claimed; else ``None`` (someone else claimed it: do not run)."""
        ...

    def skip_schedule_fires(
        self, name: str, until: int, *, expected_anchor: int, actor: str, missed: int
    ) -> Schedule | None:
        """Move the anchor to ``until`` without firing (``missed`` fire times skipped); ``None`` if it moved."""
        ...

    def list_schedule_fires(self, name: str, *, limit: int = 100) -> list[ScheduleFire]:
        """Newest first."""
        ...

    def try_exclusive_lock(self, name: str, *, holder: str) -> ExclusiveLock:
        """Hold the store-wide lock ``name`` until ``release()`` (or the process ends), or raise
        :class:`~mloop.errors.Conflict` naming the current holder (``holder`` text of the one holding it)."""
        ...
