"""Alembic environment: runs on the connection mloop hands over (see mloop.store.sql.engine.migrate)."""

from __future__ import annotations

from alembic import context

from mloop.store.sql.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
