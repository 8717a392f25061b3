"""Published pipelines (versions, snapshot files, aliases), schedules and their claimed fires.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.UniqueConstraint("name", name="uq_pipelines_name"),
    )
    op.create_table(
        "pipeline_versions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("code_digest", sa.String(80), nullable=False),
        sa.Column("file", sa.String(1000), nullable=False),
        sa.Column("variable", sa.String(250), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], name="fk_pipeline_versions_pipeline_id_pipelines"),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_versions"),
        sa.UniqueConstraint("pipeline_id", "version", name="uq_pipeline_versions_pipeline_id_version"),
        sa.UniqueConstraint("pipeline_id", "digest", name="uq_pipeline_versions_pipeline_id_digest"),
    )
    op.create_table(
        "pipeline_files",
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["pipeline_versions.id"],
            name="fk_pipeline_files_version_id_pipeline_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_pipeline_files"),
    )
    op.create_index("ix_pipeline_files_digest", "pipeline_files", ["digest"])
    op.create_table(
        "pipeline_aliases",
        sa.Column("pipeline_id", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], name="fk_pipeline_aliases_pipeline_id_pipelines"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["pipeline_versions.id"], name="fk_pipeline_aliases_version_id_pipeline_versions"
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "alias", name="pk_pipeline_aliases"),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("pipeline", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(250), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("missed", sa.String(16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("anchor_at", sa.BigInteger(), nullable=False),
        sa.Column("last_fire_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("name", name="uq_schedules_name"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", sa.String(32), nullable=False),
        sa.Column("fire_time", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedules.id"], name="fk_schedule_fires_schedule_id_schedules", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("schedule_id", "fire_time", name="pk_schedule_fires"),
    )


def downgrade() -> None:
    for name in ("schedule_fires", "schedules", "pipeline_aliases", "pipeline_files", "pipeline_versions", "pipelines"):
        op.drop_table(name)
