"""Remote backend: any fsspec file system (S3 and S3-compatible stores via s3fs, GCS, Azure, …).

Uploads stream to a temporary key ``<root>/tmp/<random>.part`` (multipart for large files on S3), which is
moved (server-side copy, then delete) to the blob key once the digest is known. Object stores have no
partial objects: a killed upload leaves either nothing or a whole temporary key, never a visible partial blob.
Errors from the backend's client library are raised as :class:`~mloop.errors.StoreUnavailable` or
:class:`~mloop.errors.AccessDenied` naming the store and the fix.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any, Final

from fsspec import AbstractFileSystem
from fsspec.spec import AbstractBufferedFile

from mloop.artifacts.backend import StoredObject
from mloop.artifacts.paths import TMP_DIR
from mloop.errors import AccessDenied, Conflict, StoreUnavailable

__all__ = ["FsspecBackend", "FsspecUpload", "backend_errors"]

_CLIENT_LIBRARIES: Final = frozenset(
    {"botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs", "azure", "google", "requests", "urllib3"}
)
_MODIFIED_FIELDS: Final = ("LastModified", "mtime", "last_modified", "updated", "modified", "created")


@contextlib.contextmanager
def backend_errors(uri: str) -> Iterator[None]:
    """Translate client-library failures into mloop errors; :class:`FileNotFoundError` passes through."""
    try:
        yield
    except FileNotFoundError:
        raise
    except PermissionError as exc:
        raise AccessDenied(
            f"The artifact store {uri!r} refused access: {exc}. Check the credentials and permissions "
            "(storage_options 'key'/'secret', AWS_PROFILE, or the bucket policy)."
        ) from exc
    except Exception as exc:
        library = type(exc).__module__.split(".", 1)[0]
        if isinstance(exc, OSError | ConnectionError | TimeoutError) or library in _CLIENT_LIBRARIES:
            raise StoreUnavailable(
                f"The artifact store {uri!r} cannot be reached or failed: {type(exc).__name__}: {exc}. "
                "Check the URI, the endpoint_url in storage options, and that the service is running."
            ) from exc
        raise


def _modified(info: dict[str, Any]) -> float:
    for field in _MODIFIED_FIELDS:
        value = info.get(field)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value).timestamp()
    return 0.0


class FsspecUpload:
    """A temporary object under ``<root>/tmp/`` written through an fsspec file."""

    def __init__(self, backend: FsspecBackend) -> None:
        self._backend = backend
        self.path = backend.path(f"{TMP_DIR}/{uuid.uuid4().hex}.part")
        with backend_errors(backend.uri):
            self._file: IO[bytes] | None = backend.fs.open(self.path, "wb")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            raise Conflict(f"Upload {self.path} is already finished (published or aborted); start a new upload.")
        with backend_errors(self._backend.uri):
            # a copy: the caller reuses its buffer, and some file systems keep what they are given
            self._file.write(bytes(data))

    def publish(self, key: str) -> bool:
        if self._file is None:
            raise Conflict(f"Upload {self.path} is already finished (published or aborted); start a new upload.")
        fs = self._backend.fs
        final = self._backend.path(key)
        with backend_errors(self._backend.uri):
            self._file.close()
            self._file = None
            if self._backend.exists(key):
                fs.rm_file(self.path)
                return False
            parent = final.rsplit("/", 1)[0]
            with contextlib.suppress(OSError):
                fs.makedirs(parent, exist_ok=True)
            fs.mv(self.path, final)
            return True

    def abort(self) -> None:
        handle, self._file = self._file, None
        with contextlib.suppress(Exception):
            if isinstance(handle, AbstractBufferedFile):
                handle.discard()  # aborts an S3 multipart upload instead of completing it
                handle.closed = True
            elif handle is not None:
                handle.close()
        with contextlib.suppress(Exception):
            self._backend.fs.rm_file(self.path)


class FsspecBackend:
    """Blobs under a root path of an fsspec file system."""

    def __init__(self, fs: AbstractFileSystem, root: str, uri: str) -> None:
        self.fs = fs
        self._root = root.rstrip("/")
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    def path(self, key: str) -> str:
        """The file system path of a store-relative ``key``."""
        return f"{self._root}/{key}" if self._root else key

    def new_upload(self, *, durable: bool = True) -> FsspecUpload:
        return FsspecUpload(self)

    def open_read(self, key: str) -> IO[bytes]:
        path = self.path(key)
        with backend_errors(self._uri):
            self.fs.invalidate_cache(path)
            handle: IO[bytes] = self.fs.open(path, "rb", cache_type="none")
            return handle

    def freshen(self, key: str) -> None:
        """Object stores keep an object's time until it is rewritten; nothing to do."""

    def exists(self, key: str) -> bool:
        path = self.path(key)
        with backend_errors(self._uri):
            self.fs.invalidate_cache(path)
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return False
            return bool(info.get("type", "file") == "file")

    def size(self, key: str) -> int:
        path = self.path(key)
        with backend_errors(self._uri):
            self.fs.invalidate_cache(path)
            return int(self.fs.info(path)["size"])

    def delete(self, key: str) -> int:
        try:
            size = self.size(key)
            with backend_errors(self._uri):
                self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            return 0
        return size

    def list(self, prefix: str) -> Iterator[StoredObject]:
        base = self.path(prefix)
        with backend_errors(self._uri):
            self.fs.invalidate_cache(base)
            try:
                found: dict[str, dict[str, Any]] = self.fs.find(base, detail=True)
            except FileNotFoundError:
                return
        lead = f"{self._root}/" if self._root else ""
        for path, info in found.items():
            if info.get("type", "file") != "file" or not path.startswith(lead):
                continue
            yield StoredObject(path[len(lead) :], int(info.get("size") or 0), _modified(info))
