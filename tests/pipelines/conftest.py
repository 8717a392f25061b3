"""Fixtures for pipeline tests: a project folder with a pipeline file and helper modules, loaded like the CLI does.

Pipelines are loaded from files (not defined in test modules) because worker processes import steps by module,
and because editing a helper module on disk must change exactly the keys of the steps that import it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pipeline_cases import DEEP, FLOW, HELPERS, write

from mloop.pipelines import Pipeline, load_pipeline


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write(root / "helpers.py", HELPERS)
    write(root / "deep.py", DEEP)
    write(root / "flow.py", FLOW)
    return root


@pytest.fixture
def load(project: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Pipeline]:
    """``load(name="flow", file="flow.py")``: the pipeline, loaded afresh from the project folder.

    Every test has its own project folder but the same module names, so ones another test imported are dropped.
    """

    def _load(name: str = "flow", file: str = "flow.py") -> Pipeline:
        for module in ("helpers", "deep"):
            monkeypatch.delitem(sys.modules, module, raising=False)
        return load_pipeline(f"{project / file}:{name}")

    return _load
