"""Transfers stream in constant memory: a 256 MB put + get + read grows peak RSS by far less than the file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SIZE = 256 * 1024 * 1024
CHUNK = 4 * 1024 * 1024

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from mloop.artifacts import open_artifact_store

    root, source, dest = sys.argv[1:4]
    store = open_artifact_store(root)
    store.put_bytes(b"warm up")  # load lazily imported code paths before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    blob = store.put_file(source)
    store.get_file(blob.digest, dest)
    total = 0
    with store.open(blob.digest) as reader:
        while piece := reader.read(1 << 20):
            total += len(piece)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kib": base, "peak_kib": peak, "size": blob.size, "read": total}))
    """
)


def test_put_and_get_of_256_mb_in_constant_memory(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        for i in range(SIZE // CHUNK):
            handle.write(bytes([i % 251]) * CHUNK)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "store"), str(source), str(tmp_path / "out.bin")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert report["size"] == SIZE
    assert report["read"] == SIZE
    assert (tmp_path / "out.bin").stat().st_size == SIZE
    growth_mib = (report["peak_kib"] - report["base_kib"]) / 1024
    assert growth_mib < 100, f"peak RSS grew by {growth_mib:.0f} MiB while moving a 256 MiB file"
