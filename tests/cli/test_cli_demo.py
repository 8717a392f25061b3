"""``mloop demo`` runs the library's demo end to end in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_cases import Invoke


@pytest.mark.slow
def test_demo(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn", reason="the demo trains scikit-learn models")
    target = tmp_path / "demo"
    out = mloop("demo", "--dir", str(target)).stdout
    assert "Best run" in out
    assert (target / ".mloop" / "config.toml").is_file()
    monkeypatch.chdir(target)
    runs = json.loads(mloop("runs", "list", "--experiment", "breast-cancer", "--json").stdout)
    assert len(runs) >= 5
    best = next(r for r in runs if "params.best_run" in r)["params.best_run"]
    assert json.loads(mloop("runs", "show", best, "--json").stdout)["run_id"] == best
