"""Events of the SQL store: written in the transaction of the change they record, through :func:`write_event`.

Ids are in commit order, so a reader's cursor (the last id it handled) never skips an event. SQLite has one
writer at a time, which gives that for free. On PostgreSQL ids come from a sequence when the row is inserted,
and a transaction that drew id 10 may commit after one that drew id 11; a reader that had seen 11 would skip 10
forever. ``write_event`` therefore takes a transaction-scoped advisory lock before drawing the id, held until
commit: event-writing transactions commit one at a time from their first event on. Every store write emits
its event as its last statement, so the lock is held only for the commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from mloop.entities import Event, Page, encode_cursor, now_ms
from mloop.errors import InvalidInput
from mloop.store.sql import fastpath
from mloop.store.sql import schema as t
from mloop.store.sql.engine import driver_connection, run_in_transaction
from mloop.store.sql.inputs import checked, cursor_field

__all__ = ["EventsMixin", "write_event"]

_EVENT_ORDER_LOCK = 0x6D6C6F6F70  # "mloop": the advisory lock that orders event ids by commit on PostgreSQL


def write_event(
    conn: Connection, type: str, subject: str, *, actor: str, payload: Mapping[str, Any] | None = None
) -> Event:
    """Record one event in ``conn``'s transaction (the only way events are written)."""
    driver = fastpath.driver_of(conn)
    if conn.dialect.name == "postgresql":  # ids in commit order (see the module docstring)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_ORDER_LOCK})
    when = now_ms()
    body = dict(payload or {})
    text_payload = json.dumps(body, sort_keys=True)
    if driver is not None:  # SQLite: the same row, as SQL text on the driver (see mloop.store.sql.fastpath)
        with driver_connection(conn):
            event_id = driver.execute(fastpath.INSERT_EVENT, (type, subject, actor, when, text_payload)).lastrowid
        return Event(int(event_id), type, subject, actor, when, body)
    result = conn.execute(
        t.events.insert().values(type=type, subject=subject, actor=actor, time=when, payload=text_payload)
    )
    (event_id,) = result.inserted_primary_key or (0,)
    return Event(int(event_id), type, subject, actor, when, body)


def _event(row: Any) -> Event:
    return Event(int(row.id), row.type, row.subject, row.actor, int(row.time), json.loads(row.payload))


class EventsMixin:
    engine: Engine

    @checked("type", "subject", "actor")
    def append_event(self, type: str, subject: str, *, actor: str, payload: Mapping[str, Any] | None = None) -> Event:
        return run_in_transaction(
            self.engine, lambda conn: write_event(conn, type, subject, actor=actor, payload=payload)
        )

    @checked("types", "subject", "after", "limit")
    def list_events(
        self, *, types: Sequence[str] | None = None, subject: str | None = None, after: int | None = None,
        cursor: str | None = None, limit: int = 100
    ) -> Page[Event]:  # fmt: skip
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")
        start = after
        if cursor is not None:
            start = cursor_field(cursor, "after", int)
        q = select(t.events).order_by(t.events.c.id).limit(limit + 1)
        if start is not None:
            q = q.where(t.events.c.id > start)
        if types:
            q = q.where(t.events.c.type.in_(list(types)))
        if subject is not None:
            q = q.where(t.events.c.subject == subject)
        rows = run_in_transaction(self.engine, lambda conn: conn.execute(q).all(), write=False)
        items = [_event(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor({"after": items[-1].id}) if more else None)
