"""Dialect-specific statements shared by the SQL store's modules (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import sqlite

__all__ = ["chunks", "insert_ignore", "insert_stmt"]

CHUNK = 500


def insert_stmt(conn: Connection, table: Table) -> Any:
    """An INSERT supporting ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on both dialects."""
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    from sqlalchemy.dialects import postgresql  # not imported by SQLite users

    return postgresql.insert(table)


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert rows, skipping those whose ``keys`` already exist."""
    if rows:
        conn.execute(insert_stmt(conn, table).on_conflict_do_nothing(index_elements=list(keys)), list(rows))


def chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    """Split ``items`` to keep IN lists under every database's parameter limit."""
    return [items[i : i + size] for i in range(0, len(items), size)]
