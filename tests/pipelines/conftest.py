"""Fixtures for pipeline tests: a project folder with a pipeline file and helper modules, loaded like the CLI does.

Pipelines are loaded from files (not defined in test modules) because worker processes import steps by module,
and because editing a helper module on disk must change exactly the keys of the steps that import it.

``compute`` runs a test on each compute target: ``local`` (a process pool of 2) and ``dask`` (a real
``distributed.LocalCluster`` of 2 worker processes, started once per session, reached by its address).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_cases import DEEP, FLOW, HELPERS, write

from mloop.pipelines import LocalExecutor, Pipeline, load_pipeline
from mloop.pipelines.executors import Executor


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write(root / "helpers.py", HELPERS)
    write(root / "deep.py", DEEP)
    write(root / "flow.py", FLOW)
    return root


@pytest.fixture
def load(project: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Pipeline]:
    """``load(name="flow", file="flow.py")``: the pipeline, loaded afresh from the project folder.

    Every test has its own project folder but the same module names, so ones another test imported are dropped.
    """

    def _load(name: str = "flow", file: str = "flow.py") -> Pipeline:
        for module in ("helpers", "deep"):
            monkeypatch.delitem(sys.modules, module, raising=False)
        return load_pipeline(f"{project / file}:{name}")

    return _load


WORKER_MEMORY = 2 * 10**9  # what each worker of the session's Dask cluster declares as its "memory" resource


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A real Dask cluster on this machine: 2 worker processes, 1 thread each, resources cpu=1 and memory=2e9."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, silence_logs=40,
            dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
            memory_limit=WORKER_MEMORY, resources={"cpu": 1, "memory": WORKER_MEMORY},
        )  # fmt: skip
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(params=["local", "dask"])
def compute(request: pytest.FixtureRequest) -> Executor:
    """The executor a test runs its pipelines on: each test runs once per compute target."""
    if request.param == "local":
        return LocalExecutor(max_workers=2)
    from mloop.pipelines.executors.dask import DaskExecutor

    cluster = request.getfixturevalue("dask_cluster")
    return DaskExecutor(address=cluster.scheduler_address, target="test-dask")
