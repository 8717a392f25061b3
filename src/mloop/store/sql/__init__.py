"""The SQL metadata store (SQLAlchemy 2 Core + Alembic): SQLite by default, PostgreSQL for teams."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.store.sql.store import SqlStore

__all__ = ["SqlStore"]


def __getattr__(name: str) -> Any:
    """``SqlStore`` imported on first use: the modules of this package that need no SQLAlchemy (``fastpath``,
    ``inputs``, ``revision``) can then be imported without it (see :mod:`mloop.store.direct`)."""
    if name == "SqlStore":
        from mloop.store.sql.store import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
