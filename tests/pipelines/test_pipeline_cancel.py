"""SIGTERM (and Ctrl-C) during a pipeline run: workers stop, running steps and the pipeline run end KILLED.

On each compute target: ``local`` and a real Dask cluster (whose attempt processes must be killed, while the
cluster itself, which the pipeline did not start, keeps running).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.entities import RunStatus
from mloop.pipelines import LocalExecutor
from mloop.pipelines.executors import Executor
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

SLOW = """
import os, pathlib, sys, time
from mloop.pipelines import Pipeline, step

@step
def slow(*, marker: str) -> int:
    pathlib.Path(marker).write_text(str(os.getpid()))
    time.sleep(60)
    return 1

@step
def after(slow: int) -> int:
    return slow

p = Pipeline("slow", [slow, after])

if __name__ == "__main__":
    from mloop.pipelines import LocalExecutor
    from mloop.pipelines.executors.dask import DaskExecutor

    address = sys.argv[2]
    compute = LocalExecutor(max_workers=1) if address == "local" else DaskExecutor(address)
    p.run({"marker": sys.argv[1]}, compute=compute)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its exit status is left


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_cleanly(tmp_path: Path, signum: int, compute: Executor) -> None:
    ws = init_workspace(tmp_path / "ws")
    script = write(tmp_path / "slow.py", SLOW)
    marker = tmp_path / "started"
    target = "local" if isinstance(compute, LocalExecutor) else str(compute.get_params()["address"])
    proc = subprocess.Popen([sys.executable, str(script), str(marker), target], cwd=tmp_path / "ws")
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the step never started"
    step_pid = int(marker.read_text())
    assert step_pid != proc.pid and alive(step_pid)
    start = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=20) != 0
    assert time.monotonic() - start < 10, "cancelling waited for the step to finish"
    deadline = time.monotonic() + 5
    while alive(step_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(step_pid), "the step's process outlived the cancelled pipeline"
    if target != "local":  # a cluster the pipeline did not start is left running
        assert compute.get_params()["address"] and _cluster_workers(target) == 2
    with Client(workspace=ws) as client:
        runs = {r.tags.get(TAG.STEP, "pipeline"): r for r in client.search_runs("slow")}
    assert runs["pipeline"].status is RunStatus.KILLED
    assert runs["slow"].status is RunStatus.KILLED and runs["slow"].tags[TAG.STATUS] == "killed"
    assert "after" not in runs


def _cluster_workers(address: str) -> int:
    from distributed import Client

    with Client(address, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        return len(client.scheduler_info()["workers"])
