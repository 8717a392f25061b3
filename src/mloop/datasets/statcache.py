"""The stat cache: file identity (device, inode, size, mtime) -> content digest, so unchanged files are not
re-read. It is a small SQLite file in the workspace's local folder (``.mloop/statcache.db``), keyed by file
identity rather than path, so it belongs to the workspace: a copied workspace, or the same data reached through
another path, does not re-hash anything. A cache miss only costs a re-hash; a damaged cache file is rebuilt.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["StatCache", "StatKey", "stat_key"]

StatKey = tuple[int, int, int, int]  # device, inode, size, mtime_ns
_CHUNK = 500


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class StatCache:
    """Open with a path; use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path, *, algorithm: str = "blake3") -> None:
        self.path = path
        self.algorithm = algorithm
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError:  # a damaged cache is only a cache
            path.unlink(missing_ok=True)
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS stat_cache (dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, "
            "algorithm TEXT, digest TEXT NOT NULL, PRIMARY KEY (dev, ino, size, mtime_ns, algorithm)) WITHOUT ROWID"
        )
        return conn

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        """Digests of the keys the cache knows."""
        found: dict[StatKey, str] = {}
        inodes = sorted({k[1] for k in keys})
        wanted = set(keys)
        for i in range(0, len(inodes), _CHUNK):
            part = inodes[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                f"SELECT dev, ino, size, mtime_ns, digest FROM stat_cache WHERE algorithm = ? AND ino IN ({marks})",
                [self.algorithm, *part],
            )
            for dev, ino, size, mtime_ns, digest in rows:
                key = (dev, ino, size, mtime_ns)
                if key in wanted:
                    found[key] = digest
        return found

    def store(self, items: Iterable[tuple[StatKey, str]]) -> None:
        rows = [(*key, self.algorithm, digest) for key, digest in items]
        if not rows:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany("INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
