"""Automations in the SQL store: rules, the actions they claimed (once per cause), the engine's event cursor."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import ActionClaim, Automation, AutomationAction, Page, encode_cursor, new_id, now_ms
from mloop.entities.automations import ACTION_STATUSES, FINISHED_STATUSES
from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.refs import parse_ref
from mloop.store.protocols.automations import ENGINE_CURSOR, AutomationEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked, cursor_field

__all__ = ["AutomationsMixin"]

_A, _X, _C = t.automations, t.automation_actions, t.automation_cursors
_END_STATUSES = ("succeeded", "failed", "refused", "waiting_approval")
_MAX_ERROR = 4000


def _automation(r: Any) -> Automation:
    return Automation(id=r.id, name=r.name, spec=json.loads(r.spec), created_at=int(r.created_at),
                      updated_at=int(r.updated_at), actor=r.actor, paused=bool(r.paused),
                      anchor_at=None if r.anchor_at is None else int(r.anchor_at))  # fmt: skip


def _action(r: Any) -> AutomationAction:
    def opt(v: Any) -> int | None:
        return None if v is None else int(v)

    return AutomationAction(
        id=r.id, automation=r.automation, cause=r.cause, event_id=opt(r.event_id), depth=int(r.depth),
        status=r.status, attempts=int(r.attempts), created_at=int(r.created_at), started_at=opt(r.started_at),
        finished_at=opt(r.finished_at), outcome=json.loads(r.outcome), error=r.error,
    )  # fmt: skip


def _json(what: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, default=str)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The automation's {what} must hold JSON values only ({exc}).") from None


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(_A).where(_A.c.name == name)).first()
    if row is None:
        raise NotFound(f"No automation named {name!r}. List automations with `mloop automations list`.")
    return row


def _action_row(conn: Connection, action_id: str) -> Any:
    row = conn.execute(select(_X).where(_X.c.id == action_id)).first()
    if row is None:
        raise NotFound(f"No automation action {action_id!r}. See `mloop automations history`.")
    return row


def _claim_payload(action: AutomationAction) -> dict[str, Any]:
    reason = {"reason": action.outcome.get("reason")} if action.outcome else {}
    return {"action": action.id, "cause": action.cause, "event": action.event_id, "depth": action.depth,
            "status": action.status, **reason}  # fmt: skip


class AutomationsMixin:
    engine: Engine

    @checked("name", "actor", "anchor_at")
    def create_automation(
        self, name: str, *, spec: Mapping[str, Any], actor: str, anchor_at: int | None = None
    ) -> Automation:
        parse_ref(f"monitor:{name}")  # the same name rules as every other noun
        spec_text = _json("spec", dict(spec))
        now = now_ms()

        def create(conn: Connection) -> Automation:
            if conn.execute(select(_A.c.id).where(_A.c.name == name)).first() is not None:
                raise AlreadyExists(f"An automation named {name!r} exists. Pick another name, or delete it first: "
                                    f"`mloop automations delete {name}`.")  # fmt: skip
            conn.execute(_A.insert().values(id=new_id(), name=name, spec=spec_text, paused=False, anchor_at=anchor_at,
                                            created_at=now, updated_at=now, actor=actor))  # fmt: skip
            write_event(conn, AutomationEvents.CREATED, f"automation:{name}", actor=actor, payload={"spec": dict(spec)})
            return _automation(_row(conn, name))

        try:
            return run_in_transaction(self.engine, create)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"An automation named {name!r} was created concurrently. Pick another name.") from exc

    @checked("name")
    def get_automation(self, name: str) -> Automation:
        return run_in_transaction(self.engine, lambda c: _automation(_row(c, name)), write=False)

    @checked("limit")
    def list_automations(self, *, cursor: str | None = None, limit: int = 100) -> Page[Automation]:
        q = select(_A).order_by(_A.c.name).limit(limit + 1)
        if cursor is not None:
            q = q.where(_A.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [_automation(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"name": items[-1].name}) if len(rows) > limit else None)

    @checked("name", "actor", "anchor_at")
    def update_automation(
        self, name: str, *, actor: str, spec: Mapping[str, Any] | None = None, paused: bool | None = None,
        anchor_at: int | None = None,
    ) -> Automation:  # fmt: skip
        spec_text = None if spec is None else _json("spec", dict(spec))

        def change(conn: Connection) -> Automation:
            row = _row(conn, name)
            values: dict[str, Any] = {}
            if spec_text is not None and spec_text != row.spec:
                values["spec"] = spec_text
            if paused is not None and bool(paused) != bool(row.paused):
                values["paused"] = bool(paused)
                if not paused and row.anchor_at is not None:  # fire times passed while paused never fire
                    values["anchor_at"] = max(int(row.anchor_at), now_ms() if anchor_at is None else anchor_at)
            if spec_text is not None and anchor_at is not None:
                values["anchor_at"] = anchor_at
            if not values:
                return _automation(row)
            conn.execute(update(_A).where(_A.c.id == row.id).values(updated_at=now_ms(), **values))
            payload = {k: json.loads(v) if k == "spec" else v for k, v in values.items()}
            write_event(conn, AutomationEvents.UPDATED, f"automation:{name}", actor=actor, payload=payload)
            return _automation(_row(conn, name))

        return run_in_transaction(self.engine, change)

    @checked("name", "actor")
    def delete_automation(self, name: str, *, actor: str) -> Automation:
        def remove(conn: Connection) -> Automation:
            gone = _automation(_row(conn, name))
            conn.execute(delete(_A).where(_A.c.id == gone.id))
            write_event(conn, AutomationEvents.DELETED, gone.ref, actor=actor)
            return gone

        return run_in_transaction(self.engine, remove)

    def get_automation_cursor(self, name: str = ENGINE_CURSOR) -> int:
        q = select(_C.c.last_event_id).where(_C.c.name == name)
        found = run_in_transaction(self.engine, lambda c: c.execute(q).scalar(), write=False)
        return 0 if found is None else int(found)

    def _insert_action(self, conn: Connection, claim: ActionClaim, actor: str) -> AutomationAction:
        if claim.status not in ("pending", "skipped"):
            raise InvalidInput(f"A claimed action is 'pending' or 'skipped', not {claim.status!r}.")
        now = now_ms()
        skipped = claim.status == "skipped"
        action_id = new_id()
        values: dict[str, Any] = {
                  "id": action_id, "automation": claim.automation, "cause": claim.cause, "event_id": claim.event_id,
                  "depth": int(claim.depth), "status": claim.status, "attempts": 0, "created_at": now,
                  "started_at": now if skipped else None, "finished_at": now if skipped else None,
                  "outcome": _json("outcome", dict(claim.outcome)), "error": None}  # fmt: skip
        conn.execute(_X.insert().values(**values))
        made = _action(_action_row(conn, action_id))
        kind = AutomationEvents.ACTION_SKIPPED if skipped else AutomationEvents.ACTION_QUEUED
        write_event(conn, kind, f"automation:{claim.automation}", actor=actor, payload=_claim_payload(made))
        return made

    @checked("actor")
    def claim_automation_actions(
        self, claims: Sequence[ActionClaim], *, cursor: int, expected_cursor: int, actor: str,
        name: str = ENGINE_CURSOR,
    ) -> list[AutomationAction]:  # fmt: skip
        if cursor < expected_cursor:
            raise InvalidInput(f"The engine's cursor only moves forward: {expected_cursor} -> {cursor}.")

        def claim(conn: Connection) -> list[AutomationAction]:
            current = conn.execute(select(_C.c.last_event_id).where(_C.c.name == name)).scalar()
            if current is None and expected_cursor == 0:
                conn.execute(_C.insert().values(name=name, last_event_id=cursor, updated_at=now_ms()))
            else:
                moved = conn.execute(update(_C).where(_C.c.name == name, _C.c.last_event_id == expected_cursor)
                                     .values(last_event_id=cursor, updated_at=now_ms()))  # fmt: skip
                if moved.rowcount != 1:
                    raise Conflict(
                        f"The automation cursor {name!r} moved from {expected_cursor} (now {current}): another "
                        "engine handled these events. Run one `mloop scheduler` per store."
                    )
            return [self._insert_action(conn, c, actor) for c in claims]

        try:
            return run_in_transaction(self.engine, claim)
        except SAIntegrityError as exc:
            raise Conflict(f"An action for one of these causes was claimed already ({exc.orig}).") from exc

    @checked("name", "actor", "fire_time")
    def claim_automation_fire(
        self, name: str, fire_time: int, *, expected_anchor: int, actor: str
    ) -> AutomationAction | None:
        def claim(conn: Connection) -> AutomationAction | None:
            row = _row(conn, name)
            moved = conn.execute(update(_A).where(_A.c.id == row.id, _A.c.anchor_at == expected_anchor)
                                 .values(anchor_at=fire_time))  # fmt: skip
            if moved.rowcount != 1:
                return None
            return self._insert_action(conn, ActionClaim(name, f"cron:{fire_time}"), actor)

        try:
            return run_in_transaction(self.engine, claim)
        except SAIntegrityError:
            return None  # that fire time was claimed already

    @checked("actor")
    def start_automation_action(self, action_id: str, *, actor: str) -> AutomationAction:
        def start(conn: Connection) -> AutomationAction:
            row = _action_row(conn, action_id)
            if row.status in FINISHED_STATUSES:
                raise Conflict(f"Automation action {action_id} is {row.status} already; it is not started again.")
            conn.execute(update(_X).where(_X.c.id == action_id, _X.c.status == row.status)
                         .values(status="running", attempts=int(row.attempts) + 1, started_at=now_ms()))  # fmt: skip
            made = _action(_action_row(conn, action_id))
            write_event(conn, AutomationEvents.ACTION_STARTED, f"automation:{made.automation}", actor=actor,
                        payload={"action": made.id, "cause": made.cause, "attempt": made.attempts})  # fmt: skip
            return made

        return run_in_transaction(self.engine, start)

    @checked("actor")
    def finish_automation_action(
        self, action_id: str, *, status: str, actor: str, outcome: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> AutomationAction:  # fmt: skip
        if status not in _END_STATUSES:
            raise InvalidInput(f"An action finishes as one of {list(_END_STATUSES)}, not {status!r}.")
        outcome_text = _json("outcome", dict(outcome or {}))

        def finish(conn: Connection) -> AutomationAction:
            row = _action_row(conn, action_id)
            if row.status in FINISHED_STATUSES:
                raise Conflict(f"Automation action {action_id} is {row.status} already.")
            conn.execute(update(_X).where(_X.c.id == action_id).values(
                status=status, finished_at=now_ms(), outcome=outcome_text,
                error=None if error is None else error[:_MAX_ERROR]))  # fmt: skip
            made = _action(_action_row(conn, action_id))
            payload = {"action": made.id, "cause": made.cause, "event": made.event_id, "status": status,
                       "duration_ms": made.duration_ms, "outcome": dict(made.outcome), "error": made.error}  # fmt: skip
            write_event(conn, AutomationEvents.ACTION_FINISHED, f"automation:{made.automation}", actor=actor,
                        payload=payload)  # fmt: skip
            return made

        return run_in_transaction(self.engine, finish)

    def get_automation_action(self, action_id: str) -> AutomationAction:
        return run_in_transaction(self.engine, lambda c: _action(_action_row(c, action_id)), write=False)

    @checked("limit")
    def list_automation_actions(
        self, *, automation: str | None = None, statuses: Sequence[str] | None = None, since: int | None = None,
        cause: str | None = None, limit: int = 100,
    ) -> list[AutomationAction]:  # fmt: skip
        for s in statuses or ():
            if s not in ACTION_STATUSES:
                raise InvalidInput(f"Action status {s!r} is not one of {list(ACTION_STATUSES)}.")
        q = select(_X).order_by(_X.c.created_at.desc(), _X.c.id.desc()).limit(limit)
        if automation is not None:
            q = q.where(_X.c.automation == automation)
        if statuses:
            q = q.where(_X.c.status.in_(list(statuses)))
        if since is not None:
            q = q.where(_X.c.created_at >= since)
        if cause is not None:
            q = q.where(_X.c.cause == cause)
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        return [_action(r) for r in rows]
