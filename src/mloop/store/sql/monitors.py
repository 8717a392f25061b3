"""Monitors in the SQL store: spec, cursor (compare-and-swap per window), results, alerts and their events."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import AlertChange, Monitor, MonitorAlert, MonitorResult, Page, encode_cursor, new_id, now_ms
from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.refs import parse_ref
from mloop.store.protocols.monitors import MonitorEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked, cursor_field

__all__ = ["MonitorsMixin"]

_M, _R, _A = t.monitors, t.monitor_results, t.monitor_alerts
ALERT_STATES = ("opened", "still_open", "resolved")
RESULT_STATUSES = ("ok", "breach", "unknown")


def _monitor(r: Any) -> Monitor:
    return Monitor(id=r.id, name=r.name, spec=json.loads(r.spec), created_at=int(r.created_at),
                   updated_at=int(r.updated_at), actor=r.actor, paused=bool(r.paused),
                   cursor=json.loads(r.cursor))  # fmt: skip


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(_M).where(_M.c.name == name)).first()
    if row is None:
        raise NotFound(f"No monitor named {name!r}. List monitors with `mloop monitors list`.")
    return row


def _json(what: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The monitor's {what} must hold JSON values only ({exc}).") from None


def _alert(r: Any, monitor: str) -> MonitorAlert:
    return MonitorAlert(id=r.id, monitor=monitor, signal=r.signal, feature=r.feature, state=r.state,
                        opened_at=int(r.opened_at), updated_at=int(r.updated_at), windows=int(r.windows),
                        figures=json.loads(r.figures),
                        resolved_at=None if r.resolved_at is None else int(r.resolved_at))  # fmt: skip


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class MonitorsMixin:
    engine: Engine

    @checked("name", "actor")
    def create_monitor(self, name: str, *, spec: Mapping[str, Any], actor: str) -> Monitor:
        parse_ref(f"monitor:{name}")
        spec_text = _json("spec", dict(spec))
        now = now_ms()

        def create(conn: Connection) -> Monitor:
            if conn.execute(select(_M.c.id).where(_M.c.name == name)).first() is not None:
                raise AlreadyExists(f"A monitor named {name!r} exists. Pick another name, or delete it first: "
                                    f"`mloop monitors delete {name}`.")  # fmt: skip
            conn.execute(_M.insert().values(id=new_id(), name=name, spec=spec_text, cursor="{}", paused=False,
                                            created_at=now, updated_at=now, actor=actor))  # fmt: skip
            write_event(conn, MonitorEvents.CREATED, f"monitor:{name}", actor=actor, payload={"spec": dict(spec)})
            return _monitor(_row(conn, name))

        try:
            return run_in_transaction(self.engine, create)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"A monitor named {name!r} was created concurrently. Pick another name.") from exc

    @checked("name")
    def get_monitor(self, name: str) -> Monitor:
        return run_in_transaction(self.engine, lambda c: _monitor(_row(c, name)), write=False)

    @checked("limit")
    def list_monitors(self, *, cursor: str | None = None, limit: int = 100) -> Page[Monitor]:
        q = select(_M).order_by(_M.c.name).limit(limit + 1)
        if cursor is not None:
            q = q.where(_M.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [_monitor(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"name": items[-1].name}) if len(rows) > limit else None)

    @checked("name", "actor")
    def update_monitor(
        self, name: str, *, actor: str, spec: Mapping[str, Any] | None = None, paused: bool | None = None
    ) -> Monitor:
        spec_text = None if spec is None else _json("spec", dict(spec))

        def change(conn: Connection) -> Monitor:
            row = _row(conn, name)
            values: dict[str, Any] = {}
            if spec_text is not None and spec_text != row.spec:
                values["spec"] = spec_text
            if paused is not None and bool(paused) != bool(row.paused):
                values["paused"] = bool(paused)
            if not values:
                return _monitor(row)
            conn.execute(update(_M).where(_M.c.id == row.id).values(updated_at=now_ms(), **values))
            payload = {k: json.loads(v) if k == "spec" else v for k, v in values.items()}
            write_event(conn, MonitorEvents.UPDATED, f"monitor:{name}", actor=actor, payload=payload)
            return _monitor(_row(conn, name))

        return run_in_transaction(self.engine, change)

    @checked("name", "actor")
    def record_monitor_window(
        self, name: str, *, results: Sequence[MonitorResult], cursor: Mapping[str, Any],
        expected_cursor: Mapping[str, Any], alerts: Sequence[AlertChange] = (), actor: str,
    ) -> Monitor:  # fmt: skip
        new_cursor, old_cursor = _json("cursor", dict(cursor)), _json("cursor", dict(expected_cursor))
        for r in results:
            if r.status not in RESULT_STATUSES:
                raise InvalidInput(f"Result status {r.status!r} is not one of {list(RESULT_STATUSES)}.")
        for a in alerts:
            if a.state not in ALERT_STATES:
                raise InvalidInput(f"Alert state {a.state!r} is not one of {list(ALERT_STATES)}.")
        rows = [{"window_start": r.window_start, "window_end": r.window_end, "signal": r.signal,
                 "feature": r.feature, "value": _finite(r.value), "threshold": _finite(r.threshold),
                 "status": r.status, "rows": int(r.rows), "detail": _json("result detail", dict(r.detail))}
                for r in results]  # fmt: skip

        def record(conn: Connection) -> Monitor:
            row = _row(conn, name)
            moved = conn.execute(update(_M).where(_M.c.id == row.id, _M.c.cursor == old_cursor)
                                 .values(cursor=new_cursor, updated_at=now_ms()))  # fmt: skip
            if moved.rowcount != 1:
                raise Conflict(f"Monitor {name!r} recorded this window already (its cursor moved). Run it again "
                               "to compute the next one.")  # fmt: skip
            if rows:
                conn.execute(_R.insert(), [{"monitor_id": row.id, **r} for r in rows])
            for change in alerts:
                self._apply_alert(conn, row, change, actor)
            return _monitor(_row(conn, name))

        try:
            return run_in_transaction(self.engine, record)
        except SAIntegrityError as exc:
            raise Conflict(f"Monitor {name!r} already has results for this window.") from exc

    @staticmethod
    def _apply_alert(conn: Connection, row: Any, change: AlertChange, actor: str) -> None:
        now = now_ms()
        figures = _json("alert figures", dict(change.figures))
        open_q = select(_A).where(_A.c.monitor_id == row.id, _A.c.signal == change.signal,
                                  _A.c.feature == change.feature, _A.c.state == "open")  # fmt: skip
        current = conn.execute(open_q).first()
        if change.state == "opened" and current is None:
            alert_id = new_id()
            conn.execute(_A.insert().values(id=alert_id, monitor_id=row.id, signal=change.signal,
                                            feature=change.feature, state="open", opened_at=now, updated_at=now,
                                            resolved_at=None, windows=1, figures=figures))  # fmt: skip
        elif current is not None and change.state in ("opened", "still_open"):
            alert_id = current.id
            conn.execute(update(_A).where(_A.c.id == current.id)
                         .values(updated_at=now, windows=int(current.windows) + 1, figures=figures))  # fmt: skip
        elif current is not None and change.state == "resolved":
            alert_id = current.id
            conn.execute(update(_A).where(_A.c.id == current.id)
                         .values(state="resolved", updated_at=now, resolved_at=now, figures=figures))  # fmt: skip
        else:
            return  # nothing open to continue or resolve: no change, no event
        payload = {"alert": alert_id, "state": change.state, "signal": change.signal, "feature": change.feature,
                   "figures": dict(change.figures)}  # fmt: skip
        write_event(conn, MonitorEvents.ALERT, f"monitor:{row.name}", actor=actor, payload=payload)

    @checked("name", "signal", "feature", "limit")
    def list_monitor_results(
        self, name: str, *, since: int | None = None, until: int | None = None, signal: str | None = None,
        feature: str | None = None, limit: int = 10_000,
    ) -> list[MonitorResult]:  # fmt: skip
        def read(conn: Connection) -> list[MonitorResult]:
            row = _row(conn, name)
            q = select(_R).where(_R.c.monitor_id == row.id)
            if since is not None:
                q = q.where(_R.c.window_start >= since)
            if until is not None:
                q = q.where(_R.c.window_start < until)
            if signal is not None:
                q = q.where(_R.c.signal == signal)
            if feature is not None:
                q = q.where(_R.c.feature == feature)
            q = q.order_by(_R.c.window_start, _R.c.signal, _R.c.feature).limit(limit)
            return [MonitorResult(int(r.window_start), int(r.window_end), r.signal, r.feature, r.value, r.threshold,
                                  r.status, int(r.rows), json.loads(r.detail))
                    for r in conn.execute(q)]  # fmt: skip

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "state")
    def list_monitor_alerts(self, name: str | None = None, *, state: str | None = None) -> list[MonitorAlert]:
        if state is not None and state not in ("open", "resolved"):
            raise InvalidInput(f"Alert state {state!r} is not 'open' or 'resolved'.")

        def read(conn: Connection) -> list[MonitorAlert]:
            q = select(_A, _M.c.name.label("monitor_name")).join(_M, _M.c.id == _A.c.monitor_id)
            if name is not None:
                q = q.where(_A.c.monitor_id == _row(conn, name).id)
            if state is not None:
                q = q.where(_A.c.state == state)
            return [_alert(r, r.monitor_name) for r in conn.execute(q.order_by(_A.c.opened_at.desc(), _A.c.id))]

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "actor")
    def delete_monitor(self, name: str, *, actor: str) -> Monitor:
        def remove(conn: Connection) -> Monitor:
            row = _row(conn, name)
            conn.execute(delete(_R).where(_R.c.monitor_id == row.id))
            conn.execute(delete(_A).where(_A.c.monitor_id == row.id))
            conn.execute(delete(_M).where(_M.c.id == row.id))
            write_event(conn, MonitorEvents.DELETED, f"monitor:{name}", actor=actor)
            return _monitor(row)

        return run_in_transaction(self.engine, remove)
