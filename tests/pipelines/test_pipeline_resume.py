"""``resume``: a new run that re-runs only the unfinished steps, reusing the finished ones' outputs; its refusals."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.entities import RunStatus
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.pipelines import LocalExecutor, Pipeline, PipelineResult, explain_step, load_pipeline, resume, step_logs
from mloop.pipelines.executors import Executor
from mloop.pipelines.history import step_runs
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client

POOL = LocalExecutor(max_workers=2)

# a (cache off) -> b (broken while BROKEN) -> c ; d independent. Each step counts its executions in a file.
RESUMABLE = """
import pathlib
from mloop.pipelines import Pipeline, step

HERE = str(pathlib.Path(__file__).parent)
BROKEN = True


def count(name):
    f = pathlib.Path(HERE) / (name + ".count")
    f.write_text(str(int(f.read_text()) + 1) if f.exists() else "1")


@step(cache=False)
def a(*, n: int = 3) -> list:
    count("a")
    print("a made", n)
    return list(range(n))


@step
def b(a: list) -> int:
    count("b")
    if BROKEN:
        raise RuntimeError("b is broken")
    return sum(a)


@step
def c(b: int) -> int:
    count("c")
    return b * 2


@step
def d(*, k: int = 1) -> str:
    count("d")
    return "d" * k


res = Pipeline("res", [a, b, c, d])
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "res"
    root.mkdir()
    write(root / "res.py", RESUMABLE)
    return root


def counts(folder: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in sorted(folder.glob("*.count"))}


def statuses(result: PipelineResult) -> dict[str, str]:
    return {n: s.status for n, s in result.steps.items()}


def failed_run(client: Client, folder: Path, compute: Executor = POOL) -> PipelineResult:
    first = load_pipeline(f"{folder / 'res.py'}:res").run({"n": 4, "k": 2}, client=client, compute=compute)
    assert statuses(first) == {"a": "ran", "b": "failed", "c": "skipped", "d": "ran"}
    return first


def fix_b(folder: Path) -> None:
    write(folder / "res.py", RESUMABLE.replace("BROKEN = True", "BROKEN = False"))


def test_fix_the_failed_step_and_resume(client: Client, folder: Path, compute: Executor) -> None:
    first = failed_run(client, folder, compute)
    fix_b(folder)  # the usual loop: a step fails, fix its code, resume
    resumed = resume(first.run_id or "", client=client, compute=compute)
    assert resumed.ok and resumed.resumed_from == first.run_id and resumed.run_id != first.run_id
    assert statuses(resumed) == {"a": "cached", "b": "ran", "c": "ran", "d": "cached"}
    # a (cache=False) and d are reused from the resumed run, not run again; b ran twice, c once
    assert counts(folder) == {"a": 1, "b": 2, "c": 1, "d": 1}
    assert resumed.steps["a"].reason == f"finished in the resumed run {first.run_id}"
    assert client.artifacts.get_bytes(resumed.steps["c"].outputs["c"]["digest"]) == b"12"  # the original n=4
    record, children = step_runs(client, resumed.run_id or "")
    assert record.tags[TAG.RESUMED_FROM] == first.run_id and record.status is RunStatus.FINISHED
    assert dict(record.params) == {"a.n": "4", "d.k": "2"}
    assert children["a"].tags[TAG.CACHED_FROM] == first.steps["a"].run_id
    assert children["a"].tags[TAG.KEY] == first.steps["a"].key  # its original key
    assert set(children) == {"a", "b", "c", "d"}
    edges = client.store.list_lineage(children["b"].ref)  # b's input edge comes from a's run in the new run
    assert {(e.source, e.relation) for e in edges if e.target == children["b"].ref} == {
        (children["a"].ref, "pipeline_input")
    }
    # explain and logs work on the resumed run; a reused step shows the logs of the run that made its outputs
    assert explain_step(client, resumed.run_id or "", "a")["cached_from"] == first.steps["a"].run_id
    assert explain_step(client, resumed.run_id or "", "b")["status"] == "ran"
    assert step_logs(client, resumed.run_id or "", "a")["a"] == {"stdout.txt": "a made 4\n"}
    # the original is left as it was
    assert client.get_run(first.run_id or "").status is RunStatus.FAILED
    with pytest.raises(Conflict, match=r"finished already.*nothing to resume.*mloop pipelines run"):
        resume(resumed.run_id or "", client=client)


def test_a_still_failing_step_can_be_resumed_again(client: Client, folder: Path, compute: Executor) -> None:
    first = failed_run(client, folder, compute)
    again = resume(first.run_id or "", client=client, compute=compute)
    assert statuses(again) == {"a": "cached", "b": "failed", "c": "skipped", "d": "cached"}
    assert not again.ok and again.status == "FAILED"
    fix_b(folder)
    done = resume(again.run_id or "", client=client, compute=compute)  # a resume of a resume
    assert statuses(done) == {"a": "cached", "b": "ran", "c": "ran", "d": "cached"}
    assert done.steps["a"].outputs == first.steps["a"].outputs and counts(folder)["a"] == 1


def test_a_changed_finished_step_is_refused_unless_forced(client: Client, folder: Path) -> None:
    first = failed_run(client, folder)
    edited = RESUMABLE.replace("BROKEN = True", "BROKEN = False").replace('print("a made", n)', 'print("a", n)')
    write(folder / "res.py", edited)
    with pytest.raises(Conflict, match=r"step 'a': code: the step function's source changed.*--force"):
        resume(first.run_id or "", client=client, compute=POOL)
    forced = resume(first.run_id or "", client=client, compute=POOL, force=True)
    assert statuses(forced) == {"a": "cached", "b": "ran", "c": "ran", "d": "cached"}
    assert counts(folder)["a"] == 1  # reused as it was, though its code changed


def test_refusals_name_the_fix(client: Client, folder: Path, tmp_path: Path) -> None:
    plain = client.start_run("other")
    plain.end()
    with pytest.raises(InvalidInput, match="is not a pipeline run"):
        resume(plain.id, client=client)
    first = failed_run(client, folder)
    with pytest.raises(InvalidInput, match=f"step 'b' of pipeline run {first.run_id}"):
        resume(first.steps["b"].run_id or "", client=client)
    moved = tmp_path / "moved"
    folder.rename(moved)
    with pytest.raises(NotFound, match=r"does not exist \(moved or deleted\).*--file FILE.py:NAME"):
        resume(first.run_id or "", client=client)
    write(moved / "res.py", (moved / "res.py").read_text().replace('Pipeline("res"', 'Pipeline("other"'))
    with pytest.raises(InvalidInput, match="is a run of pipeline 'res', not 'other'"):
        resume(first.run_id or "", pipeline=f"{moved / 'res.py'}:res", client=client)
    fix_b(moved)
    with pytest.raises(Conflict, match="step 'a': code: global value 'HERE' changed"):  # a reads its folder
        resume(first.run_id or "", pipeline=f"{moved / 'res.py'}:res", client=client, compute=POOL)
    done = resume(first.run_id or "", pipeline=f"{moved / 'res.py'}:res", client=client, compute=POOL, force=True)
    assert done.ok and statuses(done) == {"a": "cached", "b": "ran", "c": "ran", "d": "cached"}


def test_a_run_left_running_is_resumed_only_once_its_process_is_gone(client: Client, folder: Path) -> None:
    pipeline: Pipeline = load_pipeline(f"{folder / 'res.py'}:res")
    fix_b(folder)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        # a pipeline run as a process killed with -9 leaves it (written through the store: no Run object here)
        parent = client.store.create_run(client.experiment_id("res", create=True), name="left", actor="t", params={
            "a.n": "2", "d.k": "1"}, tags={TAG.PIPELINE: "res", TAG.KIND: "pipeline",
            TAG.FILE: pipeline.source[1] or "", TAG.PROCESS: f"{socket.gethostname()}:{sleeper.pid}"})  # fmt: skip
        with pytest.raises(Conflict, match=f"still running in process {sleeper.pid}"):
            resume(parent.id, client=client)
    finally:
        sleeper.kill()
        sleeper.wait()
    resumed = resume(parent.id, client=client, compute=POOL)
    assert resumed.ok and statuses(resumed) == dict.fromkeys("abcd", "ran")
    assert client.get_run(parent.id).status is RunStatus.KILLED  # what happened to it, recorded on resume
    elsewhere = client.store.create_run(parent.experiment_id, name="elsewhere", actor="t", tags={
        TAG.PIPELINE: "res", TAG.KIND: "pipeline", TAG.PROCESS: "another-host:1"})  # fmt: skip
    with pytest.raises(Conflict, match=r"on host 'another-host', which cannot be checked.*--force"):
        resume(elsewhere.id, client=client)


def test_cli_resume(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mloop.cli.app import app
    from mloop.workspace import init_workspace

    init_workspace(folder)
    monkeypatch.chdir(folder)

    def mloop(*args: str, code: int) -> str:
        result = CliRunner().invoke(app, list(args), prog_name="mloop")
        assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
        return result.stdout + result.stderr

    failed = mloop("pipelines", "run", "res.py:res", "--workers", "2", "--json", code=1)
    run_id = json.loads(failed[: failed.rindex("}") + 1])["run_id"]
    assert "not both" in mloop("pipelines", "resume", run_id, "--workers", "2", "--compute", "local", code=2)
    fix_b(folder)
    out = mloop("pipelines", "resume", run_id[-8:], "--workers", "2", code=0)
    assert f"resuming pipeline run {run_id}" in out and "finished in the resumed run" in out
    again = json.loads(mloop("pipelines", "resume", run_id, "--workers", "2", "--json", code=0))  # a 2nd resume
    assert again["resumed_from"] == run_id and again["status"] == "FINISHED"
    assert "finished already" in mloop("pipelines", "resume", again["run_id"], code=5)
