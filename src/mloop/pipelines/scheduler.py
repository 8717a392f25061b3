"""The scheduler: fires due schedules, each as one triggered run of a published pipeline, exactly once.

::

    serve(client)                    # long-running: tick, sleep until the next fire (at most ``interval_s``)
    serve(client, once=True)         # one tick, then wait for the runs it started (tests, cron-driven use)
    Scheduler(client).tick(now_ms=t) # one tick at a given time (tests pass a fake "now")

**One per workspace.** :func:`serve` first takes the store-wide lock ``scheduler``
(:meth:`~mloop.store.protocols.schedules.ScheduleStore.try_exclusive_lock`: a file lock beside a SQLite
database, a PostgreSQL advisory lock on a dedicated connection); a second scheduler is refused with
:class:`~mloop.errors.Conflict` naming the holder (host and pid).

**Exactly once.** For each active schedule a tick computes the fire times due since its anchor (see
:mod:`mloop.pipelines.schedules` for the missed-run policies) and *claims* the newest one in the store: the
claim and the anchor's move are one transaction, and a fire time can be claimed once, so a restarted scheduler
(or a second one on a store without the lock) never fires it again. Only then is the run started, in a child
process (:mod:`mloop.pipelines.scheduled_run`), tagged ``mloop.trigger = schedule:<name>`` and with the nominal
fire time. A claimed fire that cannot start (its pipeline or parameters no longer valid) is not retried: a
``schedule.fire_failed`` event says why. Ctrl-C or SIGTERM stops the loop, sends SIGTERM to the running
pipeline processes (their runs end ``KILLED``), waits for them and releases the lock.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloop.context import Context
from mloop.entities import Schedule, iter_pages, now_ms
from mloop.errors import InvalidInput, MloopError, StoreUnavailable
from mloop.pipelines.events import SchedulerEvents
from mloop.pipelines.schedules import due_times, iso, next_fire
from mloop.pipelines.trigger import TRIGGER_TAGS, check_params, resolve_published

__all__ = ["LOCK_NAME", "Fire", "Scheduler", "SchedulerStatus", "serve"]

LOCK_NAME = "scheduler"
LOG_KEEP_DAYS = 30.0  # a failed fire's log is kept this long (finished fires' logs are removed when reaped)


@dataclass
class Fire:
    """One schedule fire: ``started`` -> ``finished`` / ``failed``; or ``skipped`` (missed), or ``failed`` to start."""

    schedule: str
    fire_time: int
    status: str
    pipeline: str | None = None
    missed: int = 0
    run_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "fire_time": self.fire_time, "fire_time_iso": iso(self.fire_time),
                "status": self.status, "pipeline": self.pipeline, "missed": self.missed, "run_id": self.run_id,
                "error": self.error}  # fmt: skip


@dataclass(frozen=True)
class SchedulerStatus:
    schedules: int
    active: int
    running: int
    fired: int
    next_schedule: str | None = None
    next_at: int | None = None


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    fire: Fire
    result: Path
    spec: Path
    log: Any = field(default=None)


class Scheduler:
    """Ticks (claim due fires, start their runs) and tracks the child processes of the runs it started."""

    def __init__(self, ctx: Context, *, grace_s: float = 300.0, python: str = sys.executable) -> None:
        self.ctx, self.grace_ms, self.python = ctx, int(grace_s * 1000), python
        self.children: list[_Child] = []
        self.history: list[Fire] = []
        self.logs = ctx.settings.local_dir / "scheduler"
        self._broken: set[str] = set()  # schedules whose cron cannot be read (reported once)
        self.prune_logs()

    def prune_logs(self, *, keep_days: float = LOG_KEEP_DAYS) -> int:
        """Remove fire logs older than ``keep_days`` (a finished fire's log is removed when it is reaped)."""
        cutoff = time.time() - keep_days * 86400
        removed = 0
        for path in self.logs.glob("*.log") if self.logs.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def schedules(self) -> list[Schedule]:
        return list(iter_pages(lambda cursor: self.ctx.store.list_schedules(cursor=cursor)))

    def tick(self, now: int | None = None) -> list[Fire]:
        """Claim and start every due fire at ``now`` (UTC ms, default the clock); the fires it handled."""
        at = now_ms() if now is None else now
        fires = []
        for s in self.schedules():
            if s.paused:
                continue
            try:
                fire = self._consider(s, at)
            except InvalidInput as exc:  # e.g. a cron expression written to the store without the library's check
                if s.name in self._broken:
                    continue
                self._broken.add(s.name)
                fire = Fire(s.name, at, "failed", error=f"{type(exc).__name__}: {exc}")
            if fire is not None:
                fires.append(fire)
        self.history.extend(fires)
        return fires

    def _consider(self, s: Schedule, now: int) -> Fire | None:
        times, _ = due_times(s.cron, s.anchor_at, now)
        if not times:
            return None
        store, actor, latest = self.ctx.store, self.ctx.actor, times[-1]
        if s.missed == "skip" and now - latest > self.grace_ms:  # every due time is too late: skip them all
            done = store.skip_schedule_fires(s.name, latest, expected_anchor=s.anchor_at, actor=actor,
                                             missed=len(times))  # fmt: skip
            return None if done is None else Fire(s.name, latest, "skipped", missed=len(times))
        claimed = store.claim_schedule_fire(s.name, latest, expected_anchor=s.anchor_at, actor=actor,
                                            missed=len(times) - 1)  # fmt: skip
        if claimed is None:
            return None  # claimed by another scheduler since we read the schedule
        fire = Fire(s.name, latest, "started", missed=len(times) - 1)
        try:
            pv = resolve_published(self.ctx, s.pipeline, s.version)
            check_params(pv, s.params)
            fire.pipeline = pv.ref
            self._start(fire, pv.name, pv.version, dict(s.params))
        except (MloopError, OSError) as exc:
            fire.status, fire.error = "failed", f"{type(exc).__name__}: {exc}"
            store.append_event(SchedulerEvents.FIRE_FAILED, f"schedule:{s.name}", actor=actor,
                               payload={"fire_time": latest, "error": fire.error[:1000]})  # fmt: skip
        return fire

    def _start(self, fire: Fire, name: str, version: int, params: dict[str, Any]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        stem = f"{fire.schedule}-{fire.fire_time}"
        spec = Path(tempfile.mkstemp(prefix=f"{stem}-", suffix=".json", dir=self.logs)[1])
        result = spec.with_suffix(".result.json")
        spec.write_text(json.dumps({
            "pipeline": name, "version": version, "params": params, "triggered_by": f"schedule:{fire.schedule}",
            "tags": {TRIGGER_TAGS.FIRE_TIME: iso(fire.fire_time)}, "result": str(result),
        }))  # fmt: skip
        # the stores travel in the environment, not in a file (a PostgreSQL URI may hold a password)
        env = {**os.environ, "MLOOP_URI": self.ctx.settings.store_uri, "MLOOP_ARTIFACT_URI": self.ctx.artifacts.uri}
        log = open(self.logs / f"{stem}.log", "ab")  # noqa: SIM115 - closed when the child is reaped
        try:
            process = subprocess.Popen(
                [self.python, "-m", "mloop.pipelines.scheduled_run", str(spec)], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        except OSError:
            log.close()
            raise
        self.children.append(_Child(process, fire, result, spec, log))

    def reap(self, *, block: bool = False) -> list[Fire]:
        """Fires whose run process ended (all of them, waiting, when ``block``)."""
        done = []
        for child in list(self.children):
            code = child.process.wait() if block else child.process.poll()
            if code is None:
                continue
            self.children.remove(child)
            child.log.close()
            fire = child.fire
            try:
                outcome = json.loads(child.result.read_text())
            except (OSError, ValueError):
                outcome = {"error": f"the run process ended with exit code {code} and no result (killed?)"}
            ok = code == 0 and outcome.get("status") == "FINISHED"
            fire.status = "finished" if ok else "failed"
            try:
                fire.run_id = outcome.get("run_id") or self._run_of(fire)
                if not ok:
                    fire.error = outcome.get("error") or f"pipeline run ended {outcome.get('status')}"
                    payload = {"fire_time": fire.fire_time, "run": fire.run_id, "error": fire.error[:1000]}
                    self.ctx.store.append_event(SchedulerEvents.RUN_FAILED, f"schedule:{fire.schedule}",
                                                actor=self.ctx.actor, payload=payload)  # fmt: skip
            except StoreUnavailable as exc:  # the run's own records are in the store already (or its log)
                fire.error = f"{fire.error or ''} (not recorded: {exc})".strip()
            # a finished run's output is in its step runs' logs; a failed fire keeps its log (LOG_KEEP_DAYS)
            for path in (child.result, child.spec, *([Path(child.log.name)] if ok else [])):
                path.unlink(missing_ok=True)
            done.append(fire)
        return done

    def _run_of(self, fire: Fire) -> str | None:
        """The pipeline run of a fire whose process left no result (killed): found by its trigger tags."""
        found = self.ctx.store.search_runs(
            filter=f"tags.`{TRIGGER_TAGS.BY}` = 'schedule:{fire.schedule}' and "
            f"tags.`{TRIGGER_TAGS.FIRE_TIME}` = '{iso(fire.fire_time)}'", max_results=1,
        )  # fmt: skip
        return found.items[0].id if found.items else None

    def stop(self) -> list[Fire]:
        """SIGTERM the running pipeline processes (their runs end KILLED) and wait for them."""
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        return self.reap(block=True)

    def status(self, now: int | None = None) -> SchedulerStatus:
        at = now_ms() if now is None else now
        schedules = self.schedules()
        active = [s for s in schedules if not s.paused]
        upcoming = sorted((next_fire(s.cron, max(s.anchor_at, at - self.grace_ms)), s.name) for s in active)
        fired = sum(1 for f in self.history if f.status != "skipped")
        first = upcoming[0] if upcoming else (None, None)
        return SchedulerStatus(len(schedules), len(active), len(self.children), fired, first[1], first[0])


def holder() -> str:
    """Who holds the lock: ``mloop scheduler pid 123 on host since <time>`` (pid and host first: PostgreSQL
    keeps 63 characters of it)."""
    return f"mloop scheduler pid {os.getpid()} on {socket.gethostname()} since {iso(now_ms())}"


def serve(
    ctx: Context,
    *,
    once: bool = False,
    interval_s: float = 30.0,
    grace_s: float = 300.0,
    on_status: Callable[[SchedulerStatus, list[Fire]], None] | None = None,
    stop: threading.Event | None = None,
    also: Callable[[], object] | None = None,
    on_stop: Callable[[], object] | None = None,
) -> list[Fire]:
    """Run the scheduler until ``stop`` is set, Ctrl-C or SIGTERM (or after one tick with ``once``, waiting for
    the runs it started). Raises :class:`~mloop.errors.Conflict` when another scheduler holds the lock.

    ``also`` is called on every tick after the schedules (the automation engine's tick: it runs under the same
    lock), ``on_stop`` once when the loop ends."""
    lock = ctx.store.try_exclusive_lock(LOCK_NAME, holder=holder())
    stopping = stop or threading.Event()
    scheduler = Scheduler(ctx, grace_s=grace_s)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set()) if main else None
    try:
        while True:
            if not lock.held():
                raise StoreUnavailable(
                    "The scheduler lost its lock on the store (the database connection holding it dropped), so "
                    "another scheduler may have started. Stopped; start `mloop scheduler` again."
                )
            try:
                events = scheduler.tick()
                if also is not None:
                    also()
                events += scheduler.reap(block=once)
                status = scheduler.status()
            except StoreUnavailable:  # the database is down: keep the runs going, try again next tick
                if once:
                    raise
                events, status = scheduler.reap(), SchedulerStatus(0, 0, len(scheduler.children), 0)
            if on_status is not None:
                on_status(status, events)
            if once:
                break
            wait = interval_s if status.next_at is None else (status.next_at - now_ms()) / 1000
            if stopping.wait(min(interval_s, max(0.2, wait))):
                break
    except KeyboardInterrupt:
        pass
    finally:
        if on_stop is not None:
            on_stop()
        stopped = scheduler.stop()
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        lock.release()
        if on_status is not None and stopped:
            on_status(SchedulerStatus(0, 0, 0, len(scheduler.history)), stopped)
    return scheduler.history
