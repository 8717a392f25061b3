"""Tables of monitors, their results per window and their alerts. Part of :mod:`mloop.store.sql.schema`, which
re-exports them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from mloop.store.sql.tablebase import metadata

__all__ = ["monitor_alerts", "monitor_results", "monitors"]

monitors = Table(
    "monitors",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("cursor", Text, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
)

monitor_results = Table(  # a time series: one row per (window, signal, feature)
    "monitor_results",
    metadata,
    Column("monitor_id", String(32), ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("signal", String(100), primary_key=True),
    Column("feature", String(250), primary_key=True),
    Column("window_end", BigInteger, nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("status", String(20), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("monitor_id", String(32), ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("signal", String(100), nullable=False),
    Column("feature", String(250), nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("windows", Integer, nullable=False),
    Column("figures", Text, nullable=False),
    Index("ix_monitor_alerts_monitor_id_state", "monitor_id", "state"),
)
