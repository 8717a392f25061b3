"""Metadata store: the :class:`Store` protocol and its implementations."""

from __future__ import annotations

from mloop.store import protocols
from mloop.store.base import Store
from mloop.store.protocols import *  # noqa: F403  (one Protocol per noun: RunStore, DatasetStore, ...)

__all__ = ["Store", "open_store", *protocols.__all__]  # noqa: PLE0604


def open_store(uri: str) -> Store:
    """Open the metadata store at ``uri`` (``sqlite:///…`` or ``postgresql://…``), migrating its schema.

    A SQLite file is opened as a :class:`~mloop.store.direct.DirectSqliteStore`: its hot-path methods skip
    SQLAlchemy (and its import); everything else is the :class:`~mloop.store.sql.SqlStore`'s."""
    from mloop.store.direct import DirectSqliteStore, sqlite_path

    path = sqlite_path(uri)
    if path is not None:
        return DirectSqliteStore(uri, path)  # (the other methods through its __getattr__)
    from mloop.store.sql import SqlStore

    return SqlStore(uri)
