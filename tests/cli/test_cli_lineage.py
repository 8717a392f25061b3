"""``mloop lineage``: a run that read a dataset shows downstream of it, and the dataset upstream of the run."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path

from cli_cases import Invoke, Seeded
from test_cli_data import sensors, write_sensors, ws  # noqa: F401  (fixtures)

import mloop
from mloop.tracking.client import Client


def _train_on(workspace: Seeded, ref: str) -> str:
    """Start a run through the SDK, read ``ref`` inside it, return the run's reference.

    Runs in a copy of the context so the fluent client and run stack do not leak into other tests.
    """

    def train() -> str:
        client = Client(workspace.store_uri, workspace.artifact_uri)
        try:
            mloop.use_client(client)
            with mloop.start_run("churn", "fit") as run:
                assert len(mloop.get_dataset(ref).to_pandas()) == 160
            return run.ref
        finally:
            client.close()

    return contextvars.copy_context().run(train)


def test_lineage_shows_the_run_downstream(mloop: Invoke, ws: Seeded, sensors: Path) -> None:  # noqa: F811
    mloop("data", "split", "data:sensors/1", "--holdout", "0.2", "--seed", "3")
    run_ref = _train_on(ws, "data:sensors-train@latest")

    trees = json.loads(mloop("lineage", "data:sensors@latest", "--json").stdout)
    assert trees["upstream"] == {"ref": "data:sensors/1"}
    down = trees["downstream"]
    assert down["ref"] == "data:sensors/1"
    kids = {c["ref"]: c for c in down["children"]}
    assert set(kids) == {"data:sensors-train/1", "data:sensors-holdout/1"}
    assert kids["data:sensors-train/1"]["relation"] == "train"
    assert kids["data:sensors-train/1"]["children"] == [{"ref": run_ref, "relation": "input"}]

    out = mloop("lineage", "data:sensors/1").stdout
    assert "Upstream (made from): data:sensors/1" in out and "nothing recorded upstream" in out
    assert "Downstream (used by): data:sensors/1" in out
    assert "data:sensors-train/1  → train" in out and f"{run_ref}  → input" in out

    short = f"run:{run_ref[-8:]}"
    up = json.loads(mloop("lineage", short, "--json").stdout)["upstream"]
    assert up["ref"] == run_ref
    assert up["children"] == [
        {"ref": "data:sensors-train/1", "relation": "input",
         "children": [{"ref": "data:sensors/1", "relation": "train"}]}
    ]  # fmt: skip
    out = mloop("lineage", short).stdout
    assert "data:sensors-train/1  ← input" in out and "data:sensors/1  ← train" in out
    assert "nothing recorded downstream" in out


def test_lineage_errors(mloop: Invoke, ws: Seeded, tmp_path: Path) -> None:  # noqa: F811
    assert "Invalid reference 'sensors'" in mloop("lineage", "sensors", code=2).stderr
    assert "No dataset named 'nope'" in mloop("lineage", "data:nope@latest", code=3).stderr
    mloop("data", "add", str(write_sensors(tmp_path / "s.csv", rows=10)), "--name", "s")
    assert json.loads(mloop("lineage", "data:s/1", "--json").stdout) == {
        "upstream": {"ref": "data:s/1"},
        "downstream": {"ref": "data:s/1"},
        "evaluated_on": {"ref": "data:s/1"},
    }
    assert "Evaluated on" not in mloop("lineage", "data:s/1").stdout  # only models are evaluated
