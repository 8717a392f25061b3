"""S3 specifics: the URI round-trips and an unreachable endpoint is StoreUnavailable, quickly."""

from __future__ import annotations

import socket
import uuid

import pytest
from artifact_cases import BUCKET, s3_options

from mloop.artifacts import open_artifact_store
from mloop.errors import StoreUnavailable


def test_s3_uri_and_listing(s3_endpoint: str) -> None:
    uri = f"s3://{BUCKET}/{uuid.uuid4().hex}/"
    store = open_artifact_store(uri, storage_options=s3_options(s3_endpoint))
    assert store.uri == uri.rstrip("/")
    blob = store.put_bytes(b"on s3")
    again = open_artifact_store(store.uri, storage_options=s3_options(s3_endpoint))
    assert again.get_bytes(blob.digest) == b"on s3"
    assert [info.digest for info in again.iter_blobs()] == [blob.digest]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_endpoint_is_store_unavailable() -> None:
    options = s3_options(f"http://127.0.0.1:{_closed_port()}")
    options["config_kwargs"] = {"retries": {"max_attempts": 1}, "connect_timeout": 1}
    store = open_artifact_store(f"s3://{BUCKET}/x", storage_options=options)
    with pytest.raises(StoreUnavailable, match="endpoint_url"):
        store.exists("blake3:" + "0" * 64)
    with pytest.raises(StoreUnavailable, match=r"s3://mloop-test/x"):
        store.put_bytes(b"data")
    with pytest.raises(StoreUnavailable):
        list(store.iter_blobs())
