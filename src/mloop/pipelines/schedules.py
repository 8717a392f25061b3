"""Schedules: a cron expression (UTC) that triggers a published pipeline with stored parameter overrides.

::

    create_schedule(client, "nightly", pipeline="train", cron="0 3 * * *", params={"fit.C": 0.5})
    create_schedule(client, "weekly", pipeline="train/3", cron="0 4 * * 1", missed="run-once")

``pipeline`` is ``NAME`` (each fire runs the newest published version) or ``NAME/VERSION`` (pinned). Cron
expressions have five fields (minute hour day-of-month month day-of-week) and are read in **UTC**. Parameters
are checked against the published definition when the schedule is made (and again at each fire).

**Missed runs** (fire times that passed while no scheduler ran, or while it was busy for longer than
``grace``): ``skip`` (the default) fires nothing for them and waits for the next time; a fire time at most
``grace`` late still fires. ``run-once`` fires once, for the newest missed time, however late, and skips the
older ones. Either way each fire is one triggered run; times passed while a schedule was paused never fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mloop.context import Context
from mloop.entities import Schedule, ScheduleFire, iter_pages, now_ms
from mloop.errors import InvalidInput, shown
from mloop.pipelines.trigger import check_params, resolve_published
from mloop.refs import parse_ref

__all__ = [
    "MISSED_POLICIES",
    "check_cron",
    "create_schedule",
    "delete_schedule",
    "due_times",
    "iso",
    "list_schedules",
    "next_fire",
    "pause_schedule",
    "resume_schedule",
    "show_schedule",
]

MISSED_POLICIES = ("skip", "run-once")


def iso(ms: int) -> str:
    """``2026-01-01T03:00:00Z``: a UTC time in milliseconds, as text."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _croniter(cron: str, start_ms: int) -> Any:
    from croniter import croniter  # imported only when a schedule is made or evaluated

    try:
        return croniter(cron, datetime.fromtimestamp(start_ms / 1000, UTC))
    except (ValueError, KeyError) as exc:  # croniter's errors derive from ValueError
        raise InvalidInput(f"Cron expression {shown(cron)} cannot be read ({exc}). Recreate the schedule.") from None


def check_cron(cron: str) -> str:
    """A valid five-field cron expression, normalised (surrounding blanks removed); else :class:`InvalidInput`."""
    from croniter import croniter

    text = cron.strip() if isinstance(cron, str) else ""
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise InvalidInput(
            f"Cron expression {shown(cron)} is not valid. Use five fields, minute hour day-of-month month "
            "day-of-week (UTC), e.g. '0 3 * * *' (03:00 every day) or '*/15 * * * *' (every 15 minutes)."
        )
    return text


def next_fire(cron: str, after_ms: int) -> int:
    """The first fire time of ``cron`` strictly after ``after_ms`` (UTC milliseconds)."""
    return int(_croniter(cron, after_ms).get_next(float) * 1000)


def due_times(cron: str, after_ms: int, until_ms: int, *, limit: int = 10_000) -> tuple[list[int], bool]:
    """Fire times in ``(after_ms, until_ms]``, oldest first, at most ``limit``; ``True`` when cut at the limit."""
    it = _croniter(cron, after_ms)
    out: list[int] = []
    while len(out) < limit:
        t = int(it.get_next(float) * 1000)
        if t > until_ms:
            return out, False
        out.append(t)
    return out, True


def _with_next(s: Schedule) -> Schedule:
    from dataclasses import replace

    return s if s.paused else replace(s, next_fire_at=next_fire(s.cron, s.anchor_at))


def create_schedule(
    ctx: Context, name: str, *, pipeline: str, cron: str, params: Mapping[str, Any] | None = None,
    missed: str = "skip", start_ms: int | None = None,
) -> Schedule:  # fmt: skip
    """A new schedule (see the module docstring); nothing before ``start_ms`` (default now) fires."""
    parse_ref(f"pipeline:{name}")
    if missed not in MISSED_POLICIES:
        raise InvalidInput(f"Missed-run policy {shown(missed)} is not one of {list(MISSED_POLICIES)}. "
                           "Use --missed skip (the default) or --missed run-once.")  # fmt: skip
    ref = parse_ref(pipeline, default_kind="pipeline")
    if ref.kind != "pipeline" or ref.alias is not None:
        raise InvalidInput(
            f"Schedule {name!r}: {pipeline!r} is not a published pipeline; use NAME (the newest version at each "
            "fire) or NAME/VERSION (pinned)."
        )
    text = check_cron(cron)
    overrides = dict(params or {})
    check_params(resolve_published(ctx, ref.name, ref.version), overrides)
    made = ctx.store.create_schedule(name, pipeline=ref.name, version=ref.version, cron=text, actor=ctx.actor,
                                     params=overrides, missed=missed, anchor_at=start_ms)  # fmt: skip
    return _with_next(made)


def list_schedules(ctx: Context) -> list[Schedule]:
    """Every schedule by name, with its next fire time (``None`` while paused)."""
    return [_with_next(s) for s in iter_pages(lambda cursor: ctx.store.list_schedules(cursor=cursor))]


def pause_schedule(ctx: Context, name: str) -> Schedule:
    return _with_next(ctx.store.pause_schedule(name, actor=ctx.actor))


def resume_schedule(ctx: Context, name: str) -> Schedule:
    """Fire again from now on: times that passed while it was paused never fire."""
    return _with_next(ctx.store.resume_schedule(name, actor=ctx.actor, anchor_at=now_ms()))


def delete_schedule(ctx: Context, name: str) -> Schedule:
    return ctx.store.delete_schedule(name, actor=ctx.actor)


def show_schedule(ctx: Context, name: str, *, fires: int = 20) -> tuple[Schedule, list[ScheduleFire]]:
    """A schedule with its next fire time and its last ``fires`` claimed fires, newest first."""
    return _with_next(ctx.store.get_schedule(name)), ctx.store.list_schedule_fires(name, limit=fires)
