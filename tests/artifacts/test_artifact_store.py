"""The artifact store contract, run on a local folder and on a real S3 endpoint."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest
from artifact_cases import StoreCase

from mloop.artifacts import CHUNK_SIZE, Blob, hash_bytes, hash_file, parse_digest
from mloop.errors import IntegrityError, InvalidInput, NotFound

MISSING = "blake3:" + "ab" * 32


class ReadOnlyStream:
    """A binary stream offering only ``read`` (no ``readinto``), like many network bodies."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        out = self._data[self._pos : self._pos + size]
        self._pos += len(out)
        return out


def _payload(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB, varied per seed
    return (block * (size // len(block) + 1))[:size]


def test_put_bytes_roundtrip(case: StoreCase) -> None:
    blob = case.store.put_bytes(b"hello artifacts")
    assert blob == Blob(hash_bytes(b"hello artifacts"), 15)
    algorithm, hexdigest = parse_digest(blob.digest)
    assert algorithm == "blake3"
    assert len(hexdigest) == 64
    assert case.store.exists(blob.digest)
    assert case.store.size(blob.digest) == 15
    assert case.store.get_bytes(blob.digest) == b"hello artifacts"


def test_put_file_roundtrip_across_chunks(case: StoreCase, tmp_path: Path) -> None:
    data = _payload(2 * CHUNK_SIZE + 12345)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    seen: list[int] = []
    blob = case.store.put_file(source, progress=seen.append)
    assert blob.digest == hash_file(source)
    assert blob.size == len(data)
    assert sum(seen) == len(data)
    assert len(seen) == 3
    dest = tmp_path / "out" / "nested" / "model.bin"
    assert case.store.get_file(blob.digest, dest, name="model.bin") == dest
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]


def test_get_file_replaces_an_existing_file(case: StoreCase, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"new content")
    dest = tmp_path / "out.txt"
    dest.write_bytes(b"old content that is longer")
    case.store.get_file(blob.digest, dest)
    assert dest.read_bytes() == b"new content"


@pytest.mark.parametrize("step", [1000, CHUNK_SIZE])
def test_put_stream_roundtrip(case: StoreCase, step: int) -> None:
    data = _payload(CHUNK_SIZE + 777, seed=step)
    blob = case.store.put_stream(ReadOnlyStream(data, step))
    assert blob == Blob(hash_bytes(data), len(data))
    assert case.store.put_stream(io.BytesIO(data)) == blob
    with case.store.open(blob.digest) as reader:
        assert reader.read(10) == data[:10]
        assert reader.read() == data[10:]


def test_empty_blob(case: StoreCase, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"")
    assert blob.size == 0
    assert case.store.get_bytes(blob.digest) == b""
    empty = tmp_path / "empty"
    empty.touch()
    assert case.store.put_file(empty) == blob
    assert case.store.get_file(blob.digest, tmp_path / "copy").read_bytes() == b""


def test_dedup_stores_one_blob(case: StoreCase, tmp_path: Path) -> None:
    data = _payload(300_000, seed=7)
    source = tmp_path / "a.bin"
    source.write_bytes(data)
    first = case.store.put_file(source)
    second = case.store.put_file(source)
    third = case.store.put_bytes(data)
    fourth = case.store.put_stream(io.BytesIO(data))
    assert first == second == third == fourth
    assert [info.digest for info in case.store.iter_blobs()] == [first.digest]
    assert case.store.cleanup_temp(older_than_s=0) == 0, "a deduplicated upload left its temp behind"


def test_sha256_store(case: StoreCase, tmp_path: Path) -> None:
    store = case.reopen(algorithm="sha256")
    assert store.algorithm == "sha256"
    blob = store.put_bytes(b"abc")
    assert blob.digest == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    source = tmp_path / "f"
    source.write_bytes(b"abc" * 1000)
    assert store.put_file(source).digest == hash_file(source, "sha256")
    # a store configured for blake3 still reads sha256 blobs: the digest names its algorithm
    assert case.store.get_bytes(blob.digest) == b"abc"
    assert {parse_digest(i.digest)[0] for i in case.store.iter_blobs()} == {"sha256"}


def test_iter_blobs_and_delete(case: StoreCase) -> None:
    before = time.time()
    blobs = {case.store.put_bytes(f"blob {i}".encode() * (i + 1)) for i in range(3)}
    listed = {info.digest: info for info in case.store.iter_blobs()}
    assert set(listed) == {b.digest for b in blobs}
    for blob in blobs:
        assert listed[blob.digest].size == blob.size
        assert before - 5 <= listed[blob.digest].modified <= time.time() + 5
    gone = next(iter(blobs))
    assert case.store.delete(gone.digest) == gone.size
    assert not case.store.exists(gone.digest)
    assert case.store.delete(gone.digest) == 0
    assert gone.digest not in {info.digest for info in case.store.iter_blobs()}


def test_missing_blob(case: StoreCase, tmp_path: Path) -> None:
    assert not case.store.exists(MISSING)
    assert case.store.delete(MISSING) == 0
    with pytest.raises(NotFound, match=MISSING):
        case.store.get_bytes(MISSING, name="weights.bin")
    with pytest.raises(NotFound, match=r"weights\.bin"):
        case.store.get_file(MISSING, tmp_path / "x", name="weights.bin")
    assert not (tmp_path / "x").exists()
    with pytest.raises(NotFound), case.store.open(MISSING):
        pass
    with pytest.raises(NotFound):
        case.store.size(MISSING)
    assert list(case.store.iter_blobs()) == []


@pytest.mark.parametrize("bad", ["", "blake3", "md5:" + "0" * 32, "blake3:xyz", "blake3:" + "0" * 10])
def test_bad_digests_are_invalid_input(case: StoreCase, bad: str) -> None:
    with pytest.raises(InvalidInput):
        case.store.exists(bad)
    with pytest.raises(InvalidInput):
        case.store.get_bytes(bad)


def test_corrupt_blob_raises_integrity_error(case: StoreCase, tmp_path: Path) -> None:
    data = _payload(CHUNK_SIZE + 5000, seed=3)
    blob = case.store.put_bytes(data)
    case.corrupt(blob.digest)

    with pytest.raises(IntegrityError, match=r"model\.pkl") as excinfo:
        case.store.get_bytes(blob.digest, name="model.pkl")
    message = str(excinfo.value)
    assert blob.digest in message
    assert "mloop gc --verify" in message
    assert "mloop gc" in message

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(IntegrityError, match=blob.digest):
        case.store.get_file(blob.digest, out_dir / "model.pkl", name="model.pkl")
    assert list(out_dir.iterdir()) == [], "a failed download left a file behind"

    with pytest.raises(IntegrityError, match=blob.digest):
        _read_in_pieces(case, blob.digest)


def test_truncated_blob_raises_integrity_error(case: StoreCase) -> None:
    blob = case.store.put_bytes(b"0123456789" * 100)
    case.write_raw(_key(blob.digest), b"0123456789" * 99)
    with pytest.raises(IntegrityError):
        case.store.get_bytes(blob.digest)


def test_cleanup_temp_removes_only_stale_uploads(case: StoreCase) -> None:
    case.write_raw("tmp/abandoned.part", b"x" * 1234)
    assert case.store.cleanup_temp() == 0, "a fresh upload (maybe in progress) must be spared"
    assert case.store.cleanup_temp(older_than_s=0) == 1234
    assert case.store.cleanup_temp(older_than_s=0) == 0
    assert list(case.store.iter_blobs()) == []
    with pytest.raises(InvalidInput, match="older_than_s"):
        case.store.cleanup_temp(older_than_s=-1)


def test_a_failed_put_leaves_nothing(case: StoreCase) -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("source went away")
            return os.urandom(1000)

    with pytest.raises(OSError, match="source went away"):
        case.store.put_stream(Broken())
    assert list(case.store.iter_blobs()) == []
    assert case.store.cleanup_temp(older_than_s=0) == 0


def _read_in_pieces(case: StoreCase, digest: str) -> int:
    total = 0
    with case.store.open(digest) as reader:
        while piece := reader.read(100_000):
            total += len(piece)
    return total


def _key(digest: str) -> str:
    algorithm, hexdigest = parse_digest(digest)
    return f"blobs/{algorithm}/{hexdigest[:2]}/{hexdigest[2:]}"


def test_a_finished_upload_refuses_more_writes(case: StoreCase) -> None:
    from mloop.errors import Conflict

    backend = case.store._backend
    upload = backend.new_upload()
    upload.write(b"bytes")
    upload.abort()
    with pytest.raises(Conflict, match="already finished"):
        upload.write(b"more")
    with pytest.raises(Conflict, match="already finished"):
        upload.publish("blobs/blake3/aa/" + "a" * 64)
