"""``mloop demo`` trains through the example pipeline in a temporary folder; the CLI then finds what it made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_cases import Invoke


@pytest.mark.slow
def test_demo_trains_through_the_pipeline_and_reuses_it(mloop: Invoke, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """One demo run, the user's `mloop pipelines run` of the file it wrote, then the demo again from inside its
    folder: the second and third runs reuse every step, and the demo does not nest a new folder."""
    target = tmp_path / "demo"
    out = mloop("demo", "--dir", str(target)).stdout
    assert "prepare → featurise → train_linear | train_forest → evaluate → register" in out
    assert "6 ran, 0 cached" in out
    for step in ("prepare", "featurise", "train_linear", "train_forest", "evaluate", "register"):
        assert step in out
    assert "Registered model:breast-cancer/1 (" in out and "promoted to production" in out
    assert "Production: model:breast-cancer/1" in out
    assert "Gate refused model:breast-cancer/2" in out
    assert (target / ".mloop" / "config.toml").is_file() and (target / "train_pipeline.py").is_file()
    monkeypatch.chdir(target)

    runs = json.loads(mloop("runs", "list", "--experiment", "breast-cancer", "--json").stdout)
    kinds = sorted(r["tags.mloop.pipeline.kind"] for r in runs)
    assert kinds == ["pipeline"] + ["step"] * 6  # the pipeline run and one run per step
    steps = {r["tags.mloop.step"]: r for r in runs if r["tags.mloop.pipeline.kind"] == "step"}
    for candidate in ("train_linear", "train_forest"):  # each candidate logged to its own step run
        assert 0.8 < steps[candidate]["metrics.val_accuracy"] <= 1
        assert steps[candidate]["params.estimator"]
    model = json.loads(mloop("models", "show", "model:breast-cancer@production", "--json").stdout)
    assert model["version"] == 1 and model["run_id"] == steps["register"]["run_id"]  # registered from the step's run
    assert model["datasets"] == ["data:breast-cancer-train/1"]
    lineage = json.loads(mloop("lineage", "run:" + steps["featurise"]["run_id"], "--json").stdout)
    read = {n["ref"] for n in lineage["upstream"]["children"]}  # the data it read, the step whose output it took
    assert read == {"data:breast-cancer-train/1", "run:" + steps["prepare"]["run_id"]}
    holdout = json.loads(mloop("data", "versions", "breast-cancer-holdout", "--json").stdout)
    assert holdout[0]["private"] is True

    again = json.loads(mloop("pipelines", "run", "train_pipeline.py:train", "--json").stdout)
    assert [s["status"] for s in again["steps"]] == ["cached"] * 6  # the file the demo wrote is the same pipeline
    mloop("pipelines", "publish", "train_pipeline.py:train")  # what retraining will trigger
    triggered = json.loads(mloop("pipelines", "trigger", "train", "--json").stdout)
    assert [s["status"] for s in triggered["steps"]] == ["cached"] * 6
    edited = (target / "train_pipeline.py").read_text().replace("trees: int = 60,", "trees: int = 80,")
    (target / "train_pipeline.py").write_text(edited)  # the user edits a step: it and what follows would re-run
    plan = json.loads(mloop("pipelines", "plan", "train_pipeline.py:train", "--json").stdout)
    assert [s["status"] for s in plan["steps"]] == ["cached"] * 3 + ["to run"] * 3
    assert plan["steps"][3]["step"] == "train_forest" and "code" in plan["steps"][3]["reason"]

    out = mloop("demo").stdout  # from inside the demo folder: reused, every step cached; the edited file kept
    assert f"workspace: {target / '.mloop'}" in out and not (target / "mloop-demo").exists()
    assert "train_pipeline.py differs from this mloop's example: kept" in out
    assert (target / "train_pipeline.py").read_text() == edited
    assert "every step reused from the cache (6 cached)" in out
    assert "Nothing new to register: model:breast-cancer/1" in out
    for candidate in ("train_linear", "train_forest"):  # candidates shown with the runs that trained them
        assert steps[candidate]["run_id"][-8:] in out
    assert "Production: model:breast-cancer/1" in out


def test_demo_folder_is_reused_from_inside(tmp_path: Path) -> None:
    from mloop.cli.demo.tour import demo_root
    from mloop.workspace import init_workspace

    assert demo_root(None, cwd=tmp_path) == tmp_path / "mloop-demo"
    assert demo_root(tmp_path / "x", cwd=tmp_path) == tmp_path / "x"
    init_workspace(tmp_path / "mloop-demo").close()  # a demo folder (made before demos left a marker)
    (tmp_path / "mloop-demo" / "sub").mkdir()
    assert demo_root(None, cwd=tmp_path / "mloop-demo") == tmp_path / "mloop-demo"
    assert demo_root(None, cwd=tmp_path / "mloop-demo" / "sub") == tmp_path / "mloop-demo"
    init_workspace(tmp_path / "project").close()  # any other workspace gets its own ./mloop-demo
    assert demo_root(None, cwd=tmp_path / "project") == tmp_path / "project" / "mloop-demo"


def test_demo_says_how_to_put_mloop_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.cli.demo.tour import path_hint

    monkeypatch.setenv("PATH", str(tmp_path))  # no mloop here
    hint = path_hint()
    assert hint is not None and ("activate" in hint or "PATH" in hint)
    (tmp_path / "mloop").write_text("#!/bin/sh\n")
    (tmp_path / "mloop").chmod(0o755)
    assert path_hint() is None
