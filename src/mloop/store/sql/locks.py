"""Store-wide exclusive locks held by a long-running process (one ``mloop scheduler`` per store).

SQLite: an OS file lock (``flock``) on ``<database>.<name>.lock`` beside the database file; the holder's text
(host, pid) is written into that file. PostgreSQL: ``pg_try_advisory_lock`` held on a dedicated connection
whose ``application_name`` is the holder's text, so a refused process can name the holder from
``pg_stat_activity``. Either lock is released when its process ends, however it ends (kill -9 included).
"""

from __future__ import annotations

import os
import zlib
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from mloop.errors import Conflict, InvalidInput

__all__ = ["FileLock", "PostgresLock", "try_lock"]

_APP_NAME_MAX = 63  # PostgreSQL truncates application_name to 63 bytes


def _refused(name: str, holder: str | None, where: str) -> Conflict:
    who = holder.strip() if holder and holder.strip() else "another process (holder unknown)"
    return Conflict(
        f"Another {name} already runs for this store ({where}): {who}. Only one may run per workspace; stop that "
        f"one first (or, if it is gone, make sure no {name} process is left on that host)."
    )


class FileLock:
    """An exclusive ``flock`` on a file beside the SQLite database."""

    def __init__(self, name: str, path: str, fd: int) -> None:
        self._name, self.path, self._fd = name, path, fd

    @property
    def name(self) -> str:
        return self._name

    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        import fcntl

        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class PostgresLock:
    """``pg_try_advisory_lock`` held by a dedicated connection (closed on release)."""

    def __init__(self, name: str, conn: Any, key: int) -> None:
        self._name, self._conn, self._key = name, conn, key

    @property
    def name(self) -> str:
        return self._name

    def held(self) -> bool:
        """Asks the server: a dropped connection (server restart, network) has lost the lock."""
        if self._conn is None:
            return False
        try:
            got = self._conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 "
                     "AND objid = :k AND pid = pg_backend_pid()"),
                {"k": self._key},
            ).scalar()  # fmt: skip
            self._conn.commit()
        except Exception:  # the connection is gone, and the lock with it
            return False
        return bool(got)

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.commit()
            except Exception:  # the connection was lost: so was the lock
                pass
            finally:
                self._conn.close()
                self._conn = None


def _file_lock(engine: Engine, name: str, holder: str) -> FileLock:
    import fcntl

    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        raise InvalidInput(f"A {name} needs a store in a file or PostgreSQL, not an in-memory SQLite database.")
    path = f"{database}.{name.replace(' ', '-')}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        with open(path, encoding="utf-8", errors="replace") as f:
            raise _refused(name, f.read(), f"lock file {path}") from None
    os.ftruncate(fd, 0)
    os.write(fd, holder.encode())
    return FileLock(name, path, fd)


def _pg_lock(engine: Engine, name: str, holder: str) -> PostgresLock:
    key = zlib.crc32(f"mloop:{name}".encode())  # 32 bits: pg_locks shows it as objid with classid 0
    conn = engine.connect()
    try:
        conn.execute(text("SELECT set_config('application_name', :h, false)"), {"h": holder[:_APP_NAME_MAX]})
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        if got:
            return PostgresLock(name, conn, key)
        who = conn.execute(
            text("SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l JOIN pg_stat_activity a "
                 "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = :k "
                 "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"k": key},
        ).first()  # fmt: skip
        conn.rollback()
    except BaseException:
        conn.close()
        raise
    conn.close()
    holder_text = None if who is None else f"{who[0] or '?'} (server backend pid {who[2]}, from {who[1] or 'local'})"
    raise _refused(name, holder_text, f"PostgreSQL advisory lock {key}")


def try_lock(engine: Engine, name: str, holder: str) -> FileLock | PostgresLock:
    """Hold lock ``name`` for this store, or raise :class:`Conflict` naming its holder."""
    if engine.dialect.name == "sqlite":
        return _file_lock(engine, name, holder)
    return _pg_lock(engine, name, holder)
