"""Running pipelines: caching per key component, tracking and lineage, parallelism, failures, retries, timeouts.

Every test runs on each compute target (``local`` and a real Dask cluster: the ``compute`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.entities import RunStatus
from mloop.errors import InvalidInput
from mloop.pipelines import Pipeline, PipelineResult, explain_step, step_logs
from mloop.pipelines.executors import Executor
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client


def statuses(result: PipelineResult) -> dict[str, str]:
    return {n: s.status for n, s in result.steps.items()}


def ran(result: PipelineResult) -> set[str]:
    return {n for n, s in result.steps.items() if s.status == "ran"}


def test_first_run_runs_everything_and_a_rerun_reuses_everything(
    client: Client, load: Callable[..., Pipeline], compute: Executor
) -> None:
    first = load().run(client=client, compute=compute)
    assert first.ok and ran(first) == {"a", "b", "c", "d", "e"}
    assert first.steps["a"].reason == "no earlier run of this step"
    again = load().run(client=client, compute=compute)
    assert statuses(again) == dict.fromkeys("abcde", "cached")
    assert again.steps["c"].outputs == first.steps["c"].outputs
    assert again.steps["c"].reason == f"same key as run {first.steps['c'].run_id}"
    assert client.artifacts.get_bytes(again.steps["c"].outputs["c"]["digest"]) == b"6"  # 2 * (0 + 1 + 2), JSON
    plan = load().plan(client=client)
    assert statuses(plan) == dict.fromkeys("abcde", "cached")


def test_each_key_component_invalidates_exactly_its_steps(
    client: Client, project: Path, load: Callable[..., Pipeline], compute: Executor
) -> None:
    load().run(client=client, compute=compute)
    # a parameter: its step and everything downstream of it (b, c, e read a's output)
    result = load().run({"n": 4}, client=client, compute=compute)
    assert ran(result) == {"a", "b", "c", "e"} and result.steps["d"].status == "cached"
    assert result.steps["a"].reason == "params: parameter 'n' changed: 3 -> 4"
    # editing a helper module imported (transitively) by b: b, and c only because b's output changed
    write(project / "deep.py", "def scale(x):\n    return x + 10\n")
    plan = load().plan({"n": 4}, client=client)
    assert statuses(plan) == {"a": "cached", "d": "cached", "e": "cached", "b": "to run", "c": "to run"}
    assert plan.steps["c"].reason == "upstream step 'b' will run"
    result = load().run({"n": 4}, client=client, compute=compute)
    assert ran(result) == {"b", "c"}
    assert result.steps["b"].reason.startswith("code: module 'deep' changed")
    assert result.steps["c"].reason.startswith("inputs: input 'b' changed")
    # an edit that leaves b's output unchanged: b runs again, c is reused (its input digest is the same)
    write(project / "helpers.py", "from deep import scale\n\ndef double(x):\n    return scale(x) + scale(x)\n")
    result = load().run({"n": 4}, client=client, compute=compute)
    assert ran(result) == {"b"} and result.steps["c"].status == "cached"
    # --force runs everything; explain says which component changed
    assert ran(load().run({"n": 4}, force=True, client=client, compute=compute)) == set("abcde")
    info = explain_step(client, result.run_id or "", "b")
    assert [c["component"] for c in info["changes"]] == ["code"] and info["status"] == "ran"


def test_cache_false_and_missing_outputs_make_a_step_run(
    client: Client, project: Path, load: Callable[..., Pipeline], compute: Executor
) -> None:
    flow = (project / "flow.py").read_text().replace("@step\ndef d(", "@step(cache=False)\ndef d(")
    write(project / "flow.py", flow)
    first = load().run(client=client, compute=compute)
    digest = first.steps["e"].outputs["e"]["digest"]
    client.artifacts.delete(digest)
    again = load().run(client=client, compute=compute)
    assert ran(again) == {"d", "e"}
    assert again.steps["d"].reason == "cache disabled for this step (cache=False)"
    assert "missing from the artifact store" in again.steps["e"].reason
    assert client.artifacts.exists(digest)


def test_runs_are_tracked_with_tags_lineage_and_logs(
    client: Client, load: Callable[..., Pipeline], compute: Executor
) -> None:
    result = load().run({"a.n": 2}, client=client, compute=compute)
    parent = client.get_run(result.run_id or "")
    assert parent.status is RunStatus.FINISHED and parent.tags[TAG.KIND] == "pipeline"
    assert parent.params["a.n"] == "2" and client.get_experiment(parent.experiment_id).name == "flow"
    b = client.get_run(result.steps["b"].run_id or "")
    assert b.parent_id == parent.id and b.tags[TAG.STEP] == "b" and b.tags[TAG.KEY] == result.steps["b"].key
    assert json.loads(b.tags[TAG.KEY_JSON])["inputs"] == {"a": result.steps["a"].outputs["a"]["digest"]}
    assert json.loads(b.tags[TAG.OUTPUTS])["b"]["materialiser"] == "json"
    edges = client.store.list_lineage(f"run:{b.id}", direction="up")
    assert [(e.source, e.relation) for e in edges] == [(f"run:{result.steps['a'].run_id}", "pipeline_input")]
    logs = step_logs(client, result.run_id or "", "a")
    assert logs == {"a": {"stdout.txt": "a ran with 2\n"}}
    cached = load().run({"a.n": 2}, client=client, compute=compute)
    assert step_logs(client, cached.run_id or "", "a") == logs  # a cached step shows the logs it reused


RENDEZVOUS = """
import pathlib, time
from mloop.pipelines import Pipeline, step

def meet(me: str, other: str, folder: str) -> float:
    # each step waits (up to 20 s) until the other has started: only possible if they run at the same time
    pathlib.Path(folder, me).touch()
    deadline = time.monotonic() + 20
    while not pathlib.Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never started while {me} was running")
        time.sleep(0.01)
    return time.monotonic()

@step
def left(*, folder: str) -> float:
    return meet("left", "right", folder)

@step
def right(*, folder: str) -> float:
    return meet("right", "left", folder)

@step
def both(left: float, right: float) -> float:
    return abs(left - right)

par = Pipeline("par", [left, right, both])
"""


def test_independent_steps_run_in_parallel(client: Client, tmp_path: Path, compute: Executor) -> None:
    from mloop.pipelines import load_pipeline

    write(tmp_path / "par.py", RENDEZVOUS)
    pipeline = load_pipeline(str(tmp_path / "par.py"))
    result = pipeline.run({"folder": str(tmp_path)}, client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    assert ran(result) == {"left", "right", "both"}


FAILING = """
import pathlib
from mloop.pipelines import Pipeline, step

@step
def ok(*, n: int = 1) -> int:
    return n

@step
def boom(ok: int) -> int:
    raise ValueError("boom " + str(ok))

@step
def after(boom: int) -> int:
    return boom

@step
def other(ok: int) -> int:
    return ok + 1

@step(retries=2, backoff=0)
def flaky(*, marker: str) -> int:
    path = pathlib.Path(marker)
    tries = int(path.read_text()) if path.exists() else 0
    path.write_text(str(tries + 1))
    if tries < 2:
        raise RuntimeError("not yet")
    return tries

@step(timeout=0.3)
def slow() -> int:
    import time
    time.sleep(5)
    return 0

p = Pipeline("failing", [ok, boom, after, other, flaky, slow])
"""


def test_a_failure_stops_only_its_dependents_retries_and_timeouts(
    client: Client, tmp_path: Path, compute: Executor
) -> None:
    from mloop.pipelines import load_pipeline

    write(tmp_path / "failing.py", FAILING)
    marker = str(tmp_path / "tries")
    result = load_pipeline(str(tmp_path / "failing.py")).run({"marker": marker}, client=client, compute=compute)
    assert not result.ok and result.status == "FAILED"
    assert statuses(result) == {"ok": "ran", "boom": "failed", "after": "skipped", "other": "ran",
                                "flaky": "ran", "slow": "failed"}  # fmt: skip
    assert result.steps["after"].reason == "upstream step 'boom' failed" and result.steps["after"].run_id is None
    assert "ValueError: boom 1" in (result.steps["boom"].error or "")
    assert result.steps["flaky"].attempts == 3
    assert "ran longer than its timeout of 0.3 s" in (result.steps["slow"].error or "")
    boom = client.get_run(result.steps["boom"].run_id or "")
    assert boom.status is RunStatus.FAILED and boom.tags[TAG.ERROR] == "ValueError: boom 1"
    assert client.get_run(result.run_id or "").status is RunStatus.FAILED
    logs = step_logs(client, result.run_id or "", "flaky")["flaky"]
    assert "RuntimeError: not yet" in logs["error.txt"] and "RuntimeError: not yet" in logs["error.2.txt"]
    assert "error.3.txt" not in logs
    assert "ValueError" in step_logs(client, result.run_id or "", "boom")["boom"]["error.txt"]


def test_bad_parameters_fail_before_anything_runs(
    client: Client, load: Callable[..., Pipeline], compute: Executor
) -> None:
    with pytest.raises(InvalidInput, match="Unknown parameter 'nn'"):
        load().run({"nn": 1}, client=client, compute=compute)
    with pytest.raises(InvalidInput, match="not JSON"):
        load().run({"n": object()}, client=client, compute=compute)
    assert [e.name for e in client.list_experiments()] == []  # no pipeline run was started
