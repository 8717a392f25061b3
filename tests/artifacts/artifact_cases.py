"""Store cases for the artifact tests: a store plus raw access to the bytes behind it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.artifacts import ArtifactStore, open_artifact_store
from mloop.artifacts.paths import blob_key

BUCKET = "mloop-test"


@dataclass
class StoreCase:
    """A store under test plus raw access to its storage, to corrupt blobs and plant stale uploads."""

    kind: str
    uri: str
    storage_options: dict[str, Any] | None
    store: ArtifactStore
    read_raw: Callable[[str], bytes]
    write_raw: Callable[[str, bytes], None]

    def reopen(self, algorithm: str = "blake3") -> ArtifactStore:
        return open_artifact_store(self.uri, algorithm=algorithm, storage_options=self.storage_options)

    def corrupt(self, digest: str) -> None:
        """Flip one byte of the stored blob (the middle one)."""
        key = blob_key(digest)
        data = bytearray(self.read_raw(key))
        data[len(data) // 2] ^= 0xFF
        self.write_raw(key, bytes(data))


def s3_options(endpoint: str) -> dict[str, Any]:
    return {
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "key": "testing",
        "secret": "testing",
    }


def local_store_case(root: Path) -> StoreCase:
    def read_raw(key: str) -> bytes:
        return (root / key).read_bytes()

    def write_raw(key: str, data: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_bytes(data)

    uri = str(root)
    return StoreCase("local", uri, None, open_artifact_store(uri), read_raw, write_raw)


def s3_store_case(endpoint: str) -> StoreCase:
    import fsspec

    options = s3_options(endpoint)
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    fs = fsspec.filesystem("s3", **options)

    def read_raw(key: str) -> bytes:
        data: bytes = fs.cat_file(f"{prefix}/{key}")
        return data

    def write_raw(key: str, data: bytes) -> None:
        fs.pipe_file(f"{prefix}/{key}", data)

    uri = f"s3://{prefix}"
    return StoreCase("s3", uri, options, open_artifact_store(uri, storage_options=options), read_raw, write_raw)
