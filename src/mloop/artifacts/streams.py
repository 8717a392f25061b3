"""Streams: chunked reading into a reused buffer, and a reader that verifies a digest at end of file.

Every transfer moves fixed-size chunks through one preallocated buffer, so memory stays constant whatever the
file size, and every byte is read once: it is hashed and written in the same pass.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, Any, Protocol

from mloop.artifacts.digest import CHUNK_SIZE, format_digest, new_hasher, parse_digest
from mloop.errors import IntegrityError, InvalidInput

__all__ = ["ReadableStream", "VerifyingReader", "integrity_error", "iter_chunks"]


class ReadableStream(Protocol):
    """Anything with a binary ``read(size)``: files, sockets' makefile(), HTTP response bodies, …"""

    def read(self, size: int = ..., /) -> bytes: ...


def iter_chunks(source: ReadableStream, buffer: bytearray) -> Iterator[memoryview]:
    """Yield successive chunks of ``source`` as views into ``buffer`` until end of file.

    A view is valid only until the next chunk is requested. ``source`` may offer ``readinto`` (files) or only
    ``read`` (any binary stream).
    """
    view = memoryview(buffer)
    readinto = getattr(source, "readinto", None)
    if readinto is not None:
        while True:
            count = readinto(buffer)
            if count is None:
                raise InvalidInput(
                    f"The stream {source!r} is non-blocking and had no data ready; pass a blocking stream."
                )
            if not count:
                return
            yield view[:count]
    while True:
        data = source.read(len(buffer))
        if not data:
            return
        count = len(data)
        view[:count] = data
        yield view[:count]


def integrity_error(digest: str, actual: str, *, uri: str, name: str | None = None) -> IntegrityError:
    """Build the :class:`IntegrityError` for a blob whose bytes hash to ``actual`` instead of ``digest``."""
    what = f"Artifact {name!r} (blob {digest})" if name else f"Blob {digest}"
    return IntegrityError(
        f"{what} in artifact store {uri!r} is corrupt: its stored bytes hash to {actual}. "
        "Run `mloop gc --verify` to remove damaged blobs, then re-log the artifact from its source to store a "
        "good copy."
    )


class VerifyingReader(io.RawIOBase):
    """A sequential reader over a blob that checks the digest when the end of the data is reached.

    Reading to end of file raises :class:`IntegrityError` when the bytes do not hash to ``digest``. A caller
    that stops early has not had the bytes it read verified. The reader does not seek.
    """

    def __init__(self, raw: IO[bytes] | Any, digest: str, *, uri: str, name: str | None = None) -> None:
        super().__init__()
        algorithm, hexdigest = parse_digest(digest)
        self._raw = raw
        self._digest = format_digest(algorithm, hexdigest)
        self._algorithm = algorithm
        self._hasher = new_hasher(algorithm)
        self._uri = uri
        self._name = name
        self._verified = False
        self._bytes_read = 0

    @property
    def bytes_read(self) -> int:
        """How many bytes were read so far."""
        return self._bytes_read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:
            count = readinto(view) or 0
        else:
            data = self._raw.read(len(view))
            count = len(data)
            view[:count] = data
        if count:
            self._hasher.update(view[:count])
            self._bytes_read += count
        elif len(view):
            self._verify()
        return count

    def readall(self) -> bytes:
        chunks = io.BytesIO()
        buffer = bytearray(CHUNK_SIZE)
        while True:
            count = self.readinto(buffer)
            if not count:
                return chunks.getvalue()
            chunks.write(memoryview(buffer)[:count])

    def _verify(self) -> None:
        if self._verified:
            return
        actual = format_digest(self._algorithm, self._hasher.hexdigest())
        if actual != self._digest:
            raise integrity_error(self._digest, actual, uri=self._uri, name=self._name)
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()
