"""Engines for SQLite (WAL, immediate write transactions, busy handling) and PostgreSQL, plus migrations."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from mloop.errors import InvalidInput, StoreUnavailable, WorkspaceError
from mloop.store.sql.revision import HEAD_REVISION

__all__ = [
    "HEAD_REVISION",
    "driver_connection",
    "is_sqlite",
    "make_engine",
    "migrate",
    "normalise_uri",
    "require_schema",
    "run_in_transaction",
]

T = TypeVar("T")
_LOCK_RETRIES = 40


def normalise_uri(uri: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3; ``sqlite:///`` stays as it is."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _url(uri: str) -> URL:
    uri = normalise_uri(uri)
    try:
        return make_url(uri)
    except ArgumentError as exc:
        raise InvalidInput(
            f"Cannot read the store URI {uri!r}. Use sqlite:///path/to/mloop.db or postgresql://user@host:5432/dbname."
        ) from exc


def make_engine(uri: str) -> Engine:
    """Create an engine; SQLite gets WAL, synchronous=NORMAL, foreign keys and a 30 s busy timeout.

    A SQLite file (and its folder) that does not exist yet is created on first use: only callers that may
    create a store (``mloop init``) get here without :func:`require_schema` first.
    """
    uri = normalise_uri(uri)
    url = _url(uri)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # every use ends its own transaction (commit or rollback), so the pool need not roll back again
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_reset_on_return=None)
        _configure_sqlite(engine)
        return engine
    if url.get_backend_name() == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except ModuleNotFoundError as exc:
            raise StoreUnavailable(
                f"PostgreSQL support needs psycopg: pip install 'mloop[postgres]' (for {uri!r})."
            ) from exc
    raise InvalidInput(
        f"Unsupported store URI {uri!r}: mloop stores metadata in SQLite (sqlite:///path) or "
        "PostgreSQL (postgresql://user@host/db)."
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that later upgrades to a write lock
        # fails at once with "database is locked" under WAL, whatever the busy timeout.
        write = conn.get_execution_options().get("mloop_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _is_locked(exc: DBAPIError) -> bool:
    msg = str(exc.orig).lower()
    return "database is locked" in msg or "database is busy" in msg or "deadlock detected" in msg


# SQLite's limits (SQLITE_ERROR with these messages; SQLITE_TOOBIG is a DataError, mapped by inputs.checked)
_SQLITE_LIMITS = (
    "too many sql variables",
    "expression tree is too large",
    "too many arguments on function",
    "too many columns",
    "too many terms in",  # compound SELECT, ORDER BY, GROUP BY
    "tables in a join",
    "pattern too complex",
    "string or blob too big",
)


def _is_limit(exc: DBAPIError) -> bool:
    """PostgreSQL's SQLSTATE class 54 (program limit exceeded, e.g. an index row too big); SQLite's limits."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith("54")
    msg = str(exc.orig).lower()
    return any(limit in msg for limit in _SQLITE_LIMITS)


def _reason(exc: DBAPIError) -> str:
    return (str(exc.orig).strip().splitlines() or [""])[0]


@contextmanager
def driver_connection(conn: Connection) -> Iterator[Any]:
    """The DB-API connection under ``conn`` (same transaction), for fast paths that skip SQLAlchemy.

    Its errors become SQLAlchemy's, as ``conn.execute`` would raise them, so :func:`run_in_transaction` retries
    lock contention and maps the rest to typed errors the same way on both paths.
    """
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    try:
        yield conn.connection.driver_connection
    except dbapi_error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi_error, dialect=conn.dialect) from exc


def run_in_transaction(engine: Engine, fn: Callable[[Connection], T], *, write: bool = True) -> T:
    """Run ``fn`` in one transaction, retrying lock contention (with jittered back-off, about 15 s in all).

    A database limit that the request exceeds (PostgreSQL's "program limit exceeded", SQLSTATE class 54; SQLite's
    "too many SQL variables" and the like) raises :class:`InvalidInput`; a lock that outlasts the retries and an
    unreachable database raise :class:`StoreUnavailable`.
    """
    shown_url = engine.url.render_as_string(hide_password=True)
    for attempt in range(_LOCK_RETRIES):
        try:
            with engine.connect() as raw:
                conn = raw.execution_options(mloop_write=True) if write else raw
                with conn.begin():
                    return fn(conn)
        except OperationalError as exc:
            if _is_locked(exc) and attempt < _LOCK_RETRIES - 1:
                time.sleep(min(0.5, 0.005 * 2**attempt) * (0.5 + random.random()))
                continue
            if _is_limit(exc):
                raise InvalidInput(
                    f"The metadata store refused the request: it exceeds a database limit ({_reason(exc)}). "
                    "Pass fewer or shorter values (see Limits in docs/tracking.md)."
                ) from exc
            if _is_locked(exc):
                raise StoreUnavailable(
                    f"The metadata store {shown_url} stayed locked by another connection through {_LOCK_RETRIES} "
                    f"attempts ({_reason(exc)}). Retry later, or stop the process that holds the lock."
                ) from exc
            raise StoreUnavailable(
                f"The metadata store {shown_url} cannot be used: "
                f"{exc.orig}. Check that the database exists and is reachable, or set MLOOP_URI."
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _read_revision(conn: Connection) -> str | None:
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _not_a_store(uri: str, what: str) -> WorkspaceError:
    return WorkspaceError(
        f"There is no mloop store at {uri!r}: {what}. Create one with `mloop init --store {uri}` "
        "(or `mloop init DIR` for a workspace folder), or point --uri / MLOOP_URI at an existing store."
    )


def require_schema(uri: str) -> None:
    """Raise :class:`WorkspaceError` naming `mloop init` unless ``uri`` holds mloop's schema. Creates nothing.

    A missing SQLite file and a database without mloop's tables (an empty PostgreSQL database, an unrelated
    SQLite file) are refused; a schema of an older revision is fine (opening it migrates it). An unreachable
    server raises :class:`StoreUnavailable`.
    """
    url = _url(uri)
    shown = make_url(uri).render_as_string(hide_password=True)  # as the user wrote it, without a password
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return
        if not Path(url.database).is_file():
            raise _not_a_store(shown, f"the file {url.database} does not exist")
    elif backend != "postgresql":
        return  # make_engine names the supported kinds
    engine: Engine | None = None
    try:
        engine = create_engine(url, poolclass=NullPool)
        revision = run_in_transaction(engine, _read_revision, write=False)
    except ModuleNotFoundError as exc:
        raise StoreUnavailable(
            f"PostgreSQL support needs psycopg: pip install 'mloop[postgres]' (for {shown!r})."
        ) from exc
    except DBAPIError as exc:  # e.g. "file is not a database"
        raise _not_a_store(shown, f"it cannot be read as a database ({exc.orig})") from exc
    finally:
        if engine is not None:
            engine.dispose()
    if revision is None:
        raise _not_a_store(shown, "the database holds no mloop tables")


def current_revision(engine: Engine) -> str | None:
    return run_in_transaction(engine, _read_revision, write=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the head revision (Alembic). Cheap when it is already there."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))

    def upgrade(conn: Connection) -> None:
        if _read_revision(conn) == HEAD_REVISION:  # another process migrated while we waited
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    if is_sqlite(engine):
        # A throwaway engine so concurrent first openers serialise on the write lock.
        mig_engine = create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 60})
        _configure_sqlite(mig_engine)
        try:
            run_in_transaction(mig_engine, upgrade)
        finally:
            mig_engine.dispose()
    else:
        run_in_transaction(engine, lambda conn: _pg_locked_upgrade(conn, upgrade))


def _pg_locked_upgrade(conn: Connection, upgrade: Callable[[Connection], None]) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(7710771)"))  # one migrator at a time
    upgrade(conn)
