"""Backend: the few storage primitives an artifact store needs, implemented for local disks and for fsspec.

Keys are POSIX paths relative to the store's root (``blobs/blake3/ab/cd…``, ``tmp/…``). Backends know nothing
about digests; :class:`~mloop.artifacts.store.ArtifactStore` hashes, names and verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol

__all__ = ["Backend", "StoredObject", "Upload"]


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One stored object as listed by a backend."""

    key: str
    size: int
    modified: float


class Upload(Protocol):
    """A temporary object being written; invisible until :meth:`publish` moves it to its final key."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the temporary object."""
        ...

    def publish(self, key: str) -> bool:
        """Make the written bytes visible at ``key`` atomically and remove the temporary object.

        Returns ``False`` (and discards the temporary object) when ``key`` already exists: content addressing
        means the existing object holds the same bytes.
        """
        ...

    def abort(self) -> None:
        """Discard the temporary object; safe to call after a failed :meth:`publish` or twice."""
        ...


class Backend(Protocol):
    """Storage primitives under one root."""

    @property
    def uri(self) -> str:
        """Where the root is, for messages and for re-opening the store."""
        ...

    def new_upload(self, *, durable: bool = True) -> Upload:
        """Start a temporary object under ``tmp/``."""
        ...

    def open_read(self, key: str) -> IO[bytes]:
        """Open ``key`` for sequential binary reading; raise :class:`FileNotFoundError` when absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def freshen(self, key: str) -> None:
        """Mark ``key`` as just used (a deduplicated put), so ``mloop gc``'s grace period protects it.

        Object stores cannot change an object's time without rewriting it; there this does nothing.
        """
        ...

    def size(self, key: str) -> int:
        """Size in bytes of ``key``; raise :class:`FileNotFoundError` when absent."""
        ...

    def delete(self, key: str) -> int:
        """Remove ``key``; return the bytes freed, 0 when it was absent."""
        ...

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Yield every object whose key starts with ``prefix + '/'``, in no particular order."""
        ...
