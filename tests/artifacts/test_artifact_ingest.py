"""The ingest fast path (dataset snapshots): small, large, cloned, linked, torn blobs, on both backends."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from artifact_cases import StoreCase, local_store_case

from mloop.artifacts import hash_bytes
from mloop.artifacts.ingest import SMALL_FILE, LocalIngest
from mloop.artifacts.paths import blob_key
from mloop.errors import IntegrityError, InvalidInput, NotFound


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


SIZES = [0, 1, 4096, SMALL_FILE, SMALL_FILE + 1, 3 * SMALL_FILE + 17, 9 * 1024 * 1024 + 5]


@pytest.mark.parametrize("size", SIZES)
def test_ingest_stores_exact_bytes_on_every_backend(case: StoreCase, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = _write(tmp_path / "src" / "f.bin", data)
    seen: list[int] = []
    ingest = case.store.ingest()
    digest, stored = ingest.add(src, seen.append)
    assert ingest.method in (("uploaded",) if case.kind == "s3" else ("copied", "cloned"))
    assert (digest, stored) == (hash_bytes(data), size)
    assert sum(seen) == size
    assert case.store.get_bytes(digest) == data


def test_copy_is_independent_of_the_source(local_case: StoreCase, tmp_path: Path) -> None:
    """Whether the file system clones or copies, editing the source later leaves the blob as it was."""
    big = os.urandom(2 * SMALL_FILE + 3)
    src = _write(tmp_path / "big.bin", big)
    ingest = local_case.store.ingest()
    digest, _ = ingest.add(src)
    assert ingest.clones in (True, False)  # tried once: True on Btrfs/XFS, False on ext4/tmpfs
    assert ingest.method == ("cloned" if ingest.clones else "copied")
    with open(src, "r+b") as handle:  # an in-place edit of the source
        handle.write(b"\0" * 100)
    assert local_case.store.get_bytes(digest) == big
    blob = Path(local_case.uri) / blob_key(digest)
    assert os.stat(blob).st_ino != os.stat(src).st_ino
    assert not os.stat(blob).st_mode & stat.S_IWUSR  # blobs are read-only


def test_existing_blob_is_not_rewritten_but_freshened(local_case: StoreCase, tmp_path: Path) -> None:
    for size in (100, 2 * SMALL_FILE):
        data = os.urandom(size)
        first = _write(tmp_path / f"a{size}", data)
        second = _write(tmp_path / f"b{size}", data)
        digest, _ = local_case.store.ingest().add(first)
        blob = Path(local_case.uri) / blob_key(digest)
        os.utime(blob, (1_000_000, 1_000_000))
        inode = os.stat(blob).st_ino
        assert local_case.store.ingest().add(second)[0] == digest
        assert os.stat(blob).st_mtime > 1_000_000  # gc's grace period now protects it
        if size <= SMALL_FILE:
            assert os.stat(blob).st_ino == inode  # a small file found in the store is not written again


@pytest.mark.parametrize("size", [100, 2 * SMALL_FILE])
def test_torn_blob_is_replaced(local_case: StoreCase, tmp_path: Path, size: int) -> None:
    """A blob left empty by a power cut (right name, wrong size) is stored again by the next add."""
    data = os.urandom(size)
    src = _write(tmp_path / "f.bin", data)
    digest, _ = local_case.store.ingest().add(src)
    local_case.write_raw(blob_key(digest), b"")
    assert local_case.store.ingest().add(src)[0] == digest
    assert local_case.store.get_bytes(digest) == data


def test_durable_ingest_and_no_temporary_leftovers(local_case: StoreCase, tmp_path: Path) -> None:
    files = [_write(tmp_path / f"f{i}", os.urandom(n)) for i, n in enumerate((10, SMALL_FILE + 10))]
    ingest = local_case.store.ingest(durable=True)
    digests = [ingest.add(f)[0] for f in files]
    assert [local_case.store.get_bytes(d) for d in digests] == [f.read_bytes() for f in files]
    assert list((Path(local_case.uri) / "tmp").iterdir()) == []


def test_link_mode_shares_the_inode_and_protects_the_source(local_case: StoreCase, tmp_path: Path) -> None:
    data = os.urandom(SMALL_FILE + 1)
    src = _write(tmp_path / "f.bin", data)
    ingest = local_case.store.ingest(link=True)
    digest, _ = ingest.add(src)
    assert ingest.method == "linked"
    blob = Path(local_case.uri) / blob_key(digest)
    assert os.stat(blob).st_ino == os.stat(src).st_ino
    assert not os.stat(src).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert local_case.store.get_bytes(digest) == data


class _RewrittenWhileHashed(LocalIngest):
    """An ingest whose source is rewritten in place (same size, new bytes) right after it was hashed."""

    def _hash(self, fd: int, progress: Any) -> tuple[str, int]:
        result = super()._hash(fd, progress)
        if not getattr(self, "rewritten", False):
            self.rewritten = True
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            size = path.stat().st_size
            path.chmod(0o644)
            with open(path, "r+b") as handle:
                handle.write(b"\xff" * size)
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        return result


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to find the open file")
def test_link_mode_notices_a_rewrite_while_hashing(local_case: StoreCase, tmp_path: Path) -> None:
    """Hash, then link: if the file was rewritten in between, the link would store other bytes under that
    digest. The ingest notices (size, mtime), copies what is there now instead, and names it by those bytes."""
    src = _write(tmp_path / "f.bin", os.urandom(SMALL_FILE + 10))
    ingest = _RewrittenWhileHashed(Path(local_case.uri), "blake3", link=True)
    digest, size = ingest.add(src)
    now = src.read_bytes()
    assert digest == hash_bytes(now) and size == len(now)
    assert local_case.store.get_bytes(digest) == now
    assert os.stat(Path(local_case.uri) / blob_key(digest)).st_ino != os.stat(src).st_ino  # copied, not linked


def test_get_file_of_a_large_blob_is_verified_whatever_the_path(local_case: StoreCase, tmp_path: Path) -> None:
    """get_file clones large local blobs where it can (after verifying them), else copies; either way a corrupt
    blob is refused and leaves no file behind."""
    data = os.urandom(2 * SMALL_FILE + 1)
    digest = local_case.store.put_bytes(data).digest
    assert local_case.store.get_file(digest, tmp_path / "out" / "a.bin").read_bytes() == data
    local_case.corrupt(digest)
    with pytest.raises(IntegrityError):
        local_case.store.get_file(digest, tmp_path / "out" / "b.bin")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin"]


def test_unreadable_source_names_the_file(local_case: StoreCase, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="ghost"):
        local_case.store.ingest().add(tmp_path / "ghost.bin")
    with pytest.raises(InvalidInput, match="folder"):
        local_case.store.ingest().add(tmp_path)


REFLINK_DIR = os.environ.get("MLOOP_TEST_REFLINK_DIR")


@pytest.mark.skipif(not REFLINK_DIR, reason="set MLOOP_TEST_REFLINK_DIR to a folder on Btrfs or XFS (reflink=1)")
def test_clone_on_a_reflink_file_system() -> None:
    """On Btrfs/XFS large files are cloned (shared extents), and the clone is still an independent file."""
    assert REFLINK_DIR is not None
    base = Path(REFLINK_DIR) / f"mloop-ingest-{os.getpid()}"
    try:
        store_case = local_store_case(base / "store")
        store = store_case.store
        data = os.urandom(4 * SMALL_FILE)
        src = _write(base / "src.bin", data)
        ingest = store.ingest()
        assert isinstance(ingest, LocalIngest)
        digest, _ = ingest.add(src)
        assert ingest.clones is True and ingest.method == "cloned"
        with open(src, "r+b") as handle:
            handle.write(b"\0" * 10)
        assert store.get_bytes(digest) == data
        rewritten = _RewrittenWhileHashed(Path(store.uri), "blake3")  # clone after a rewrite: named by its bytes
        src2 = _write(base / "src2.bin", os.urandom(4 * SMALL_FILE))
        digest2, _ = rewritten.add(src2)
        assert digest2 == hash_bytes(src2.read_bytes()) and rewritten.clones is True
        assert store.get_bytes(digest2) == src2.read_bytes()
        out = store.get_file(digest2, base / "out.bin")  # cloned out of the store, verified first
        assert out.read_bytes() == src2.read_bytes() and store._clones is True
        store_case.corrupt(digest2)
        with pytest.raises(IntegrityError):
            store.get_file(digest2, base / "bad.bin")
        assert not (base / "bad.bin").exists()
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
