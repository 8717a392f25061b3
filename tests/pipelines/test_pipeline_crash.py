"""Killing ``mloop pipelines run`` (kill -9, SIGTERM) mid-step: no step looks finished without its outputs, and
``mloop pipelines resume`` completes the run, re-running only the steps that did not finish."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.entities import RunRecord, RunStatus
from mloop.errors import NotFound
from mloop.pipelines.cache import outputs_of
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client
from mloop.workspace import init_workspace, open_workspace

# a (cache off) and d run first, in parallel; b reads both and blocks while the file `block` exists; c reads b
CRASH = """
import pathlib
import time

from mloop.pipelines import Pipeline, step

HERE = pathlib.Path(__file__).parent


def count(name):
    f = HERE / (name + ".count")
    f.write_text(str(int(f.read_text()) + 1) if f.exists() else "1")


@step(cache=False)
def a() -> str:
    count("a")
    return "a"


@step
def b(a: str, d: int) -> str:
    count("b")
    if (HERE / "block").exists():
        (HERE / "b.started").write_text("yes")
        deadline = time.monotonic() + 60
        while (HERE / "block").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return a + "b" * d


@step
def c(b: str) -> str:
    count("c")
    return b + "c"


@step
def d() -> int:
    count("d")
    return 4


crash = Pipeline("crash", [a, b, c, d])
"""

CHAIN = (
    """
from mloop.pipelines import Pipeline, step

@step
def s0() -> str:
    return "0"
"""
    + "".join(f"\n@step\ndef s{i}(s{i - 1}: str) -> str:\n    return s{i - 1} + '.{i}'\n" for i in range(1, 12))
    + ("\nchain = Pipeline('chain', [" + ", ".join(f"s{i}" for i in range(12)) + "])\n")
)


def cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    """``mloop ARGS`` in its own session (so the test can also stop the workers a kill -9 leaves behind).

    Its output goes to files (``cli.out``, ``cli.err``): orphaned workers would hold a pipe open."""
    code = "import sys; from mloop.cli.app import main; sys.argv[0] = 'mloop'; main()"
    with open(cwd / "cli.out", "wb") as out, open(cwd / "cli.err", "wb") as err:
        return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, stdout=out, stderr=err,
                                start_new_session=True)  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path.name} never appeared: {proc.poll()} {(path.parent / 'cli.err').read_text()}"


def reap(proc: subprocess.Popen[bytes]) -> None:
    """After the pipeline process is gone, stop any worker it left behind (they share its session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def at(folder: Path) -> Client:
    return Client(workspace=open_workspace(cwd=folder))


def session(proc: subprocess.Popen[bytes]) -> list[str]:
    """The processes still in the killed command's session (its pool's fork server and workers)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--sid", str(proc.pid)], capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def runs(root: Path, pipeline: str) -> tuple[RunRecord, dict[str, RunRecord]]:
    with at(root) as client:
        found = client.search_runs(pipeline)
    parents = [r for r in found if r.tags.get(TAG.KIND) == "pipeline"]
    assert len(parents) == 1
    return parents[0], {r.tags[TAG.STEP]: r for r in found if r.parent_id == parents[0].id}


def assert_nothing_finished_without_outputs(root: Path, steps: dict[str, RunRecord]) -> None:
    with at(root) as client:
        for name, r in steps.items():
            if r.status is RunStatus.FINISHED:
                assert r.tags.get(TAG.STATUS) in ("ran", "cached"), name
                outputs = outputs_of(r)
                assert outputs, f"step {name} FINISHED without outputs"
                assert all(client.artifacts.exists(o["digest"]) for o in outputs.values()), name
            else:
                assert r.status is RunStatus.RUNNING and TAG.OUTPUTS not in r.tags, name


def counts(folder: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in sorted(folder.glob("*.count"))}


def resume(root: Path, run_id: str) -> dict[str, str]:
    proc = cli("pipelines", "resume", run_id, "--workers", "2", "--json", cwd=root)
    assert proc.wait(timeout=120) == 0, (root / "cli.err").read_text()
    result = json.loads((root / "cli.out").read_text())
    assert result["resumed_from"] == run_id and result["status"] == "FINISHED"
    return {s["step"]: s["status"] for s in result["steps"]}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    init_workspace(folder)
    write(folder / "crash.py", CRASH)
    (folder / "block").write_text("")
    return folder


@pytest.mark.slow
def test_kill_9_mid_step_leaves_nothing_finished_looking_and_resume_completes(root: Path) -> None:
    proc = cli("pipelines", "run", "crash.py:crash", "--workers", "2", cwd=root)
    try:
        wait_for(root / "b.started", proc)
        proc.kill()  # kill -9 of the pipeline process itself, mid-step
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15  # its workers (one of them mid-step) notice and exit by themselves
        while session(proc) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session(proc) == [], "the pool outlived the killed pipeline process"
        parent, steps = runs(root, "crash")
        assert parent.status is RunStatus.RUNNING  # nobody could record anything: it looks unfinished, not done
        assert {n: r.status for n, r in steps.items()} == {
            "a": RunStatus.FINISHED, "d": RunStatus.FINISHED, "b": RunStatus.RUNNING
        }  # fmt: skip
        assert_nothing_finished_without_outputs(root, steps)
    finally:
        (root / "block").unlink()  # the orphaned worker running b returns
        reap(proc)
    assert resume(root, parent.id) == {"a": "cached", "b": "ran", "c": "ran", "d": "cached"}
    assert counts(root) == {"a": 1, "b": 2, "c": 1, "d": 1}  # a (cache off) and d were not run again
    with at(root) as client:
        assert client.get_run(parent.id).status is RunStatus.KILLED  # recorded by resume: its process was gone
        assert client.get_run(steps["b"].id).status is RunStatus.KILLED
        assert client.get_run(steps["b"].id).tags[TAG.STATUS] == "killed"


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_a_finished_step_without_outputs(tmp_path: Path) -> None:
    rng = random.Random(10)
    for attempt in range(2):
        folder = tmp_path / f"chain{attempt}"
        init_workspace(folder)
        write(folder / "chain.py", CHAIN)
        proc = cli("pipelines", "run", "chain.py:chain", "--workers", "2", cwd=folder)
        try:
            deadline = time.monotonic() + 60
            while not _started(folder):  # the pipeline run exists: kill it at a random moment soon after
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))
            proc.kill()
            proc.wait(timeout=10)
        finally:
            reap(proc)
        parent, steps = runs(folder, "chain")
        assert_nothing_finished_without_outputs(folder, steps)
        if parent.status is RunStatus.RUNNING:
            assert set(resume(folder, parent.id).values()) <= {"cached", "ran"}


def _started(folder: Path) -> bool:
    with at(folder) as client:
        try:
            return any(r.tags.get(TAG.KIND) == "pipeline" for r in client.search_runs("chain"))
        except NotFound:  # its experiment is not made yet
            return False


@pytest.mark.slow
def test_sigterm_of_the_cli_ends_running_steps_killed_and_resume_completes(root: Path) -> None:
    proc = cli("pipelines", "run", "crash.py:crash", "--workers", "2", cwd=root)
    try:
        wait_for(root / "b.started", proc)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) != 0
        assert time.monotonic() - start < 10, "cancelling waited for the step to finish"
    finally:
        (root / "block").unlink()
        reap(proc)
    parent, steps = runs(root, "crash")
    assert parent.status is RunStatus.KILLED
    assert steps["b"].status is RunStatus.KILLED and steps["b"].tags[TAG.STATUS] == "killed"
    assert_nothing_finished_without_outputs(root, {n: r for n, r in steps.items() if n != "b"})
    assert resume(root, parent.id) == {"a": "cached", "b": "ran", "c": "ran", "d": "cached"}
    assert counts(root) == {"a": 1, "b": 2, "c": 1, "d": 1}
