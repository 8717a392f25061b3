"""Schedules and their claimed fires in the SQL store; the scheduler's store-wide lock.

A fire is claimed by inserting ``(schedule, fire_time)`` (the primary key refuses a second claim) and moving the
schedule's anchor from the value the claimer saw (compare-and-swap) in one transaction, with its event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import Page, Schedule, ScheduleFire, encode_cursor, new_id, now_ms
from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.refs import parse_ref
from mloop.store.protocols.schedules import ScheduleEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import check_length, checked, cursor_field
from mloop.store.sql.locks import FileLock, PostgresLock, try_lock

__all__ = ["MISSED_POLICIES", "SchedulesMixin"]

MISSED_POLICIES = ("skip", "run-once")
_S = t.schedules
_F = t.schedule_fires


def _schedule(r: Any) -> Schedule:
    return Schedule(
        id=r.id, name=r.name, pipeline=r.pipeline, cron=r.cron, created_at=int(r.created_at), actor=r.actor,
        anchor_at=int(r.anchor_at), version=None if r.version is None else int(r.version),
        params=json.loads(r.params), missed=r.missed, paused=bool(r.paused),
        last_fire_at=None if r.last_fire_at is None else int(r.last_fire_at),
    )  # fmt: skip


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(_S).where(_S.c.name == name)).first()
    if row is None:
        raise NotFound(f"No schedule named {name!r}. List schedules with `mloop schedules list`.")
    return row


class SchedulesMixin:
    engine: Engine

    @checked("name", "pipeline", "cron", "actor", "version", "params", "missed", "anchor_at")
    def create_schedule(
        self, name: str, *, pipeline: str, cron: str, actor: str, version: int | None = None,
        params: Mapping[str, Any] | None = None, missed: str = "skip", anchor_at: int | None = None,
    ) -> Schedule:  # fmt: skip
        parse_ref(f"pipeline:{name}")  # schedule names follow the same rules as other names
        parse_ref(f"pipeline:{pipeline}")
        check_length("cron expression", cron, 250)
        if missed not in MISSED_POLICIES:
            raise InvalidInput(f"Missed-run policy {missed!r} is not one of {list(MISSED_POLICIES)}.")
        try:
            params_text = json.dumps(dict(params or {}), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"Schedule {name!r}: parameters must be JSON values ({exc}).") from None
        now = now_ms()

        def create(conn: Connection) -> Schedule:
            if conn.execute(select(_S.c.id).where(_S.c.name == name)).first() is not None:
                raise AlreadyExists(
                    f"A schedule named {name!r} exists. Pick another name, or delete it first: "
                    f"`mloop schedules delete {name}`."
                )
            conn.execute(_S.insert().values(
                id=new_id(), name=name, pipeline=pipeline, version=version, cron=cron, params=params_text,
                missed=missed, paused=False, created_at=now, actor=actor,
                anchor_at=now if anchor_at is None else anchor_at, last_fire_at=None,
            ))  # fmt: skip
            made = _schedule(_row(conn, name))
            write_event(conn, ScheduleEvents.CREATED, f"schedule:{name}", actor=actor,
                        payload={"pipeline": made.target, "cron": cron, "missed": missed})  # fmt: skip
            return made

        try:
            return run_in_transaction(self.engine, create)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"A schedule named {name!r} was created concurrently. Pick another name.") from exc

    @checked("name")
    def get_schedule(self, name: str) -> Schedule:
        return run_in_transaction(self.engine, lambda c: _schedule(_row(c, name)), write=False)

    @checked("limit")
    def list_schedules(self, *, cursor: str | None = None, limit: int = 100) -> Page[Schedule]:
        q = select(_S).order_by(_S.c.name).limit(limit + 1)
        if cursor is not None:
            q = q.where(_S.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [_schedule(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"name": items[-1].name}) if len(rows) > limit else None)

    def _set_paused(self, name: str, paused: bool, actor: str, anchor_at: int | None) -> Schedule:
        def change(conn: Connection) -> Schedule:
            row = _row(conn, name)
            if bool(row.paused) == paused:
                return _schedule(row)
            values: dict[str, Any] = {"paused": paused}
            if not paused:  # fire times that passed while paused never fire
                values["anchor_at"] = max(int(row.anchor_at), now_ms() if anchor_at is None else anchor_at)
            conn.execute(update(_S).where(_S.c.id == row.id).values(**values))
            event = ScheduleEvents.PAUSED if paused else ScheduleEvents.RESUMED
            write_event(conn, event, f"schedule:{name}", actor=actor)
            return _schedule(_row(conn, name))

        return run_in_transaction(self.engine, change)

    @checked("name", "actor")
    def pause_schedule(self, name: str, *, actor: str) -> Schedule:
        return self._set_paused(name, True, actor, None)

    @checked("name", "actor", "anchor_at")
    def resume_schedule(self, name: str, *, actor: str, anchor_at: int | None = None) -> Schedule:
        return self._set_paused(name, False, actor, anchor_at)

    @checked("name", "actor")
    def delete_schedule(self, name: str, *, actor: str) -> Schedule:
        def remove(conn: Connection) -> Schedule:
            row = _row(conn, name)
            conn.execute(delete(_F).where(_F.c.schedule_id == row.id))
            conn.execute(delete(_S).where(_S.c.id == row.id))
            write_event(conn, ScheduleEvents.DELETED, f"schedule:{name}", actor=actor)
            return _schedule(row)

        return run_in_transaction(self.engine, remove)

    @checked("name", "fire_time", "expected_anchor", "actor", "missed")
    def claim_schedule_fire(
        self, name: str, fire_time: int, *, expected_anchor: int, actor: str, missed: int = 0
    ) -> ScheduleFire | None:
        if fire_time <= expected_anchor:
            raise InvalidInput(f"Fire time {fire_time} of schedule {name!r} is not after its anchor {expected_anchor}.")

        def claim(conn: Connection) -> ScheduleFire | None:
            row = _row(conn, name)
            moved = conn.execute(
                update(_S).where(_S.c.id == row.id, _S.c.anchor_at == expected_anchor, _S.c.paused.is_(False))
                .values(anchor_at=fire_time, last_fire_at=fire_time)
            )  # fmt: skip
            if moved.rowcount != 1:
                return None  # claimed (or paused) by someone else since the caller looked
            fire = ScheduleFire(name, fire_time, now_ms(), actor, missed)
            conn.execute(_F.insert().values(schedule_id=row.id, fire_time=fire_time, claimed_at=fire.claimed_at,
                                            actor=actor, missed=missed))  # fmt: skip
            write_event(conn, ScheduleEvents.FIRED, f"schedule:{name}", actor=actor,
                        payload={"fire_time": fire_time, "missed": missed, "pipeline": row.pipeline})  # fmt: skip
            return fire

        try:
            return run_in_transaction(self.engine, claim)
        except SAIntegrityError:  # this fire time was claimed already
            return None

    @checked("name", "until", "expected_anchor", "actor", "missed")
    def skip_schedule_fires(
        self, name: str, until: int, *, expected_anchor: int, actor: str, missed: int
    ) -> Schedule | None:
        def skip(conn: Connection) -> Schedule | None:
            row = _row(conn, name)
            moved = conn.execute(
                update(_S).where(_S.c.id == row.id, _S.c.anchor_at == expected_anchor, _S.c.anchor_at < until)
                .values(anchor_at=until)
            )  # fmt: skip
            if moved.rowcount != 1:
                return None
            write_event(conn, ScheduleEvents.MISSED, f"schedule:{name}", actor=actor,
                        payload={"skipped": missed, "from": expected_anchor, "until": until})  # fmt: skip
            return _schedule(_row(conn, name))

        return run_in_transaction(self.engine, skip)

    @checked("name", "limit")
    def list_schedule_fires(self, name: str, *, limit: int = 100) -> list[ScheduleFire]:
        def read(conn: Connection) -> list[ScheduleFire]:
            row = _row(conn, name)
            q = select(_F).where(_F.c.schedule_id == row.id).order_by(_F.c.fire_time.desc()).limit(limit)
            return [ScheduleFire(name, int(r.fire_time), int(r.claimed_at), r.actor, int(r.missed))
                    for r in conn.execute(q)]  # fmt: skip

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "holder")
    def try_exclusive_lock(self, name: str, *, holder: str) -> FileLock | PostgresLock:
        return try_lock(self.engine, name, holder)
