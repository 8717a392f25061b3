"""Params and tags indexed on (key, the first 200 characters of value); setting keys widened to 400 characters.

A B-tree entry on PostgreSQL must fit in a third of a page (2,704 bytes): the (key, value) indexes refused a param
or tag value of a few kilobytes that does not compress ("index row size ... exceeds btree maximum"), while SQLite
stored it. The new indexes hold ``substr(value, 1, 200)``, which always fits; searches compare that prefix
(indexed) and then the whole value. The same expression index is used on SQLite, so both stores behave the same.

Setting keys were 100 characters wide, too narrow for ``policy:<model name>:<alias>`` (names up to 250
characters, aliases up to 100).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PREFIX = "substr(value, 1, 200)"  # keep in step with schema.value_prefix / VALUE_INDEX_PREFIX


def upgrade() -> None:
    for name in ("params", "tags"):
        op.drop_index(f"ix_{name}_key_value", table_name=name)
        op.create_index(f"ix_{name}_key_value", name, ["key", sa.text(_PREFIX)])
    with op.batch_alter_table("settings") as batch:
        batch.alter_column("key", type_=sa.String(400), existing_type=sa.String(100), existing_nullable=False)


def downgrade() -> None:
    """Fails on PostgreSQL if a value no longer fits a whole-value index, or a setting key is too long."""
    with op.batch_alter_table("settings") as batch:
        batch.alter_column("key", type_=sa.String(100), existing_type=sa.String(400), existing_nullable=False)
    for name in ("params", "tags"):
        op.drop_index(f"ix_{name}_key_value", table_name=name)
        op.create_index(f"ix_{name}_key_value", name, ["key", "value"])
