"""Digest strings and hashing helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.artifacts import (
    CHUNK_SIZE,
    SUPPORTED_ALGORITHMS,
    hash_bytes,
    hash_file,
    open_artifact_store,
    parse_digest,
)
from mloop.errors import InvalidInput


def test_hash_file_matches_reference_implementations(tmp_path: Path) -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 256 + 999)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert hash_file(path) == "blake3:" + blake3.blake3(data).hexdigest()
    assert hash_file(path, "sha256") == "sha256:" + hashlib.sha256(data).hexdigest()
    assert hash_bytes(data) == hash_file(path)
    assert hash_bytes(data, "sha256") == hash_file(str(path), algorithm="sha256")


def test_empty_input() -> None:
    assert hash_bytes(b"") == "blake3:" + blake3.blake3(b"").hexdigest()


@given(st.binary(max_size=5000), st.sampled_from(SUPPORTED_ALGORITHMS))
def test_parse_digest_roundtrip(data: bytes, algorithm: str) -> None:
    digest = hash_bytes(data, algorithm)
    parsed = parse_digest(digest)
    assert parsed[0] == algorithm
    assert f"{parsed[0]}:{parsed[1]}" == digest
    assert parse_digest(digest.upper()) == parsed


@given(st.text(max_size=80))
def test_parse_digest_never_crashes(text: str) -> None:
    try:
        algorithm, hexdigest = parse_digest(text)
    except InvalidInput:
        return
    assert algorithm in SUPPORTED_ALGORITHMS
    assert len(hexdigest) == 64
    assert set(hexdigest) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not a digest"),
        ("blake3", "not a digest"),
        ("blake3:" + "0" * 64 + "\n", "not a digest"),
        (" blake3:" + "0" * 64, "not a digest"),
        ("blake3:" + "g" * 64, "not a digest"),
        ("blake3:" + "0" * 63, "63 hex digits"),
        ("md5:" + "0" * 32, "supported algorithms are 'blake3', 'sha256'"),
    ],
)
def test_parse_digest_rejects(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_digest(text)


def test_parse_digest_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        parse_digest(b"blake3:00")  # type: ignore[arg-type]


def test_unknown_algorithm_names_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="'blake3', 'sha256'"):
        open_artifact_store(str(tmp_path), algorithm="md5")
    with pytest.raises(InvalidInput, match="'blake3', 'sha256'"):
        hash_bytes(b"x", "sha1")
