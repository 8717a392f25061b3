"""Content-addressed artifact storage over a local folder or any fsspec URL (S3-compatible via s3fs).

>>> store = open_artifact_store("/tmp/mloop-artifacts")          # doctest: +SKIP
>>> blob = store.put_file("model.pkl")                           # doctest: +SKIP
>>> store.get_file(blob.digest, "restored.pkl", name="model.pkl")  # verified  # doctest: +SKIP

See ``docs/artifacts.md`` for the layout, atomicity and integrity guarantees.
"""

from __future__ import annotations

from mloop.artifacts.digest import (
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    SUPPORTED_ALGORITHMS,
    hash_bytes,
    hash_file,
    parse_digest,
)
from mloop.artifacts.paths import normalize_artifact_path
from mloop.artifacts.store import ArtifactStore, Blob, BlobInfo, Progress, open_artifact_store

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_ALGORITHM",
    "SUPPORTED_ALGORITHMS",
    "ArtifactStore",
    "Blob",
    "BlobInfo",
    "Progress",
    "hash_bytes",
    "hash_file",
    "normalize_artifact_path",
    "open_artifact_store",
    "parse_digest",
]
