"""SIGTERM (and Ctrl-C) during a pipeline run: workers stop, running steps and the pipeline run end KILLED."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.entities import RunStatus
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

SLOW = """
import pathlib, sys, time
from mloop.pipelines import Pipeline, step

@step
def slow(*, marker: str) -> int:
    pathlib.Path(marker).write_text("started")
    time.sleep(60)
    return 1

@step
def after(slow: int) -> int:
    return slow

p = Pipeline("slow", [slow, after])

if __name__ == "__main__":
    from mloop.pipelines import LocalExecutor
    p.run({"marker": sys.argv[1]}, compute=LocalExecutor(max_workers=1))
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_cleanly(tmp_path: Path, signum: int) -> None:
    ws = init_workspace(tmp_path / "ws")
    script = write(tmp_path / "slow.py", SLOW)
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, str(script), str(marker)], cwd=tmp_path / "ws")
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the step never started"
    start = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=20) != 0
    assert time.monotonic() - start < 10, "cancelling waited for the step to finish"
    with Client(workspace=ws) as client:
        runs = {r.tags.get(TAG.STEP, "pipeline"): r for r in client.search_runs("slow")}
    assert runs["pipeline"].status is RunStatus.KILLED
    assert runs["slow"].status is RunStatus.KILLED and runs["slow"].tags[TAG.STATUS] == "killed"
    assert "after" not in runs
