"""Tables of automations, their actions and the engine's event cursor. Part of :mod:`mloop.store.sql.schema`,
which re-exports them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from mloop.store.sql.tablebase import metadata

__all__ = ["automation_actions", "automation_cursors", "automations"]

automations = Table(
    "automations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("anchor_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
)

automation_actions = Table(  # kept when its automation is deleted: the history names it
    "automation_actions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("automation", String(250), nullable=False),
    Column("cause", String(100), nullable=False),
    Column("event_id", BigInteger, nullable=True),
    Column("depth", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Column("outcome", Text, nullable=False),
    Column("error", Text, nullable=True),
    UniqueConstraint("automation", "cause", name="uq_automation_actions_automation_cause"),
    Index("ix_automation_actions_status", "status"),
    Index("ix_automation_actions_created_at", "created_at"),
)

automation_cursors = Table(
    "automation_cursors",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
