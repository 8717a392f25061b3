"""The Dask compute target on real clusters: adaptive scaling, resources, the address form, a dying worker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_cases import write

from mloop.errors import InvalidInput
from mloop.pipelines import load_pipeline, step_logs
from mloop.pipelines.executors.dask import DaskExecutor
from mloop.pipelines.runner import task_for
from mloop.tracking.client import Client

pytest.importorskip("distributed")

STEPS = """
import os, pathlib, time
from mloop.pipelines import Pipeline, step

def meet(me: str, other: str, folder: str) -> float:
    # wait (up to 20 s) until the other step has started: only possible if both run at the same time
    pathlib.Path(folder, me).touch()
    deadline = time.monotonic() + 20
    while not pathlib.Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never started while {me} was running")
        time.sleep(0.01)
    return time.monotonic()

@step(resources={"cpu": 1})
def left(*, folder: str) -> float:
    return meet("left", "right", folder)

@step(resources={"cpu": 1})
def right(*, folder: str) -> float:
    return meet("right", "left", folder)

def interval(name: str, folder: str) -> list:
    start = time.time()
    time.sleep(0.5)
    return [start, time.time()]

@step(resources={"cpu": 2})
def wide1(*, folder: str) -> list:
    return interval("wide1", folder)

@step(resources={"cpu": 2})
def wide2(*, folder: str) -> list:
    return interval("wide2", folder)

@step(resources={"cpu": 3})
def too_wide() -> int:
    return 1

@step(resources={"memory": 5e9})
def too_big() -> int:
    return 1

@step(retries=1, backoff=0)
def kills_its_worker(*, folder: str) -> int:
    marker = pathlib.Path(folder, "killed")
    if not marker.exists():
        marker.write_text("once")
        zygote = os.getppid()  # the attempt server, whose parent is the Dask worker process
        worker = int(pathlib.Path(f"/proc/{zygote}/stat").read_text().rpartition(")")[2].split()[1])
        os.kill(worker, 9)
        time.sleep(30)
    return 7

@step
def sleepy(*, folder: str) -> int:
    pathlib.Path(folder, "sleepy.tmp").write_text(str(os.getpid()))
    pathlib.Path(folder, "sleepy.tmp").rename(pathlib.Path(folder, "sleepy"))
    time.sleep(60)
    return 1

pair = Pipeline("pair", [left, right])
lone = Pipeline("lone", [sleepy])
wide = Pipeline("wide", [wide1, wide2])
unfit = Pipeline("unfit", [too_wide, too_big])
dying = Pipeline("dying", [kills_its_worker])
"""


@pytest.fixture
def steps(tmp_path: Path) -> Path:
    return write(tmp_path / "steps.py", STEPS)


class Watch:
    """Samples the number of workers of a cluster every 20 ms in a thread."""

    def __init__(self, executor: DaskExecutor) -> None:
        self.executor, self.stop = executor, threading.Event()
        self.counts: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            cluster = self.executor.cluster
            if cluster is not None:
                self.counts.append(len(cluster.scheduler_info.get("workers", {})))
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def adaptive() -> Iterator[DaskExecutor]:
    executor = DaskExecutor(min_workers=0, max_workers=2, adapt_interval=0.1, wait_count=2, memory_limit=10**9,
                            target="adaptive")  # fmt: skip
    yield executor
    executor.shutdown(cancel=True)


def test_adaptive_scaling_follows_ready_steps(client: Client, steps: Path, adaptive: DaskExecutor) -> None:
    pipeline = load_pipeline(f"{steps}:pair")
    params = {"folder": str(steps.parent)}
    tasks = [task_for(pipeline.steps[n], client, params, {}) for n in ("left", "right")]
    with Watch(adaptive) as watch:
        futures = [adaptive.submit(t) for t in tasks]  # two ready steps; no worker yet (min_workers=0)
        outcomes = [f.result(timeout=60) for f in futures]
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]  # they met: they ran at the same time
        assert max(watch.counts) == 2, "the cluster did not grow to one worker per ready step"
        deadline = time.monotonic() + 30
        while watch.counts[-1] != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert watch.counts[0] == 0 and watch.counts[-1] == 0, "idle workers were not retired down to min_workers=0"
    cluster = adaptive.cluster
    adaptive.shutdown()
    assert cluster is not None and cluster.status.name == "closed"  # a cluster mloop started is closed


def test_resources_are_dask_worker_resources(client: Client, steps: Path) -> None:
    # one worker with 2 threads declares cpu=2: two cpu=1 steps share it at once, two cpu=2 steps take turns
    executor = DaskExecutor(min_workers=1, max_workers=1, threads_per_worker=2, memory_limit=2 * 10**9, target="one")
    params = {"folder": str(steps.parent)}
    assert load_pipeline(f"{steps}:pair").run(params, client=client, compute=executor).ok
    result = load_pipeline(f"{steps}:wide").run(params, client=client, compute=executor)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    (a0, a1), (b0, b1) = (json.loads(client.artifacts.get_bytes(result.steps[n].outputs[n]["digest"]))
                          for n in ("wide1", "wide2"))  # fmt: skip
    assert a1 <= b0 or b1 <= a0, "two steps asking for cpu=2 ran at once on a worker that has cpu=2"
    result = load_pipeline(f"{steps}:unfit").run(client=client, compute=executor)
    assert {n: s.status for n, s in result.steps.items()} == {"too_wide": "failed", "too_big": "failed"}
    assert "Step 'too_wide' asks for resources {'cpu': 3}, but no worker of compute target 'one' has that much " \
           "(workers offer {'cpu': 2, 'memory': 2 GB})" in (result.steps["too_wide"].error or "")  # fmt: skip
    assert "asks for resources {'memory': 5 GB}" in (result.steps["too_big"].error or "")


def test_address_form_uses_a_running_cluster_and_leaves_it_running(
    client: Client, steps: Path, dask_cluster: Any
) -> None:
    executor = DaskExecutor(address=dask_cluster.scheduler_address, target="shared")
    result = load_pipeline(f"{steps}:pair").run({"folder": str(steps.parent)}, client=client, compute=executor)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    assert executor.cluster is None and dask_cluster.status.name == "running"
    assert len(dask_cluster.scheduler_info["workers"]) == 2
    # the session cluster's workers offer cpu=1: a step asking for 2 fails at once, naming the target
    unfit = load_pipeline(f"{steps}:unfit").run(client=client, compute=executor)
    assert "no worker of compute target 'shared' has that much" in (unfit.steps["too_wide"].error or "")


def test_an_unreachable_scheduler_is_a_clear_error(client: Client, steps: Path) -> None:
    executor = DaskExecutor(address="tcp://127.0.0.1:9", timeout=1, target="nowhere")
    with pytest.raises(InvalidInput, match=r"Compute target 'nowhere': cannot reach the Dask scheduler at 'tcp://"):
        load_pipeline(f"{steps}:pair").run({"folder": "x"}, client=client, compute=executor)


def test_a_worker_dying_mid_step_fails_that_attempt_and_retries_apply(client: Client, steps: Path) -> None:
    executor = DaskExecutor(min_workers=2, max_workers=2, target="fragile")
    result = load_pipeline(f"{steps}:dying").run({"folder": str(steps.parent)}, client=client, compute=executor)
    step = result.steps["kills_its_worker"]
    assert result.ok and step.status == "ran" and step.attempts == 2, step.error
    logs = step_logs(client, result.run_id or "", "kills_its_worker")["kills_its_worker"]
    assert "the Dask worker running this step died" in logs["error.txt"] and "error.2.txt" not in logs


def test_cancelling_kills_the_attempt_and_closes_the_cluster_it_started(client: Client, steps: Path) -> None:
    executor = DaskExecutor(min_workers=1, max_workers=1, target="own")
    pipeline = load_pipeline(f"{steps}:lone")
    future = executor.submit(task_for(pipeline.steps["sleepy"], client, {"folder": str(steps.parent)}, {}))
    marker = steps.parent / "sleepy"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(marker.read_text())
    cluster = executor.cluster
    assert cluster is not None and cluster.status.name == "running" and _alive(pid)
    executor.shutdown(cancel=True)  # what the runner does on Ctrl-C / SIGTERM
    assert cluster.status.name == "closed" and executor.cluster is None
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the attempt's process survived the cancel"
    outcome = future.result(timeout=10)  # the runner's future resolves (it records KILLED itself)
    assert not outcome.ok


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
