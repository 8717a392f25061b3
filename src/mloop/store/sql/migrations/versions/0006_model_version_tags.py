"""Model version tags (e.g. the ``mloop.profile.*`` figures ``mloop profile`` records).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_tags_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_model_version_tags"),
    )


def downgrade() -> None:
    op.drop_table("model_version_tags")
