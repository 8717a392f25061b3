"""kill -9 in the middle of `data add` leaves no version visible, and the next add succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mloop
from mloop.datasets.dataset import Dataset
from mloop.tracking.client import Client


def test_kill_9_during_add(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    mloop.init_workspace(ws).close()
    src = tmp_path / "big"
    src.mkdir()
    chunk = os.urandom(1 << 20)
    for i in range(60):  # 60 files x 4 MiB, each distinct
        (src / f"part-{i:03d}.bin").write_bytes(chunk * 4 + i.to_bytes(4, "big"))
    script = textwrap.dedent(
        f"""
        import time
        import mloop
        from mloop.datasets.dataset import Dataset
        client = mloop.Client(workspace=mloop.init_workspace({str(ws)!r}))
        def slow(n):
            time.sleep(0.002)
        Dataset.add({str(src)!r}, "big", client=client, progress=slow)
        """
    )
    blobs = ws / ".mloop" / "artifacts" / "blobs"
    with subprocess.Popen([sys.executable, "-c", script]) as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if blobs.exists() and sum(1 for _ in blobs.rglob("*") if _.is_file()) >= 5:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the add finished before it could be killed; make the data bigger"
        proc.kill()
        proc.wait(timeout=30)
    client = Client(workspace=mloop.init_workspace(ws))
    assert client.store.list_datasets().items == []  # nothing visible
    result = Dataset.add(src, "big", client=client)
    assert result.created and result.dataset.version == 1 and result.dataset.info.file_count == 60
    assert {b.digest for b in client.artifacts.iter_blobs()} >= {e.digest for e in result.dataset.files()}
    client.close()
