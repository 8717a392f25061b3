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
