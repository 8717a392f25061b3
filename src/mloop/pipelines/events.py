"""Event types the pipelines package appends itself (not store writes): what the scheduler could not do.

Store writes record their own events (``schedule.fired``, ``pipeline.version_published`` ... in
:mod:`mloop.store.protocols.schedules` and :mod:`mloop.store.protocols.pipelines`).
"""

from __future__ import annotations

__all__ = ["SchedulerEvents"]


class SchedulerEvents:
    FIRE_FAILED = "schedule.fire_failed"  # a claimed fire that could not start (pipeline or parameters gone bad)
    RUN_FAILED = "schedule.run_failed"  # a fired run that did not finish (failed step, killed, error)
