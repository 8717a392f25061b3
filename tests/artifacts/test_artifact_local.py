"""Local-folder specifics: on-disk layout, URI forms, error messages, concurrent writers."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from artifact_cases import StoreCase

from mloop.artifacts import ArtifactStore, open_artifact_store, parse_digest
from mloop.errors import InvalidInput, NotFound


def test_layout_on_disk(local_case: StoreCase, tmp_path: Path) -> None:
    blob = local_case.store.put_bytes(b"layout")
    algorithm, hexdigest = parse_digest(blob.digest)
    path = tmp_path / "store" / "blobs" / algorithm / hexdigest[:2] / hexdigest[2:]
    assert path.read_bytes() == b"layout"
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "blobs are read-only"
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    assert local_case.store.delete(blob.digest) == 6
    assert not path.exists()


def test_uri_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_artifact_store("store")
    assert relative.uri == str(tmp_path / "store")
    blob = relative.put_bytes(b"same root")
    for uri in (f"file://{tmp_path}/store", str(tmp_path / "store") + "/", f"local://{tmp_path}/store"):
        store = open_artifact_store(uri)
        assert store.uri == str(tmp_path / "store")
        assert store.get_bytes(blob.digest) == b"same root"
    assert "store" in repr(relative)


def test_nothing_is_created_until_the_first_put(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "lazy"))
    assert list(store.iter_blobs()) == []
    assert store.cleanup_temp(0) == 0
    assert not (tmp_path / "lazy").exists()


def test_bad_store_uris(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        open_artifact_store(str(a_file))
    with pytest.raises(InvalidInput, match="storage_options"):
        open_artifact_store(str(tmp_path), storage_options={"key": "k"})
    with pytest.raises(InvalidInput, match="non-empty"):
        open_artifact_store("  ")
    with pytest.raises(InvalidInput, match="nosuchproto"):
        open_artifact_store("nosuchproto://bucket/x")


def test_put_file_errors(local_case: StoreCase, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        local_case.store.put_file(tmp_path / "missing.bin")
    with pytest.raises(InvalidInput, match="folder"):
        local_case.store.put_file(tmp_path)


def test_get_file_into_a_folder_is_invalid(local_case: StoreCase, tmp_path: Path) -> None:
    blob = local_case.store.put_bytes(b"x")
    with pytest.raises(InvalidInput, match=r"model\.pkl"):
        local_case.store.get_file(blob.digest, tmp_path, name="models/model.pkl")


def test_concurrent_puts_of_the_same_content(local_case: StoreCase, tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    results = []
    errors: list[BaseException] = []

    def put(store: ArtifactStore) -> None:
        try:
            results.append(store.put_file(source))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(local_case.reopen(),)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert [info.digest for info in local_case.store.iter_blobs()] == [results[0].digest]
    assert local_case.store.get_bytes(results[0].digest) == data
    assert local_case.store.cleanup_temp(0) == 0


def test_open_reader_is_a_binary_file(local_case: StoreCase) -> None:
    blob = local_case.store.put_bytes(b"line one\nline two\n")
    with local_case.store.open(blob.digest, name="notes.txt") as reader:
        assert reader.readable()
        assert not reader.seekable()
        assert reader.readline() == b"line one\n"
        assert list(reader) == [b"line two\n"]
    assert reader.closed
