"""``mloop scheduler``: schedules, monitors and automations in one long-running process, under the store-wide lock.

:func:`serve` applies the workspace file's ``[automations]`` (:func:`mloop.automation.api.apply_config`), then
runs :func:`mloop.pipelines.scheduler.serve` with, on every one of its ticks, the due windows of every active
monitor (at most every ``monitor_interval_s``; a monitor that fails is logged and tried again next time, the
others go on) and then the automation engine's tick, so a window's ``monitor.alert`` is acted on in the same
pass. With automations or monitors present the loop ticks at least every ``event_interval_s`` (default 1 s);
with none, at the scheduler's own pace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mloop.automation.api import apply_config, list_automations
from mloop.automation.engine import Engine
from mloop.context import Context
from mloop.entities import AutomationAction
from mloop.pipelines.scheduler import Fire, SchedulerStatus
from mloop.pipelines.scheduler import serve as serve_schedules

__all__ = ["MonitorRunner", "serve"]

_log = logging.getLogger("mloop.automation")


class MonitorRunner:
    """Computes the due windows of every active monitor, at most every ``interval_s`` seconds."""

    def __init__(self, ctx: Context, interval_s: float) -> None:
        self.ctx, self.interval_s = ctx, interval_s
        self._last = float("-inf")
        self.windows = 0

    def tick(self) -> int:
        if time.monotonic() - self._last < self.interval_s:
            return 0
        self._last = time.monotonic()
        from mloop.errors import MloopError, StoreUnavailable
        from mloop.monitoring.monitors import list_monitors, run_monitor

        done = 0
        for monitor in list_monitors(self.ctx):
            if monitor.paused:
                continue
            try:
                done += len(run_monitor(self.ctx, monitor.name))
            except StoreUnavailable:
                raise
            except (MloopError, OSError, ValueError) as exc:  # one broken monitor never stops the others
                _log.warning("monitor %s: %s: %s", monitor.name, type(exc).__name__, exc)
        self.windows += done
        return done


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
    monitors: bool = True,
    monitor_interval_s: float = 10.0,
) -> list[Fire]:
    """Run schedules, monitors and automations until ``stop``, Ctrl-C or SIGTERM (one tick each with ``once``)."""
    from mloop.monitoring.monitors import list_monitors

    apply_config(ctx)
    engine = Engine(ctx)
    runner = MonitorRunner(ctx, monitor_interval_s) if monitors else None

    def tick() -> None:
        if runner is not None:
            runner.tick()
        changed = engine.tick()
        if on_actions is not None and changed:
            on_actions(changed)

    busy = bool(list_automations(ctx)) or (monitors and bool(list_monitors(ctx)))
    interval = min(interval_s, event_interval_s) if busy else interval_s
    return serve_schedules(ctx, once=once, interval_s=interval, grace_s=grace_s, on_status=on_status, stop=stop,
                           also=tick, on_stop=engine.stop)  # fmt: skip
