"""Tables of published pipelines (versions of a definition: a code snapshot), their aliases, schedules and
their claimed fires. Part of :mod:`mloop.store.sql.schema`, which re-exports them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from mloop.store.sql.tablebase import metadata

__all__ = [
    "endpoints",
    "pipeline_aliases",
    "pipeline_files",
    "pipeline_versions",
    "pipelines",
    "schedule_fires",
    "schedules",
]

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline_id", String(32), ForeignKey("pipelines.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("code_digest", String(80), nullable=False),
    Column("file", String(1000), nullable=False),
    Column("variable", String(250), nullable=False),
    Column("source", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("steps", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("description", Text, nullable=False),
    UniqueConstraint("pipeline_id", "version", name="uq_pipeline_versions_pipeline_id_version"),
    UniqueConstraint("pipeline_id", "digest", name="uq_pipeline_versions_pipeline_id_digest"),
)

pipeline_files = Table(
    "pipeline_files",
    metadata,
    Column("version_id", String(32), ForeignKey("pipeline_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),
    Index("ix_pipeline_files_digest", "digest"),
)

pipeline_aliases = Table(
    "pipeline_aliases",
    metadata,
    Column("pipeline_id", String(32), ForeignKey("pipelines.id"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version_id", String(32), ForeignKey("pipeline_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("pipeline", String(250), nullable=False),
    Column("version", Integer, nullable=True),
    Column("cron", String(250), nullable=False),
    Column("params", Text, nullable=False),
    Column("missed", String(16), nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("anchor_at", BigInteger, nullable=False),
    Column("last_fire_at", BigInteger, nullable=True),
)

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule_id", String(32), ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("fire_time", BigInteger, primary_key=True),
    Column("claimed_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("missed", Integer, nullable=False),
)


endpoints = Table(  # deployment:<name>: the spec (desired state, JSON) and the reported status (actual state, JSON)
    "endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("spec", Text, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
)
