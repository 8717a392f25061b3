"""Store: the content-addressed artifact store, over a local folder or any fsspec URL.

A blob is named by the digest of its bytes and stored once, at ``<root>/blobs/<algorithm>/<2 hex>/<rest>``.
Writes stream through a temporary object under ``<root>/tmp/`` while hashing (each byte read once, constant
memory) and are published atomically; reads verify the digest when they reach the end of the data.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from mloop.artifacts.backend import Backend
from mloop.artifacts.digest import (
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    check_algorithm,
    format_digest,
    hash_bytes,
    new_hasher,
)
from mloop.artifacts.ingest import CLONE_UNSUPPORTED, SMALL_FILE, Ingest, LocalIngest, PutIngest, clone_file
from mloop.artifacts.local import LocalBackend
from mloop.artifacts.paths import BLOBS_DIR, TMP_DIR, blob_key, digest_from_key
from mloop.artifacts.streams import ReadableStream, VerifyingReader, iter_chunks
from mloop.errors import InvalidInput, NotFound, StoreUnavailable

__all__ = ["ArtifactStore", "Blob", "BlobInfo", "Progress", "open_artifact_store"]

Progress = Callable[[int], None]
"""Called after each chunk with the number of bytes just transferred (like ``tqdm.update``)."""


class ReadGuard(Protocol):
    """Asked before blobs are served; raises to refuse one."""

    def __call__(self, digest: str, name: str | None) -> None: ...

    def check_many(self, digests: Sequence[str], *, name: str | None = None) -> None:
        """Check a batch at once (before reading many blobs); raise if any is refused."""
        ...


_READ_BUFFER = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored blob: its digest string and its size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A blob as listed by :meth:`ArtifactStore.iter_blobs`; ``modified`` is in epoch seconds."""

    digest: str
    size: int
    modified: float


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


class ArtifactStore:
    """Content-addressed blobs under one root; build it with :func:`open_artifact_store`.

    ``algorithm`` is used for new blobs; blobs of any supported algorithm can be read, since every digest
    names its algorithm. ``read_guard(digest, name)``, when set, is called before any blob is served and may
    raise (the workspace installs :class:`mloop.guard.BlobReadGuard` there to keep private holdouts private).
    """

    def __init__(
        self, backend: Backend, *, algorithm: str = DEFAULT_ALGORITHM, read_guard: ReadGuard | None = None
    ) -> None:
        self._backend = backend
        self._algorithm = check_algorithm(algorithm)
        self._clones: bool | None = None  # whether get_file can clone out of this (local) store; None: untried
        self.read_guard = read_guard

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r}, algorithm={self._algorithm!r})"

    @property
    def uri(self) -> str:
        """The store's root: an absolute local path, or the URL it was opened with."""
        return self._backend.uri

    @property
    def algorithm(self) -> str:
        """The digest algorithm of new blobs."""
        return self._algorithm

    # -- writing -------------------------------------------------------------------------------------------

    def put_file(self, path: str | os.PathLike[str], *, progress: Progress | None = None, durable: bool = True) -> Blob:
        """Store the file at ``path``; ``progress`` is called with the byte count of each chunk.

        ``durable=False`` skips the flush to disk (the blob is still published atomically, so a killed process
        leaves nothing half-written; the operating system writes it back within seconds).
        """
        source = Path(path)
        try:
            handle = open(source, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise NotFound(f"Cannot store {str(source)!r}: no such file. Check the path.") from exc
        except IsADirectoryError as exc:
            raise InvalidInput(
                f"Cannot store {str(source)!r}: it is a folder. Store the files inside it one by one."
            ) from exc
        with handle:
            size_hint = os.fstat(handle.fileno()).st_size
            return self._put_chunks(iter_chunks(handle, bytearray(CHUNK_SIZE)), size_hint, progress, durable)

    def ingest(self, *, link: bool = False, durable: bool = False, parallel: bool = True) -> Ingest:
        """A fast path for storing many local files (a dataset snapshot); see :mod:`mloop.artifacts.ingest`.

        On a local store, small files are written only when missing, large ones are cloned where the file system
        can (Btrfs, XFS) or copied while hashed. ``link=True`` hard-links files into the store instead and makes
        the sources read-only: from then on the source and the blob are the same bytes on disk, so an in-place
        edit of the source would change the blob too (every read verifies the digest and refuses such a blob).
        ``durable=True`` flushes each new blob to disk before returning. ``parallel=True`` (files are added from
        several threads) hashes each file on one core; ``False`` lets one large file use them all. Object stores
        stream each file with :meth:`put_file` (they acknowledge a write once it is durable).
        """
        root = getattr(self._backend, "root", None)
        if root is not None:
            return LocalIngest(Path(root), self._algorithm, link=link, durable=durable, parallel=parallel)

        def put(path: str | os.PathLike[str], progress: Progress | None) -> tuple[str, int]:
            blob = self.put_file(path, progress=progress)
            return blob.digest, blob.size

        return PutIngest(put)

    def put_bytes(self, data: bytes | bytearray | memoryview) -> Blob:
        """Store ``data``; when a blob with the same digest exists nothing is written."""
        view = memoryview(data).cast("B")
        digest = hash_bytes(view, self._algorithm)
        if self._backend.exists(blob_key(digest)):
            self._backend.freshen(blob_key(digest))
            return Blob(digest, len(view))
        chunks = (view[start : start + CHUNK_SIZE] for start in range(0, len(view), CHUNK_SIZE))
        return self._put_chunks(chunks, len(view), None)

    def put_stream(self, fileobj: ReadableStream, *, progress: Progress | None = None) -> Blob:
        """Store everything read from the binary stream ``fileobj`` (read to its end, not closed)."""
        return self._put_chunks(iter_chunks(fileobj, bytearray(CHUNK_SIZE)), None, progress)

    def _put_chunks(
        self, chunks: Iterable[memoryview], size_hint: int | None, progress: Progress | None, durable: bool = True
    ) -> Blob:
        hasher = new_hasher(self._algorithm, size_hint=size_hint)
        upload = self._backend.new_upload(durable=durable)
        total = 0
        try:
            for chunk in chunks:
                hasher.update(chunk)
                upload.write(chunk)
                total += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            digest = format_digest(self._algorithm, hasher.hexdigest())
            upload.publish(blob_key(digest))
        except BaseException:
            upload.abort()
            raise
        return Blob(digest, total)

    # -- reading -------------------------------------------------------------------------------------------

    def check_reads(self, digests: Sequence[str]) -> None:
        """Ask the read guard about a batch of blobs at once (before reading them one by one)."""
        if self.read_guard is not None:
            self.read_guard.check_many(digests)

    def _not_found(self, digest: str, name: str | None) -> NotFound:
        what = f"Artifact {name!r} (blob {digest})" if name else f"Blob {digest}"
        return NotFound(
            f"{what} is not in the artifact store {self.uri!r}. It was never stored here or was deleted; "
            "re-log the artifact, or check that MLOOP_ARTIFACT_URI points at the right store."
        )

    def _open_raw(self, digest: str, name: str | None) -> VerifyingReader:
        key = blob_key(digest)
        try:
            raw = self._backend.open_read(key)
        except FileNotFoundError as exc:
            raise self._not_found(digest, name) from exc
        return VerifyingReader(raw, digest, uri=self.uri, name=name)

    @contextlib.contextmanager
    def open(self, digest: str, *, name: str | None = None) -> Iterator[BinaryIO]:
        """Open a blob for sequential reading.

        Reading to the end verifies the digest and raises :class:`~mloop.errors.IntegrityError` (naming the
        digest and ``name``) on mismatch; a caller that stops early has not verified what it read.
        """
        if self.read_guard is not None:
            self.read_guard(digest, name)
        reader = io.BufferedReader(self._open_raw(digest, name), buffer_size=_READ_BUFFER)
        with reader:
            yield reader

    def get_bytes(self, digest: str, *, name: str | None = None) -> bytes:
        """Return the verified content of a blob (held in memory: use :meth:`get_file` for big ones)."""
        if self.read_guard is not None:
            self.read_guard(digest, name)
        with self._open_raw(digest, name) as reader:
            return reader.readall()

    def get_file(
        self,
        digest: str,
        dest: str | os.PathLike[str],
        *,
        name: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Write a blob to ``dest``, verified, and return ``dest``.

        The bytes stream to a temporary file in ``dest``'s folder (created if missing), which replaces
        ``dest`` only once the digest matches; on a mismatch or any failure no ``dest`` file is left behind.
        """
        if self.read_guard is not None:
            self.read_guard(digest, name)
        target = Path(dest)
        if target.is_dir():
            raise InvalidInput(
                f"Cannot write blob {digest} to {str(target)!r}: it is a folder. Pass the path of the file "
                f"to create, e.g. {str(target / (name or 'artifact').rsplit('/', 1)[-1])!r}."
            )
        root = getattr(self._backend, "root", None)
        if root is not None and self._clones is not False and self._clone_out(Path(root), digest, target, name):
            return target
        reader = self._open_raw(digest, name)
        with reader:
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.part"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(temp, flags, 0o666)
            try:
                try:
                    for chunk in iter_chunks(reader, bytearray(CHUNK_SIZE)):
                        _write_all(fd, chunk)
                        if progress is not None:
                            progress(len(chunk))
                finally:
                    os.close(fd)
                os.replace(temp, target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return target

    def _clone_out(self, root: Path, digest: str, target: Path, name: str | None) -> bool:
        """Write a large local blob to ``target`` as a verified clone (Btrfs, XFS); False where that is impossible."""
        try:
            src = os.open(root / blob_key(digest), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise self._not_found(digest, name) from exc
        try:
            if os.fstat(src).st_size <= SMALL_FILE:
                return False
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.part"
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                try:
                    clone_file(out, src)  # tried first: where it fails nothing was read yet
                finally:
                    os.close(out)
                with VerifyingReader(os.fdopen(os.dup(src), "rb", buffering=0), digest, uri=self.uri, name=name) as r:
                    while r.read(CHUNK_SIZE):  # the blob is immutable: the bytes verified are the bytes cloned
                        pass
                os.replace(temp, target)
            except OSError as exc:
                temp.unlink(missing_ok=True)
                if exc.errno not in CLONE_UNSUPPORTED:
                    raise
                self._clones = False
                return False
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            self._clones = True
            return True
        finally:
            os.close(src)

    # -- inspecting and removing ---------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        """Whether a blob with ``digest`` is stored."""
        return self._backend.exists(blob_key(digest))

    def size(self, digest: str) -> int:
        """Size in bytes of a stored blob; :class:`~mloop.errors.NotFound` when absent."""
        try:
            return self._backend.size(blob_key(digest))
        except FileNotFoundError as exc:
            raise self._not_found(digest, None) from exc

    def delete(self, digest: str) -> int:
        """Remove a blob; return the bytes freed, 0 when it was absent."""
        return self._backend.delete(blob_key(digest))

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Yield every stored blob, in no particular order (temporary uploads are not blobs)."""
        for stored in self._backend.list(BLOBS_DIR):
            digest = digest_from_key(stored.key)
            if digest is not None:
                yield BlobInfo(digest, stored.size, stored.modified)

    def cleanup_temp(self, older_than_s: float = 3600) -> int:
        """Remove temporary uploads untouched for ``older_than_s`` seconds (abandoned by killed processes).

        Returns the bytes freed. Uploads in progress keep being modified, so the default hour spares them.
        """
        if older_than_s < 0:
            raise InvalidInput(
                f"older_than_s must be zero or more seconds, got {older_than_s!r}. Pass e.g. 3600 for an hour."
            )
        cutoff = time.time() - older_than_s
        freed = 0
        for stored in list(self._backend.list(TMP_DIR)):
            if stored.modified <= cutoff:
                freed += self._backend.delete(stored.key)
        return freed


def _local_path(uri: str) -> str | None:
    """The local path ``uri`` names, or ``None`` when it is a URL of another file system."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" not in uri:
        return uri
    return None


def open_artifact_store(
    uri: str, *, algorithm: str = DEFAULT_ALGORITHM, storage_options: dict[str, Any] | None = None
) -> ArtifactStore:
    """Open the artifact store at ``uri``: a path, ``file://…``, ``s3://bucket/prefix`` or any fsspec URL.

    ``storage_options`` go to the fsspec file system (for S3: ``key``, ``secret``,
    ``client_kwargs={"endpoint_url": …}``, …). Nothing is created until the first blob is stored.
    """
    check_algorithm(algorithm)
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(
            f"Artifact store URI must be a non-empty string, got {uri!r}. "
            "Pass a folder path or a URL such as 's3://bucket/prefix'."
        )
    local = _local_path(uri)
    if local is not None:
        if storage_options:
            raise InvalidInput(
                f"storage_options {sorted(storage_options)} were given for the local artifact store {uri!r}; "
                "they apply only to remote URLs such as 's3://bucket/prefix'. Drop them or use a URL."
            )
        root = Path(local).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise InvalidInput(
                f"Artifact store path {str(root)!r} is a file, not a folder. Point it at a folder (it is "
                "created on first use)."
            )
        return ArtifactStore(LocalBackend(root), algorithm=algorithm)
    import fsspec  # only for remote URLs: local stores never pay for importing it
    from fsspec.implementations.local import LocalFileSystem

    from mloop.artifacts.remote import FsspecBackend

    try:
        fs, root_path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    except ImportError as exc:
        raise StoreUnavailable(
            f"The artifact store {uri!r} needs a package that is not installed: {exc}. "
            "For S3 install it with `pip install 'mloop[s3]'`."
        ) from exc
    except ValueError as exc:
        raise InvalidInput(
            f"Artifact store URI {uri!r} is not understood: {exc}. Use a folder path, "
            "'s3://bucket/prefix' or another fsspec URL."
        ) from exc
    if isinstance(fs, LocalFileSystem):
        return ArtifactStore(LocalBackend(Path(root_path).resolve()), algorithm=algorithm)
    return ArtifactStore(FsspecBackend(fs, root_path, uri.rstrip("/")), algorithm=algorithm)
