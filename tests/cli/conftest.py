"""Fixtures for the CLI tests: a real SQLite workspace with a few tracked runs, and a runner for ``mloop``.

The workspace is selected through MLOOP_URI / MLOOP_ARTIFACT_URI (the root conftest already points HOME and
MLOOP_HOME at a temporary folder), so no test touches ~/.mloop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_cases import Invoke, Seeded
from typer.testing import CliRunner, Result

from mloop.cli.app import app
from mloop.tracking.client import Client
from mloop.workspace import init_workspace


@pytest.fixture
def mloop() -> Invoke:
    """``mloop(*args, code=0)``: run the CLI in-process and check its exit code."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args), prog_name="mloop")
        detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\nexception: {result.exception!r}"
        assert result.exit_code == code, detail
        if code != 0:
            assert "Traceback" not in result.output, detail
        return result

    return invoke


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """Three finished runs in experiment ``iris`` (params, metric histories, artifacts), one in ``other``."""
    root = tmp_path / "ws"
    ws = init_workspace(root)
    store_uri, artifact_uri = ws.settings.store_uri, str(ws.settings.artifact_uri)
    client = Client(workspace=ws)
    runs: dict[str, str] = {}
    for name, lr, model in (("alpha", 0.1, "rf"), ("beta", 0.01, "rf"), ("gamma", 0.1, "svm")):
        with client.start_run("iris", name, params={"lr": lr, "model": model}, tags={"team": "ml"}) as run:
            for step in range(10):
                run.log_metrics({"loss": lr * 10 / (step + 1), "acc": 1 - lr / (step + 1)}, step=step)
            run.log_text(f"model {name}\n", "model/card.txt")
            run.log_bytes(name.encode() * 1000, f"data/{name}.bin")
            runs[name] = run.id
    with client.start_run("other", "delta", params={"lr": 0.5}) as run:
        run.log_metric("loss", 0.5)
        runs["delta"] = run.id
    client.close()
    monkeypatch.setenv("MLOOP_URI", store_uri)
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", artifact_uri)
    monkeypatch.chdir(tmp_path)
    return Seeded(root, store_uri, artifact_uri, runs)
