"""SIGTERM (and Ctrl-C) during a pipeline run: workers stop, running steps and the pipeline run end KILLED.

On each compute target: ``local`` and a real Dask cluster (whose attempt processes must be killed, while the
cluster itself, which the pipeline did not start, keeps running).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.entities import RunStatus
from mloop.pipelines import LocalExecutor, Pipeline
from mloop.pipelines.executors import Executor
from mloop.pipelines.results import TAG
from mloop.pipelines.worker import Outcome, Task
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

SLOW = """
import os, pathlib, sys, time
from mloop.pipelines import Pipeline, step

def parent_of(pid: int) -> int:
    return int(pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])

@step
def slow(*, marker: str) -> int:
    # this process, and its grandparent (on a Dask worker: the worker process; the parent is its attempt server)
    pathlib.Path(marker + ".tmp").write_text(f"{os.getpid()} {parent_of(os.getppid())}")
    pathlib.Path(marker + ".tmp").rename(marker)
    time.sleep(60)
    return 1

@step
def after(slow: int) -> int:
    return slow

p = Pipeline("slow", [slow, after])

if __name__ == "__main__":
    from mloop.pipelines import LocalExecutor, Pipeline
    from mloop.pipelines.executors.dask import DaskExecutor

    address = sys.argv[2]
    if address == "local":
        compute = LocalExecutor(max_workers=1)
    elif address == "own":  # a cluster this run starts (and must close)
        compute = DaskExecutor(min_workers=1, max_workers=1)
    else:
        compute = DaskExecutor(address)
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
def cancel(tmp_path: Path, signum: int, target: str) -> tuple[int, int]:
    """Run the pipeline in a process on ``target``, signal it mid-step; check it ends cleanly and quickly.

    Returns the step's process id and its grandparent's (on Dask: the worker process).
    """
    ws = init_workspace(tmp_path / "ws")
    script = write(tmp_path / "slow.py", SLOW)
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, str(script), str(marker), target], cwd=tmp_path / "ws")
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the step never started"
    step_pid, grandparent = map(int, marker.read_text().split())
    assert step_pid != proc.pid and alive(step_pid)
    start = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=30) != 0
    assert time.monotonic() - start < 15, "cancelling waited for the step to finish"
    assert gone(step_pid), "the step's process outlived the cancelled pipeline"
    with Client(workspace=ws) as client:
        runs = {r.tags.get(TAG.STEP, "pipeline"): r for r in client.search_runs("slow")}
    assert runs["pipeline"].status is RunStatus.KILLED
    assert runs["slow"].status is RunStatus.KILLED and runs["slow"].tags[TAG.STATUS] == "killed"
    assert "after" not in runs
    return step_pid, grandparent


def gone(pid: int, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_cleanly(tmp_path: Path, signum: int, compute: Executor) -> None:
    target = "local" if isinstance(compute, LocalExecutor) else str(compute.get_params()["address"])
    cancel(tmp_path, signum, target)
    if target != "local":  # a cluster the pipeline did not start is left running
        assert _cluster_workers(target) == 2


@pytest.mark.slow
def test_cancelling_a_run_on_a_cluster_it_started_leaves_no_process(tmp_path: Path) -> None:
    # (that the executor closes the cluster it started is checked in process, in test_compute_dask.py)
    pytest.importorskip("distributed")
    _, worker = cancel(tmp_path, signal.SIGTERM, "own")
    assert gone(worker, within=15), "the Dask worker of the cluster the run started is still running"


def _cluster_workers(address: str) -> int:
    from distributed import Client

    with Client(address, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        return len(client.scheduler_info()["workers"])


class _InterruptedWhileStarting(LocalExecutor):
    """A local pool that receives Ctrl-C while it starts (the window before any attempt is running)."""

    def submit(self, task: Task) -> Future[Outcome]:
        raise KeyboardInterrupt


def test_a_signal_while_the_pool_starts_ends_the_step_killed_not_failed(
    client: Client, load: Callable[..., Pipeline]
) -> None:
    with pytest.raises(KeyboardInterrupt):
        load().run(client=client, compute=_InterruptedWhileStarting(2))
    runs = client.search_runs(None, max_results=None)
    steps = [r for r in runs if r.tags.get(TAG.KIND) == "step"]
    assert steps and {r.status for r in steps} == {RunStatus.KILLED}
    assert {r.tags.get(TAG.STATUS) for r in steps} == {"killed"}
    parents = [r for r in runs if r.tags.get(TAG.KIND) == "pipeline"]
    assert [r.status for r in parents] == [RunStatus.KILLED]
