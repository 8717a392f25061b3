"""``mloop pipelines run / plan / explain / logs`` end to end, in-process, on a real workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_cases import write
from typer.testing import CliRunner, Result

from mloop.cli.app import app
from mloop.workspace import init_workspace


def mloop(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="mloop")
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


@pytest.fixture
def cwd(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    init_workspace(project)
    monkeypatch.chdir(project)
    for module in ("helpers", "deep"):
        monkeypatch.delitem(__import__("sys").modules, module, raising=False)
    return project


def test_run_plan_explain_logs(cwd: Path) -> None:
    out = mloop("pipelines", "run", "flow.py:flow", "-p", "n=2", "--workers", "2").stdout
    assert "FINISHED" in out and "no earlier run of this step" in out
    plan = mloop("pipelines", "plan", "flow.py", "-p", "a.n=2").stdout
    assert plan.count("cached") == 5 and "same key as run" in plan
    plan = json.loads(mloop("pipelines", "plan", "flow.py:flow", "-p", "n=3", "--json").stdout)
    assert {s["step"]: s["status"] for s in plan["steps"]}["d"] == "cached"
    assert plan["steps"][0]["reason"] == "params: parameter 'n' changed: 2 -> 3"
    result = json.loads(mloop("pipelines", "run", "flow.py:flow", "-p", "n=3", "--json").stdout)
    run_id = result["run_id"]
    explained = mloop("pipelines", "explain", run_id, "a").stdout
    assert "params" in explained and "parameter 'n' changed: 2 -> 3" in explained
    assert "Same key" in mloop("pipelines", "explain", run_id[-8:], "d").stdout
    assert "a ran with 3" in mloop("pipelines", "logs", run_id, "a").stdout
    assert json.loads(mloop("pipelines", "logs", run_id, "--json").stdout)["a"] == {"stdout.txt": "a ran with 3\n"}


def test_errors_exit_with_their_codes(cwd: Path) -> None:
    assert "Unknown parameter 'x'" in mloop("pipelines", "run", "flow.py", "-p", "x=1", code=2).stderr
    assert "is not KEY=VALUE" in mloop("pipelines", "plan", "flow.py", "-p", "novalue", code=2).stderr
    assert "not a Python file" in mloop("pipelines", "plan", "nope.py:flow", code=2).stderr
    run_id = json.loads(mloop("pipelines", "run", "flow.py", "--json").stdout)["run_id"]
    assert "has no step run 'zz'" in mloop("pipelines", "explain", run_id, "zz", code=3).stderr
    write(
        cwd / "bad.py",
        """
        from mloop.pipelines import Pipeline, step

        @step
        def f() -> int:
            raise ValueError("x")

        p = Pipeline("bad", [f])
    """,
    )
    failed = mloop("pipelines", "run", "bad.py", code=1)
    assert "FAILED" in failed.stdout and "ValueError: x" in failed.stderr
