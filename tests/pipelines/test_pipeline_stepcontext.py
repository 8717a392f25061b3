"""Inside a step: the step's own run is the active run (fluent API, nested runs), get_step_context, and what is
refused there (ending the step's run, holdout_access); two parallel steps writing to SQLite at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_cases import write

import mloop
from mloop.entities import RunStatus
from mloop.errors import NotFound
from mloop.pipelines import Pipeline, get_step_context, load_pipeline
from mloop.pipelines.executors import Executor
from mloop.tracking.client import Client

TRACKED = """
import json, os, tempfile
import mloop
from mloop.errors import AccessDenied, InvalidInput
from mloop.pipelines import Pipeline, get_step_context, step


def _log(side: str, n: int) -> dict:
    ctx = get_step_context()
    run = mloop.active_run()
    for i in range(n):  # many small writes while the other step writes too (two writer processes)
        mloop.log_metric("loss", 1.0 / (i + 1), step=i)
        if i % 10 == 0:
            run.flush()
    mloop.log_metrics({"acc": 0.75})
    mloop.log_param("side", side)
    mloop.log_params({"n_logged": n})
    mloop.set_tags({"team": side})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "note.txt")
        with open(path, "w") as f:
            f.write(f"written by {side}")
        mloop.log_artifact(path)
    with mloop.start_run(name=f"inner-{side}") as inner:
        inner.log_metric("x", 1.0)
    open_inner = mloop.start_run(name=f"left-open-{side}")  # ended by the worker when the step ends
    return {"step": ctx.step, "pipeline": ctx.pipeline, "pipeline_run": ctx.pipeline_run_id, "run": ctx.run_id,
            "active": run.id, "same": run is ctx.run, "client_store": ctx.client.settings.store_uri,
            "inner": inner.id, "inner_parent": inner.parent_id, "open_inner": open_inner.id}


@step
def left(*, n: int = 60) -> dict:
    return _log("left", n)


@step
def right(*, n: int = 60) -> dict:
    return _log("right", n)


@step
def refusals(left: dict) -> dict:
    out = {}
    try:
        mloop.end_run()
    except InvalidInput as exc:
        out["end"] = str(exc)
    try:
        with mloop.holdout_access("a look at the labels"):
            pass
    except AccessDenied as exc:
        out["holdout_access"] = str(exc)
    return out


@step
def fails(*, n: int = 3) -> int:
    mloop.log_metric("before_failure", 1.0)
    raise RuntimeError("boom")


tracked = Pipeline("tracked", [left, right, refusals])
failing = Pipeline("failing", [fails])
"""


def _load(project: Path, name: str) -> Pipeline:
    write(project / "tracked_steps.py", TRACKED)
    return load_pipeline(f"{project / 'tracked_steps.py'}:{name}")


def _output(client: Client, result: object, step: str) -> dict[str, object]:
    outputs = result.steps[step].outputs  # type: ignore[attr-defined]
    value = json.loads(client.artifacts.get_bytes(outputs[step]["digest"]))
    assert isinstance(value, dict)
    return value


def test_the_fluent_api_inside_a_step_logs_to_the_steps_own_run(
    client: Client, project: Path, compute: Executor
) -> None:
    result = _load(project, "tracked").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    for side in ("left", "right"):
        step_run_id = result.steps[side].run_id
        seen = _output(client, result, side)
        assert seen["step"] == side and seen["pipeline"] == "tracked"
        assert seen["pipeline_run"] == result.run_id
        assert seen["run"] == seen["active"] == step_run_id and seen["same"] is True
        assert seen["client_store"] == client.settings.store_uri
        record = client.get_run(step_run_id or "")
        assert record.status is RunStatus.FINISHED and record.parent_id == result.run_id  # ended by the parent
        assert record.metrics == {"loss": pytest.approx(1 / 60), "acc": 0.75}
        assert len(client.get_metric_history(record.id, "loss")) == 60
        assert record.params["side"] == side and record.params["n_logged"] == "60"
        assert record.params["n"] == "60"  # the step's parameter, recorded by the parent, is still there
        assert record.tags["team"] == side and record.tags["mloop.step.status"] == "ran"
        assert client.read_artifact(record.id, "note.txt") == f"written by {side}".encode()
        inner = client.get_run(str(seen["inner"]))
        assert inner.parent_id == step_run_id and inner.status is RunStatus.FINISHED and inner.metrics == {"x": 1.0}
        left_open = client.get_run(str(seen["open_inner"]))
        assert left_open.parent_id == step_run_id and left_open.status is RunStatus.FINISHED


def test_ending_the_steps_run_and_holdout_access_are_refused_inside_a_step(
    client: Client, project: Path, compute: Executor
) -> None:
    result = _load(project, "tracked").run(client=client, compute=compute)
    refused = _output(client, result, "refusals")
    assert "is ended by pipeline 'tracked' when the step returns" in str(refused["end"])
    assert "with mloop.start_run()" in str(refused["end"])
    step_ref = f"run:{result.steps['refusals'].run_id}"
    assert f"refused inside {step_ref}" in str(refused["holdout_access"])
    denied = client.events(types=["dataset.holdout_denied"], subject=step_ref)
    assert [e.payload["purpose"] for e in denied] == ["a look at the labels"]


def test_a_failing_step_keeps_what_it_logged_and_its_run_fails(
    client: Client, project: Path, compute: Executor
) -> None:
    result = _load(project, "failing").run(client=client, compute=compute)
    step = result.steps["fails"]
    assert step.status == "failed" and "RuntimeError: boom" in (step.error or "")
    record = client.get_run(step.run_id or "")
    assert record.status is RunStatus.FAILED and record.metrics == {"before_failure": 1.0}


def test_get_step_context_outside_a_step_names_the_fix(client: Client, project: Path) -> None:
    with pytest.raises(NotFound, match=r"only inside a step function while a pipeline runs it"):
        get_step_context()
    with mloop.start_run(), pytest.raises(NotFound, match=r"mloop.active_run\(\)"):  # a run is not a step
        get_step_context()
    step = _load(project, "tracked").steps["left"]
    with pytest.raises(NotFound):
        step(n=1)  # the step function called directly, outside a pipeline
