"""Model registry: models, versions, files, aliases (with history), evaluations and approvals.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("name", name="uq_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("input_example", sa.String(80), nullable=True),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("datasets", sa.Text(), nullable=False),
        sa.Column("code_commit", sa.String(64), nullable=True),
        sa.Column("target", sa.String(250), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_model_versions_model_id_models"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_files",
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name="fk_model_files_version_id_model_versions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_model_files"),
    )
    op.create_index("ix_model_files_digest", "model_files", ["digest"])
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_model_aliases_model_id_models"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name="fk_model_aliases_version_id_model_versions"
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
    )
    op.create_table(
        "model_alias_history",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=True),
        sa.Column("previous_version_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_model_alias_history_model_id_models"),
        sa.PrimaryKeyConstraint("id", name="pk_model_alias_history"),
    )
    op.create_index("ix_model_alias_history_model_alias_id", "model_alias_history", ["model_id", "alias", "id"])
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("data_ref", sa.String(500), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("importance", sa.Text(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("report_digest", sa.String(80), nullable=True),
        sa.Column("comparison", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], name="fk_evaluations_version_id_model_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_version_id_created_at", "evaluations", ["version_id", "created_at"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], name="fk_approvals_version_id_model_versions"),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_version_id_alias", "approvals", ["version_id", "alias"])


def downgrade() -> None:
    for name in (
        "approvals",
        "evaluations",
        "model_alias_history",
        "model_aliases",
        "model_files",
        "model_versions",
        "models",
    ):
        op.drop_table(name)
