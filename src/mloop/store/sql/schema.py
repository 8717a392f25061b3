"""Tables of the SQL metadata store (SQLAlchemy Core). Alembic migrations create them; keep both in step.

The metadata object and shared column helpers live in :mod:`tablebase`; the published-pipeline and schedule
tables in :mod:`pipeline_tables`. Every table is importable from here.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mloop.store.sql.automation_tables import automation_actions, automation_cursors, automations
from mloop.store.sql.monitor_tables import monitor_alerts, monitor_results, monitors
from mloop.store.sql.pipeline_tables import (
    endpoints,
    pipeline_aliases,
    pipeline_files,
    pipeline_versions,
    pipelines,
    schedule_fires,
    schedules,
)
from mloop.store.sql.tablebase import SETTING_KEY_LENGTH, VALUE_INDEX_PREFIX, BigId, metadata, value_prefix

__all__ = [
    "SETTING_KEY_LENGTH",
    "VALUE_INDEX_PREFIX",
    "approvals",
    "artifacts",
    "automation_actions",
    "automation_cursors",
    "automations",
    "dataset_aliases",
    "dataset_files",
    "dataset_versions",
    "datasets",
    "endpoints",
    "environments",
    "evaluations",
    "events",
    "experiments",
    "latest_metrics",
    "lineage",
    "metadata",
    "metrics",
    "model_alias_history",
    "model_aliases",
    "model_files",
    "model_versions",
    "models",
    "monitor_alerts",
    "monitor_results",
    "monitors",
    "params",
    "pipeline_aliases",
    "pipeline_files",
    "pipeline_versions",
    "pipelines",
    "runs",
    "schedule_fires",
    "schedules",
    "settings",
    "tags",
    "value_prefix",
]

settings = Table(
    "settings",
    metadata,
    Column("key", String(SETTING_KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
)

environments = Table(
    "environments",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("body", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", String(32), ForeignKey("experiments.id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_id", String(32), nullable=True),
    Column("actor", String(250), nullable=False),
    Column("environment_digest", String(80), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("deleted_at", BigInteger, nullable=True),
    Index("ix_runs_experiment_deleted_id", "experiment_id", "deleted", "id"),
    Index("ix_runs_parent_id", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)
Index("ix_params_key_value", params.c.key, value_prefix(params.c.value))

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)
Index("ix_tags_key_value", tags.c.key, value_prefix(tags.c.value))

metrics = Table(
    "metrics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=True),  # NULL stores NaN (SQLite cannot hold NaN)
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("type", String(100), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("actor", String(250), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_events_type_id", "type", "id"),
    Index("ix_events_subject_id", "subject", "id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_version", Integer, nullable=False),  # numbers are never reused, even after a delete
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("dataset_id", String(32), ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_digest", String(80), nullable=False),
    Column("file_count", BigInteger, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("message", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("format", String(16), nullable=True),
    Column("rows", BigInteger, nullable=True),
    Column("private", Boolean, nullable=False),
    Column("source", String(500), nullable=True),
    Column("role", String(32), nullable=True),
    Column("meta", Text, nullable=False),
    Column("profile", Text, nullable=True),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
    UniqueConstraint("dataset_id", "manifest_digest", name="uq_dataset_versions_dataset_id_manifest_digest"),
)

dataset_files = Table(
    "dataset_files",
    metadata,
    Column("version_id", String(32), ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),
    Index("ix_dataset_files_digest", "digest"),
)

dataset_aliases = Table(
    "dataset_aliases",
    metadata,
    Column("dataset_id", String(32), ForeignKey("datasets.id"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version_id", String(32), ForeignKey("dataset_versions.id", ondelete="CASCADE"), nullable=False),
)

lineage = Table(
    "lineage",
    metadata,
    Column("source", String(500), primary_key=True),
    Column("target", String(500), primary_key=True),
    Column("relation", String(50), primary_key=True),
    Column("actor", String(250), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_lineage_target", "target"),
)

models = Table(
    "models",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", String(32), ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("source", Text, nullable=False),
    Column("signature", Text, nullable=True),
    Column("input_example", String(80), nullable=True),
    Column("environment", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("datasets", Text, nullable=False),
    Column("code_commit", String(64), nullable=True),
    Column("target", String(250), nullable=True),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    Index("ix_model_versions_run_id", "run_id"),
)

model_files = Table(
    "model_files",
    metadata,
    Column("version_id", String(32), ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),
    Index("ix_model_files_digest", "digest"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("version_id", String(32), ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", String(32), ForeignKey("models.id"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version_id", String(32), ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
)

model_alias_history = Table(
    "model_alias_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("model_id", String(32), ForeignKey("models.id"), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("version_id", String(32), nullable=True),
    Column("previous_version_id", String(32), nullable=True),
    Column("actor", String(250), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("reason", String(50), nullable=False),
    Index("ix_model_alias_history_model_alias_id", "model_id", "alias", "id"),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("version_id", String(32), ForeignKey("model_versions.id"), nullable=False),
    Column("data_ref", String(500), nullable=False),
    Column("task", String(32), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("importance", Text, nullable=False),
    Column("latency", Text, nullable=False),
    Column("report_digest", String(80), nullable=True),
    Column("comparison", Text, nullable=True),
    Index("ix_evaluations_version_id_created_at", "version_id", "created_at"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("version_id", String(32), ForeignKey("model_versions.id"), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("actor", String(250), nullable=False),
    Column("roles", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_approvals_version_id_alias", "version_id", "alias"),
)
