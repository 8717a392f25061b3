"""Throwaway PostgreSQL databases for tests: created with a unique name, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["POSTGRES_ADMIN_URI", "postgres_available", "temporary_postgres_database"]

POSTGRES_ADMIN_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_available(admin_uri: str = POSTGRES_ADMIN_URI) -> str | None:
    """``None`` when the server answers, else the reason it cannot be used."""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(admin_uri, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {admin_uri} is not usable: {exc.__class__.__name__}: {exc}"
    return None


@contextmanager
def temporary_postgres_database(admin_uri: str = POSTGRES_ADMIN_URI) -> Iterator[str]:
    """Yield the URI of a new, empty database; drop it (forcefully) on exit."""
    from sqlalchemy import create_engine, text

    name = f"mloop_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_uri.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
