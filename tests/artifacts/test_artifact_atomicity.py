"""A writer killed with SIGKILL mid-upload leaves no visible blob; the next put succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from artifact_cases import StoreCase

from mloop.artifacts import CHUNK_SIZE, hash_file

pytestmark = pytest.mark.slow

_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from mloop.artifacts import open_artifact_store

    uri, options, path, stop_after = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    store = open_artifact_store(uri, storage_options=options)
    written = 0

    def progress(count):
        global written
        written += count
        if written >= stop_after:
            print("WRITING", written, flush=True)
            time.sleep(120)  # the test kills us here, mid-upload

    store.put_file(path, progress=progress)
    print("DONE", flush=True)
    """
)


def _kill_mid_put(case: StoreCase, source: Path, stop_after: int) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRITER,
            case.uri,
            json.dumps(case.storage_options),
            str(source),
            str(stop_after),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("WRITING"), f"writer did not start: {line!r}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def test_sigkill_mid_put_leaves_no_blob(case: StoreCase, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        for i in range(4):
            handle.write(os.urandom(1024) * (CHUNK_SIZE // 1024) if i == 0 else bytes([i]) * CHUNK_SIZE)
    digest = hash_file(source)

    _kill_mid_put(case, source, stop_after=2 * CHUNK_SIZE)

    assert not case.store.exists(digest)
    assert list(case.store.iter_blobs()) == []
    # what is left is only a temporary upload (local: a .part file), which cleanup_temp removes
    leftover = case.store.cleanup_temp(older_than_s=0)
    if case.kind == "local":
        assert leftover == 2 * CHUNK_SIZE
    assert case.store.cleanup_temp(older_than_s=0) == 0

    blob = case.store.put_file(source)
    assert blob.digest == digest
    assert [info.digest for info in case.store.iter_blobs()] == [digest]
    restored = case.store.get_file(digest, tmp_path / "restored.bin")
    assert hash_file(restored) == digest


def test_put_after_kill_without_cleanup_still_succeeds(local_case: StoreCase, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(CHUNK_SIZE + 1))
    _kill_mid_put(local_case, source, stop_after=CHUNK_SIZE)
    blob = local_case.store.put_file(source)
    assert local_case.store.get_bytes(blob.digest) == source.read_bytes()
    assert local_case.store.cleanup_temp() == 0, "a fresh leftover is spared by the default age"
    assert local_case.store.cleanup_temp(older_than_s=0) == CHUNK_SIZE
