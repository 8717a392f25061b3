"""Lineage edges in the SQL store: what was used to make what."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from mloop.entities import LineageEdge, now_ms
from mloop.errors import InvalidInput, shown
from mloop.store.protocols.lineage import LineageEvents
from mloop.store.sql import schema as t
from mloop.store.sql.dialect import insert_ignore
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked

__all__ = ["LineageMixin"]


def _edge(row: Any) -> LineageEdge:
    return LineageEdge(row.source, row.target, row.relation, row.actor, int(row.created_at))


class LineageMixin:
    engine: Engine

    @checked("source", "target", "relation", "actor")
    def add_lineage(self, source: str, target: str, relation: str, *, actor: str) -> None:
        def add(conn: Connection) -> None:
            exists = conn.execute(
                select(t.lineage.c.source).where(
                    t.lineage.c.source == source, t.lineage.c.target == target, t.lineage.c.relation == relation
                )
            ).first()
            if exists is not None:
                return
            row = {"source": source, "target": target, "relation": relation, "actor": actor, "created_at": now_ms()}
            insert_ignore(conn, t.lineage, [row], ("source", "target", "relation"))
            write_event(
                conn, LineageEvents.RECORDED, target, actor=actor, payload={"source": source, "relation": relation}
            )

        run_in_transaction(self.engine, add)

    @checked("ref", "direction")
    def list_lineage(self, ref: str, *, direction: str = "both") -> list[LineageEdge]:
        """Edges into ``ref`` (``up``), out of it (``down``) or both."""
        c = t.lineage.c
        if direction not in {"up", "down", "both"}:
            raise InvalidInput(f"Invalid lineage direction {shown(direction)}. Use 'up', 'down' or 'both'.")
        cond = {"up": c.target == ref, "down": c.source == ref, "both": or_(c.target == ref, c.source == ref)}
        q = select(t.lineage).where(cond[direction]).order_by(c.created_at, c.source, c.target)
        return run_in_transaction(self.engine, lambda conn: [_edge(r) for r in conn.execute(q)], write=False)
