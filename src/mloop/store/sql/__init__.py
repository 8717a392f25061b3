"""The SQL metadata store (SQLAlchemy 2 Core + Alembic): SQLite by default, PostgreSQL for teams."""

from mloop.store.sql.store import SqlStore

__all__ = ["SqlStore"]
