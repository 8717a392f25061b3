"""Evaluation records and approvals in the SQL store."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select

from mloop.entities import Approval, Evaluation, new_id, now_ms
from mloop.store.protocols.models import ModelEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked
from mloop.store.sql.models import resolve_model_version

__all__ = ["EvaluationsMixin"]


def _evaluation(row: Any, model_ref: str) -> Evaluation:
    return Evaluation(
        id=row.id, model_ref=model_ref, data_ref=row.data_ref, task=row.task, metrics=json.loads(row.metrics),
        created_at=int(row.created_at), actor=row.actor, rows=int(row.rows),
        importance=tuple(tuple(x) for x in json.loads(row.importance)),
        latency_ms=json.loads(row.latency), report_digest=row.report_digest,
        comparison=None if row.comparison is None else json.loads(row.comparison),
    )  # fmt: skip


class EvaluationsMixin:
    engine: Engine

    @checked("name", "version", "data_ref", "task", "actor", "rows", "report_digest")
    def add_evaluation(
        self, name: str, version: int, *, data_ref: str, task: str, metrics: Mapping[str, Any], actor: str,
        rows: int, importance: Sequence[tuple[str, float, float]] = (),
        latency_ms: Mapping[str, float] | None = None, report_digest: str | None = None,
        comparison: Mapping[str, Any] | None = None
    ) -> Evaluation:  # fmt: skip
        def add(conn: Connection) -> Evaluation:
            mv = resolve_model_version(conn, name, version, None)
            eid = new_id()
            conn.execute(
                t.evaluations.insert().values(
                    id=eid, version_id=mv.id, data_ref=data_ref, task=task,
                    metrics=json.dumps(dict(metrics), sort_keys=True, default=str), created_at=now_ms(), actor=actor,
                    rows=rows, importance=json.dumps([list(x) for x in importance]),
                    latency=json.dumps(dict(latency_ms or {}), sort_keys=True), report_digest=report_digest,
                    comparison=None if comparison is None else json.dumps(dict(comparison), default=str),
                )
            )  # fmt: skip
            write_event(conn, ModelEvents.EVALUATED, mv.ref, actor=actor,
                        payload={"data": data_ref, "evaluation": eid, "task": task})  # fmt: skip
            row = conn.execute(select(t.evaluations).where(t.evaluations.c.id == eid)).one()
            return _evaluation(row, mv.ref)

        return run_in_transaction(self.engine, add)

    @checked("name", "version", "data_ref")
    def list_evaluations(self, name: str, version: int, *, data_ref: str | None = None) -> list[Evaluation]:
        """Evaluations of a version, newest first."""
        e = t.evaluations

        def read(conn: Connection) -> list[Evaluation]:
            mv = resolve_model_version(conn, name, version, None)
            q = select(e).where(e.c.version_id == mv.id)
            if data_ref is not None:
                q = q.where(e.c.data_ref == data_ref)
            rows = conn.execute(q.order_by(e.c.created_at.desc(), e.c.id.desc())).all()
            return [_evaluation(r, mv.ref) for r in rows]

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "version", "alias", "actor", "roles", "comment")
    def add_approval(
        self, name: str, version: int, *, alias: str, actor: str, roles: Sequence[str] = (), comment: str = ""
    ) -> Approval:
        def add(conn: Connection) -> Approval:
            mv = resolve_model_version(conn, name, version, None)
            approval = Approval(new_id(), mv.ref, alias, actor, tuple(roles), comment, now_ms())
            conn.execute(
                t.approvals.insert().values(
                    id=approval.id, version_id=mv.id, alias=alias, actor=actor, roles=json.dumps(list(roles)),
                    comment=comment, created_at=approval.created_at,
                )
            )  # fmt: skip
            write_event(conn, ModelEvents.APPROVED, mv.ref, actor=actor,
                        payload={"alias": alias, "roles": list(roles), "comment": comment})  # fmt: skip
            return approval

        return run_in_transaction(self.engine, add)

    @checked("name", "version", "alias")
    def list_approvals(self, name: str, version: int, *, alias: str | None = None) -> list[Approval]:
        a = t.approvals

        def read(conn: Connection) -> list[Approval]:
            mv = resolve_model_version(conn, name, version, None)
            q = select(a).where(a.c.version_id == mv.id)
            if alias is not None:
                q = q.where(a.c.alias == alias)
            return [
                Approval(r.id, mv.ref, r.alias, r.actor, tuple(json.loads(r.roles)), r.comment, int(r.created_at))
                for r in conn.execute(q.order_by(a.c.created_at))
            ]

        return run_in_transaction(self.engine, read, write=False)
