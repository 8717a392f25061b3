"""``mloop scheduler``: schedules and automations in one long-running process, under the store-wide lock.

:func:`serve` applies the workspace file's ``[automations]`` (:func:`mloop.automation.api.apply_config`), then
runs :func:`mloop.pipelines.scheduler.serve` with the automation engine's tick on every one of its ticks. With
automations present the loop ticks at least every ``event_interval_s`` (default 1 s) so an event is acted on
within about a second; with none, at the scheduler's own pace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mloop.automation.api import apply_config, list_automations
from mloop.automation.engine import Engine
from mloop.context import Context
from mloop.entities import AutomationAction
from mloop.pipelines.scheduler import Fire, SchedulerStatus
from mloop.pipelines.scheduler import serve as serve_schedules

__all__ = ["serve"]


def serve(
    ctx: Context,
    *,
    once: bool = False,
    interval_s: float = 30.0,
    event_interval_s: float = 1.0,
    grace_s: float = 300.0,
    on_status: Callable[[SchedulerStatus, list[Fire]], None] | None = None,
    on_actions: Callable[[list[AutomationAction]], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Fire]:
    """Run schedules and automations until ``stop``, Ctrl-C or SIGTERM (one tick each with ``once``)."""
    apply_config(ctx)
    engine = Engine(ctx)

    def tick() -> None:
        changed = engine.tick()
        if on_actions is not None and changed:
            on_actions(changed)

    interval = min(interval_s, event_interval_s) if list_automations(ctx) else interval_s
    return serve_schedules(ctx, once=once, interval_s=interval, grace_s=grace_s, on_status=on_status, stop=stop,
                           also=tick, on_stop=engine.stop)  # fmt: skip
