"""Automations, their actions and the engine's event cursor.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("anchor_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automations"),
        sa.UniqueConstraint("name", name="uq_automations_name"),
    )
    op.create_table(
        "automation_actions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("automation", sa.String(250), nullable=False),
        sa.Column("cause", sa.String(100), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_automation_actions"),
        sa.UniqueConstraint("automation", "cause", name="uq_automation_actions_automation_cause"),
    )
    op.create_index("ix_automation_actions_status", "automation_actions", ["status"])
    op.create_index("ix_automation_actions_created_at", "automation_actions", ["created_at"])
    op.create_table(
        "automation_cursors",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_automation_cursors"),
    )


def downgrade() -> None:
    op.drop_table("automation_cursors")
    op.drop_table("automation_actions")
    op.drop_table("automations")
