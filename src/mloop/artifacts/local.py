"""Local backend: a folder on a local disk, driven with plain ``os`` calls for speed.

Uploads are written to ``<root>/tmp/<random>.part``, flushed with ``fsync``, made read-only and published
with ``os.replace`` (atomic on POSIX and Windows), then the blob's folder is fsynced so the new name survives
a power cut. A process killed at any point leaves at most a ``.part`` file under ``tmp/``, never a partial
blob.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mloop.artifacts.backend import StoredObject
from mloop.artifacts.paths import TMP_DIR
from mloop.errors import Conflict

__all__ = ["LocalBackend", "LocalUpload"]

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries to disk (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalUpload:
    """A temporary file under ``<root>/tmp/`` written through a raw file descriptor."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.durable = durable
        folder = root / TMP_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self._root = root
        self.path = folder / f"{uuid.uuid4().hex}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
        self._fd: int | None = os.open(self.path, flags, 0o644)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise Conflict(f"Upload {self.path} is already finished (published or aborted); start a new upload.")
        return self._fd

    def write(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._require_fd()
        view = memoryview(data).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def publish(self, key: str) -> bool:
        fd = self._require_fd()
        if self.durable:
            os.fsync(fd)
        os.close(fd)
        self._fd = None
        final = self._root / key
        if final.exists():
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                os.utime(final)  # freshen: gc's grace period must protect a blob being re-referenced
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, _READ_ONLY)
        os.replace(self.path, final)
        if self.durable:
            _fsync_dir(final.parent)
        return True

    def abort(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)


class LocalBackend:
    """Blobs in a local folder."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def uri(self) -> str:
        return str(self._root)

    @property
    def root(self) -> Path:
        """The store's root folder."""
        return self._root

    def new_upload(self, *, durable: bool = True) -> LocalUpload:
        return LocalUpload(self._root, durable=durable)

    def open_read(self, key: str) -> IO[bytes]:
        return open(self._root / key, "rb", buffering=0)

    def exists(self, key: str) -> bool:
        return (self._root / key).is_file()

    def freshen(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self._root / key)

    def size(self, key: str) -> int:
        return (self._root / key).stat().st_size

    def delete(self, key: str) -> int:
        path = self._root / key
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def list(self, prefix: str) -> Iterator[StoredObject]:
        base = self._root / prefix
        for folder, _dirs, files in os.walk(base):
            rel_folder = Path(folder).relative_to(self._root).as_posix()
            for file_name in files:
                try:
                    info = os.stat(os.path.join(folder, file_name))
                except FileNotFoundError:
                    continue
                yield StoredObject(f"{rel_folder}/{file_name}", info.st_size, info.st_mtime)
