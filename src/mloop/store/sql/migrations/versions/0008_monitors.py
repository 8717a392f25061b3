"""Monitors, their results per window and their alerts.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        sa.UniqueConstraint("name", name="uq_monitors_name"),
    )
    op.create_table(
        "monitor_results",
        sa.Column("monitor_id", sa.String(32), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("signal", sa.String(100), nullable=False),
        sa.Column("feature", sa.String(250), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name="fk_monitor_results_monitor_id_monitors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("monitor_id", "window_start", "signal", "feature", name="pk_monitor_results"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("monitor_id", sa.String(32), nullable=False),
        sa.Column("signal", sa.String(100), nullable=False),
        sa.Column("feature", sa.String(250), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name="fk_monitor_alerts_monitor_id_monitors", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
    )
    op.create_index("ix_monitor_alerts_monitor_id_state", "monitor_alerts", ["monitor_id", "state"])


def downgrade() -> None:
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_results")
    op.drop_table("monitors")
