"""``mloop demo`` runs the loop end to end in a temporary folder; the CLI then finds what it made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_cases import Invoke


@pytest.mark.slow
def test_demo(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "demo"
    out = mloop("demo", "--dir", str(target)).stdout
    assert "Production: model:breast-cancer/1" in out
    assert "Gate refused model:breast-cancer/2" in out
    assert (target / ".mloop" / "config.toml").is_file()
    monkeypatch.chdir(target)
    runs = json.loads(mloop("runs", "list", "--experiment", "breast-cancer", "--json").stdout)
    assert len(runs) == 5  # the grid-search parent and four trainings
    model = json.loads(mloop("models", "show", "model:breast-cancer@production", "--json").stdout)
    assert model["version"] == 1 and model["datasets"] == ["data:breast-cancer-train/1"]
    lineage = json.loads(mloop("lineage", "model:breast-cancer/1", "--json").stdout)
    assert lineage["upstream"]["children"][0]["ref"].startswith("run:")
    holdout = json.loads(mloop("data", "versions", "breast-cancer-holdout", "--json").stdout)
    assert holdout[0]["private"] is True


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


@pytest.mark.slow
def test_demo_run_inside_its_folder_does_not_nest(mloop: Invoke, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    target = tmp_path / "mine"
    mloop("demo", "--dir", str(target))
    monkeypatch.chdir(target)
    out = mloop("demo").stdout
    assert f"workspace: {target / '.mloop'}" in out
    assert not (target / "mloop-demo").exists()


def test_demo_says_how_to_put_mloop_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.cli.demo.tour import path_hint

    monkeypatch.setenv("PATH", str(tmp_path))  # no mloop here
    hint = path_hint()
    assert hint is not None and ("activate" in hint or "PATH" in hint)
    (tmp_path / "mloop").write_text("#!/bin/sh\n")
    (tmp_path / "mloop").chmod(0o755)
    assert path_hint() is None
