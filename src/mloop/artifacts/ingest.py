"""Ingest: storing many local files into a local store as fast as the disk allows.

:meth:`ArtifactStore.ingest` returns one of these for a batch of files (a dataset snapshot). Each file is
opened once and, whatever the path taken, every blob is published atomically (temporary file, then
``os.replace``), so a process killed at any point leaves no partial blob.

- **Small files** (up to :data:`SMALL_FILE`) are read whole, hashed, and written only when the store does not
  have them yet: a re-added tree costs one read per file and no write.
- **Large files** are cloned where the file system shares extents (``FICLONE``: Btrfs, XFS with reflink,
  bcachefs): the copy costs no data I/O and is still an independent file. Elsewhere (ext4, tmpfs, another file
  system) they are copied while being hashed, so each byte is read once.
- **Link mode** hard-links the source into the store and makes it read-only (one read, no write); see
  :meth:`ArtifactStore.link_file`.

``durable=False`` (the default, like git and DVC) leaves flushing to the operating system: a killed process
loses nothing, a power cut may tear a recent blob, which then fails its digest check on read and is stored
again by the next add (blobs are checked by size before being reused). ``durable=True`` flushes every new
blob and its folder before returning, for power-cut durability at the disk's write speed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from mloop.artifacts.digest import format_digest, new_hasher
from mloop.artifacts.paths import TMP_DIR, blob_key
from mloop.errors import InvalidInput, NotFound

__all__ = ["CLONE_UNSUPPORTED", "SMALL_FILE", "Ingest", "LocalIngest", "PutIngest", "clone_file"]

SMALL_FILE: Final = 1024 * 1024
"""Files up to this size are read whole and written only when the store lacks them."""

_BUFFER: Final = 1024 * 1024  # hashing only: small enough to stay in cache between the read and the hash
_COPY_BUFFER: Final = 8 * 1024 * 1024  # copying: large reads and writes, few system calls
_FICLONE: Final = 0x40049409  # Linux: make the destination share the source's extents (copy-on-write)
CLONE_UNSUPPORTED: Final = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
_CREATE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ: Final = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)

Progress = Callable[[int], None]
Identity = tuple[int, int, int, int]
"""(device, inode, size, mtime_ns) of an open file: if it is the same after hashing, the bytes were not rewritten."""


def _identity(info: os.stat_result) -> Identity:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


class Ingest(Protocol):
    """Stores local files one by one; returned by :meth:`ArtifactStore.ingest`."""

    @property
    def method(self) -> str:
        """How large files were stored: ``"copied"``, ``"cloned"``, ``"linked"`` or ``"uploaded"``."""
        ...

    def add(self, path: str | os.PathLike[str], progress: Progress | None = None) -> tuple[str, int]:
        """Store the file at ``path``; return its ``(digest, size)``."""
        ...


class PutIngest:
    """The ingest of a store that is not a local folder: every file is streamed with ``put``."""

    def __init__(self, put: Callable[[str | os.PathLike[str], Progress | None], tuple[str, int]]) -> None:
        self._put = put

    @property
    def method(self) -> str:
        return "uploaded"

    def add(self, path: str | os.PathLike[str], progress: Progress | None = None) -> tuple[str, int]:
        return self._put(path, progress)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalIngest:
    """Store local files into the local store rooted at ``root``; safe to share between threads."""

    def __init__(
        self, root: Path, algorithm: str, *, link: bool = False, durable: bool = False, parallel: bool = True
    ) -> None:
        self._root = root
        self._tmp = root / TMP_DIR
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._algorithm = algorithm
        self.link = link
        self.durable = durable
        self._threaded = None if not parallel else False  # files hashed in parallel: one thread per file
        self._folders: set[Path] = set()
        self._clone: bool | None = None  # unknown until the first large file tries
        self._local = threading.local()

    def __repr__(self) -> str:
        mode = "link" if self.link else "copy"
        return f"LocalIngest({str(self._root)!r}, {mode}, durable={self.durable})"

    @property
    def method(self) -> str:
        """``"linked"``, ``"cloned"`` (large files shared extents with their sources) or ``"copied"``."""
        return "linked" if self.link else "cloned" if self._clone else "copied"

    @property
    def clones(self) -> bool | None:
        """Whether large files were cloned (``None``: no large file was copied yet)."""
        return self._clone

    def add(self, path: str | os.PathLike[str], progress: Progress | None = None) -> tuple[str, int]:
        """Store the file at ``path``; return its ``(digest, size)``."""
        try:
            fd = os.open(path, _READ)
        except FileNotFoundError as exc:
            raise NotFound(f"Cannot store {str(path)!r}: no such file (was it removed?). Check the path.") from exc
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise InvalidInput(f"Cannot store {str(path)!r}: it is a folder. Store the files inside it.")
            size = info.st_size
            before = _identity(info)
            if self.link:
                digest, size = self._link(fd, Path(path), before, progress)
            elif size <= SMALL_FILE:
                digest, size = self._small(fd, progress)
            elif self._clone is not False and (cloned := self._try_clone(fd, before, progress)) is not None:
                digest, size = cloned
            else:
                digest, size = self._copy(fd, progress)
        finally:
            os.close(fd)
        return digest, size

    # -- the paths ------------------------------------------------------------------------------------------

    def _small(self, fd: int, progress: Progress | None) -> tuple[str, int]:
        parts = []
        while chunk := os.read(fd, SMALL_FILE + 1):  # to end of file, even if it grew since fstat
            parts.append(chunk)
        data = b"".join(parts)
        hasher = new_hasher(self._algorithm, size_hint=len(data))
        hasher.update(data)
        digest = format_digest(self._algorithm, hasher.hexdigest())
        if not self._have(digest, len(data)):
            self._publish(digest, lambda out: _write_all(out, memoryview(data)))
        if progress is not None:
            progress(len(data))
        return digest, len(data)

    def _copy(self, fd: int, progress: Progress | None) -> tuple[str, int]:
        buffer = self._buffer(_COPY_BUFFER)
        view = memoryview(buffer)
        hasher = new_hasher(self._algorithm, size_hint=_COPY_BUFFER, threaded=self._threaded)
        temp = self._tmp / f"{uuid.uuid4().hex}.part"
        out = os.open(temp, _CREATE, 0o444)
        total = 0
        try:
            try:
                while count := _readinto(fd, buffer):
                    hasher.update(view[:count])
                    _write_all(out, view[:count])
                    total += count
                    if progress is not None:
                        progress(count)
                if self.durable:
                    _datasync(out)
            finally:
                os.close(out)
            digest = format_digest(self._algorithm, hasher.hexdigest())
            if self._have(digest, total):
                temp.unlink()
            else:
                self._place(temp, digest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return digest, total

    def _try_clone(self, fd: int, before: Identity, progress: Progress | None) -> tuple[str, int] | None:
        digest, size = self._hash(fd, progress)
        if self._have(digest, size):
            return digest, size
        temp = self._tmp / f"{uuid.uuid4().hex}.clone"
        out = os.open(temp, _CREATE, 0o444)
        try:
            try:
                clone_file(out, fd)
                if self.durable:
                    os.fsync(out)
            finally:
                os.close(out)
            self._clone = True
            if _identity(os.fstat(fd)) != before:  # written to while hashed: name the clone by its own bytes
                digest, size = self._hash_file(temp)
                if self._have(digest, size):
                    temp.unlink()
                    return digest, size
            self._place(temp, digest)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            if exc.errno not in CLONE_UNSUPPORTED:
                raise
            self._clone = False  # this file system cannot clone: copy this file and every later one
            os.lseek(fd, 0, os.SEEK_SET)
            return self._copy(fd, None)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return digest, size

    def _link(self, fd: int, source: Path, before: Identity, progress: Progress | None) -> tuple[str, int]:
        digest, size = self._hash(fd, progress)
        if self._have(digest, size):
            return digest, size
        temp = self._tmp / f"{uuid.uuid4().hex}.link"
        try:
            os.link(source, temp)
            linked = os.stat(temp)
        except OSError:  # another file system, or links not allowed: copy instead
            temp.unlink(missing_ok=True)
            os.lseek(fd, 0, os.SEEK_SET)
            return self._copy(fd, None)
        try:
            if (linked.st_dev, linked.st_ino) != before[:2] or _identity(os.fstat(fd)) != before:
                # the path now names another file, or the file was written to while hashed: copy what is there
                temp.unlink()
                os.lseek(fd, 0, os.SEEK_SET)
                return self._copy(fd, None)
            os.chmod(temp, 0o444)  # the shared inode: source and blob both read-only
            self._place(temp, digest)
        finally:
            temp.unlink(missing_ok=True)
        return digest, size

    # -- helpers --------------------------------------------------------------------------------------------

    def _buffer(self, size: int = _BUFFER) -> bytearray:
        """This thread's reusable buffer of ``size`` bytes."""
        buffers: dict[int, bytearray] | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        buffer = buffers.get(size)
        if buffer is None:
            buffer = buffers[size] = bytearray(size)
        return buffer

    def _hash(self, fd: int, progress: Progress | None) -> tuple[str, int]:
        buffer = self._buffer()
        view = memoryview(buffer)
        hasher = new_hasher(self._algorithm, size_hint=_BUFFER, threaded=self._threaded)
        total = 0
        while count := _readinto(fd, buffer):
            hasher.update(view[:count])
            total += count
            if progress is not None:
                progress(count)
        return format_digest(self._algorithm, hasher.hexdigest()), total

    def _hash_file(self, path: Path) -> tuple[str, int]:
        fd = os.open(path, _READ)
        try:
            return self._hash(fd, None)
        finally:
            os.close(fd)

    def _have(self, digest: str, size: int) -> bool:
        """True when the store holds this blob at the right size (a blob torn by a power cut is replaced)."""
        final = self._root / blob_key(digest)
        try:
            if os.stat(final).st_size != size:
                return False
        except OSError:
            return False
        with contextlib.suppress(OSError):
            os.utime(final)  # freshen: gc's grace period must protect a blob being re-referenced
        return True

    def _publish(self, digest: str, write: Callable[[int], None]) -> None:
        temp = self._tmp / f"{uuid.uuid4().hex}.part"
        out = os.open(temp, _CREATE, 0o444)
        try:
            try:
                write(out)
                if self.durable:
                    _datasync(out)
            finally:
                os.close(out)
            self._place(temp, digest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _place(self, temp: Path, digest: str) -> None:
        final = self._root / blob_key(digest)
        folder = final.parent
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        os.replace(temp, final)
        if self.durable:
            _fsync_dir(folder)


def _readinto(fd: int, buffer: bytearray) -> int:
    """Read up to ``len(buffer)`` bytes into ``buffer``; 0 at end of file (``os.readv`` where it exists)."""
    if hasattr(os, "readv"):
        return os.readv(fd, [buffer])
    data = os.read(fd, len(buffer))  # Windows
    buffer[: len(data)] = data
    return len(data)


def _datasync(fd: int) -> None:
    """Flush a file's data (``fdatasync`` where it exists, else ``fsync``: macOS, Windows)."""
    getattr(os, "fdatasync", os.fsync)(fd)


def clone_file(out: int, source: int) -> None:
    """Make ``out`` share ``source``'s extents (Linux ``FICLONE``); ``OSError`` where that is impossible."""
    try:
        import fcntl
    except ImportError as exc:  # Windows
        raise OSError(errno.EOPNOTSUPP, "no reflink support on this platform") from exc
    fcntl.ioctl(out, _FICLONE, source)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]
