"""Endpoints in the SQL store: the spec with its generation (compare-and-swap), the reported status, events.

Every spec change and deletion records its ``deployment.*`` event, with the actor and the cause in the payload,
as the last statement of its transaction; a routine status report records none (see
:mod:`mloop.store.protocols.endpoints`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import Endpoint, Page, encode_cursor, new_id, now_ms
from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.refs import parse_ref
from mloop.store.protocols.endpoints import DeploymentEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked, cursor_field

__all__ = ["EndpointsMixin"]

_E = t.endpoints


def _endpoint(r: Any) -> Endpoint:
    return Endpoint(
        id=r.id, name=r.name, spec=json.loads(r.spec), generation=int(r.generation), created_at=int(r.created_at),
        updated_at=int(r.updated_at), actor=r.actor, status=json.loads(r.status),
        status_at=None if r.status_at is None else int(r.status_at),
    )  # fmt: skip


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(_E).where(_E.c.name == name)).first()
    if row is None:
        raise NotFound(f"No endpoint named {name!r}. List endpoints with `mloop deploy list`.")
    return row


def _json(what: str, name: str, value: Mapping[str, Any] | None) -> str:
    if value is not None and not isinstance(value, Mapping):
        raise InvalidInput(f"Endpoint {name!r}: the {what} must be a mapping, got {type(value).__name__}.")
    try:
        return json.dumps(dict(value or {}), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Endpoint {name!r}: the {what} must hold JSON values only ({exc}).") from None


def _payload(payload: Mapping[str, Any] | None, cause: str | None, **extra: Any) -> dict[str, Any]:
    body = {**extra, **dict(payload or {})}
    if cause is not None:
        body["cause"] = cause
    return body


class EndpointsMixin:
    engine: Engine

    @checked("name", "actor", "cause")
    def create_endpoint(self, name: str, *, spec: Mapping[str, Any], actor: str, cause: str | None = None) -> Endpoint:
        parse_ref(f"deployment:{name}")
        spec_text = _json("spec", name, spec)
        now = now_ms()

        def create(conn: Connection) -> Endpoint:
            if conn.execute(select(_E.c.id).where(_E.c.name == name)).first() is not None:
                raise AlreadyExists(
                    f"An endpoint named {name!r} exists. Change it with `mloop deploy update {name} ...`, or "
                    f"delete it first: `mloop deploy delete {name}`."
                )
            conn.execute(_E.insert().values(
                id=new_id(), name=name, spec=spec_text, generation=1, status="{}", status_at=None, created_at=now,
                updated_at=now, actor=actor,
            ))  # fmt: skip
            made = _endpoint(_row(conn, name))
            write_event(conn, DeploymentEvents.CREATED, made.ref, actor=actor,
                        payload=_payload(None, cause, generation=1, spec=json.loads(spec_text)))  # fmt: skip
            return made

        try:
            return run_in_transaction(self.engine, create)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"An endpoint named {name!r} was created concurrently. Pick another name.") from exc

    @checked("name")
    def get_endpoint(self, name: str) -> Endpoint:
        return run_in_transaction(self.engine, lambda c: _endpoint(_row(c, name)), write=False)

    @checked("limit")
    def list_endpoints(self, *, cursor: str | None = None, limit: int = 100) -> Page[Endpoint]:
        q = select(_E).order_by(_E.c.name).limit(limit + 1)
        if cursor is not None:
            q = q.where(_E.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [_endpoint(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"name": items[-1].name}) if len(rows) > limit else None)

    @checked("name", "actor", "cause", "expected_generation")
    def update_endpoint(
        self, name: str, *, spec: Mapping[str, Any], actor: str, cause: str | None = None,
        expected_generation: int | None = None, event: str = DeploymentEvents.UPDATED,
        payload: Mapping[str, Any] | None = None,
    ) -> Endpoint:  # fmt: skip
        if event not in DeploymentEvents.SPEC_CHANGES:
            raise InvalidInput(
                f"Event {event!r} is not a spec change; use one of {list(DeploymentEvents.SPEC_CHANGES)}."
            )
        spec_text = _json("spec", name, spec)
        body = _json("event payload", name, payload)

        def change(conn: Connection) -> Endpoint:
            row = _row(conn, name)
            if expected_generation is not None and int(row.generation) != expected_generation:
                raise Conflict(
                    f"Endpoint {name!r} changed meanwhile (generation {row.generation}, expected "
                    f"{expected_generation}). Read it again (`mloop deploy show {name}`) and retry."
                )
            if row.spec == spec_text and event == DeploymentEvents.UPDATED:
                return _endpoint(row)
            generation = int(row.generation) + 1
            moved = conn.execute(update(_E).where(_E.c.id == row.id, _E.c.generation == row.generation)
                                 .values(spec=spec_text, generation=generation, updated_at=now_ms()))  # fmt: skip
            if moved.rowcount != 1:  # another writer moved the generation between our read and this write
                raise Conflict(f"Endpoint {name!r} changed meanwhile (generation {row.generation} is gone). "
                               f"Read it again (`mloop deploy show {name}`) and retry.")  # fmt: skip
            write_event(conn, event, f"deployment:{name}", actor=actor,
                        payload=_payload(json.loads(body), cause, generation=generation,
                                         spec=json.loads(spec_text)))  # fmt: skip
            return _endpoint(_row(conn, name))

        return run_in_transaction(self.engine, change)

    @checked("name", "actor")
    def set_endpoint_status(
        self, name: str, status: Mapping[str, Any], *, actor: str, event: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Endpoint:  # fmt: skip
        if event is not None and event != DeploymentEvents.STATUS_CHANGED:
            raise InvalidInput(f"Event {event!r} is not a status event; use {DeploymentEvents.STATUS_CHANGED!r}.")
        status_text = _json("status", name, status)
        body = _json("event payload", name, payload)

        def report(conn: Connection) -> Endpoint:
            row = _row(conn, name)
            conn.execute(update(_E).where(_E.c.id == row.id).values(status=status_text, status_at=now_ms()))
            if event is not None:
                write_event(conn, event, f"deployment:{name}", actor=actor, payload=json.loads(body))
            return _endpoint(_row(conn, name))

        return run_in_transaction(self.engine, report)

    @checked("name", "actor", "cause")
    def delete_endpoint(self, name: str, *, actor: str, cause: str | None = None) -> Endpoint:
        def remove(conn: Connection) -> Endpoint:
            row = _row(conn, name)
            conn.execute(delete(_E).where(_E.c.id == row.id))
            write_event(conn, DeploymentEvents.DELETED, f"deployment:{name}", actor=actor,
                        payload=_payload(None, cause, generation=int(row.generation)))  # fmt: skip
            return _endpoint(row)

        return run_in_transaction(self.engine, remove)
