"""The tracking SDK against a real SQLite workspace: lifecycle, logging, search, artifacts, environment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import mloop
from mloop.entities import RunStatus
from mloop.errors import Conflict, InvalidInput, MloopError, NotFound
from mloop.tracking.client import Client


def test_start_run_logs_everything(client: Client) -> None:
    with mloop.start_run("exp", name="r1", params={"model": "rf", "n": 10}, tags={"team": "a"}) as run:
        assert mloop.active_run() is run
        for i in range(2500):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        run.log_metrics({"acc": 0.9, "f1": 0.8})
        run.log_param("depth", 3)
        run.set_tag("stage", "dev")
    assert mloop.active_run() is None
    got = mloop.get_run(run.id)
    assert got.status is RunStatus.FINISHED and got.end_time is not None
    assert got.params == {"model": "rf", "n": "10", "depth": "3"}
    assert got.tags == {"team": "a", "stage": "dev"}
    assert got.metrics["acc"] == 0.9 and got.metrics["loss"] == pytest.approx(1 / 2500)
    history = client.get_metric_history(run, "loss")
    assert [m.step for m in history] == list(range(2500))
    assert mloop.get_run(f"run:{run.id}") == got
    assert client.get_run(run.id[:12]) == got


def test_exception_marks_failed_and_keeps_values(client: Client) -> None:
    with pytest.raises(ZeroDivisionError), mloop.start_run("exp") as run:
        run.log_metric("x", 1.0)
        _ = 1 / 0
    got = client.get_run(run)
    assert got.status is RunStatus.FAILED
    assert got.metrics == {"x": 1.0}


def test_keyboard_interrupt_marks_killed(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), mloop.start_run("exp") as run:
        raise KeyboardInterrupt
    assert client.get_run(run).status is RunStatus.KILLED


def test_nested_runs(client: Client) -> None:
    with mloop.start_run("exp", name="parent") as parent:
        with mloop.start_run("exp", name="child") as child:
            assert mloop.active_run() is child
        assert mloop.active_run() is parent
    assert client.get_run(child).parent_id == parent.id
    assert client.get_run(parent).parent_id is None


def test_param_conflict_and_bad_values(client: Client) -> None:
    with mloop.start_run("exp", params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)  # same value again is fine
        with pytest.raises(Conflict, match="lr"):
            run.log_param("lr", 0.2)
        with pytest.raises(InvalidInput, match="acc"):
            run.log_metric("acc", "high")  # type: ignore[arg-type]
        run.log_metric("nan", math.nan)
    assert math.isnan(client.get_run(run).metrics["nan"])


def test_fluent_functions_need_a_run(client: Client) -> None:
    with pytest.raises(MloopError, match="No active run"):
        mloop.log_metric("x", 1.0)
    with mloop.start_run("exp") as run:
        mloop.log_metric("x", 2.0)
        mloop.log_params({"a": 1})
        mloop.set_tags({"b": 2})
    got = client.get_run(run)
    assert got.metrics == {"x": 2.0} and got.params == {"a": "1"} and got.tags == {"b": "2"}


def test_search_runs_and_dataframe(client: Client) -> None:
    for i, model in enumerate(["rf", "lr", "rf", "gb"]):
        with mloop.start_run("search", name=f"r{i}", params={"model": model}) as run:
            run.log_metric("acc", 0.8 + i * 0.05)
    found = mloop.search_runs("search", filter="metrics.acc > 0.82 and params.model = 'rf'")
    assert [r.name for r in found] == ["r2"]
    best = mloop.search_runs("search", order_by=["metrics.acc DESC"], max_results=2)
    assert [r.name for r in best] == ["r3", "r2"]
    frame = mloop.search_runs("search").to_pandas()
    assert set(frame.columns) >= {"run_id", "status", "params.model", "metrics.acc"}
    assert len(frame) == 4
    assert str(frame["start_time"].dtype).startswith("datetime64")
    with pytest.raises(NotFound, match="nope"):
        mloop.search_runs("nope")
    assert len(mloop.search_runs(max_results=None)) == 4


def test_artifacts_roundtrip(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    with mloop.start_run("art") as run:
        run.log_artifact(src / "a.txt")
        run.log_artifacts(src, prefix="all")
        run.log_dict({"k": [1, 2]}, "config.json")
        run.log_text("hello", "notes/readme.md")
        with pytest.raises(InvalidInput, match=r"\.\."):
            run.log_text("x", "../escape.txt")
        with pytest.raises(InvalidInput, match="not a file"):
            run.log_artifact(tmp_path / "missing.bin")
    paths = [a.path for a in client.list_artifacts(run)]
    assert paths == ["a.txt", "all/a.txt", "all/sub/b.txt", "config.json", "notes/readme.md"]
    assert json.loads(client.read_artifact(run, "config.json")) == {"k": [1, 2]}
    entries = {a.path: a for a in client.list_artifacts(run)}
    assert entries["a.txt"].digest == entries["all/a.txt"].digest  # content-addressed: stored once
    out = client.download_artifacts(run, "all", tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "beta"
    with pytest.raises(NotFound, match="nothing"):
        client.read_artifact(run, "nothing")


def test_log_figure(client: Client) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([1, 2, 3])
    with mloop.start_run("fig") as run:
        run.log_figure(fig, "plots/line.png")
        with pytest.raises(InvalidInput, match="figure"):
            run.log_figure(object(), "x.png")
    assert client.read_artifact(run, "plots/line.png").startswith(b"\x89PNG")


def test_environment_is_captured_once(client: Client) -> None:
    with mloop.start_run("env") as r1:
        pass
    with mloop.start_run("env") as r2:
        pass
    env = client.get_environment(r1)
    assert env["python"]["version"].count(".") == 2
    assert "sqlalchemy" in env["packages"]
    assert env["command"]
    assert client.get_run(r1).environment_digest == client.get_run(r2).environment_digest


def test_environment_records_git_state(tmp_path: Path) -> None:
    import subprocess

    from mloop.tracking.environment import git_state

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    clean = git_state(repo)
    assert clean is not None and clean["branch"] == "main" and clean["dirty"] is False
    assert len(clean["commit"]) == 40
    (repo / "train.py").write_text("print(2)\n")
    dirty = git_state(repo)
    assert dirty is not None and dirty["dirty"] is True and dirty["diff_digest"].startswith("sha256:")
    assert git_state(tmp_path) is None


def test_events_audit_trail(client: Client) -> None:
    with mloop.start_run("ev") as run:
        run.log_text("x", "x.txt")
    client.delete_run(run)
    client.restore_run(run)
    types = [e.type for e in client.events(subject=run.ref)]
    assert types == ["run.started", "artifact.logged", "run.finished", "run.deleted", "run.restored"]
