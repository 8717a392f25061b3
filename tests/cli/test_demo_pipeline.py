"""The demo's ``retrain`` pipeline, its steps called in this process inside runs (fast; the demo test runs the
published pipeline in worker processes): what each step records, that the holdout is private and never read by a
step, that ``register`` registers with the signature and the label, that shuffled labels make a worse model, and
the published definition (``data`` defaults to ``sensors@latest``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

import mloop
from mloop.cli.demo import pipeline as example
from mloop.cli.demo.baseline import PIPELINE_FILE, write_pipeline_file
from mloop.cli.demo.sensors import sensor_table
from mloop.tracking.client import Client


def _add(rows: int, seed: int, drift: bool = False) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sensors.parquet"
        sensor_table(rows, seed=seed, drift=drift).to_parquet(path, index=False)
        return str(mloop.Dataset.add(path, "sensors").dataset.ref)


def _chain(client: Client) -> dict[str, Any]:
    """Every step once, each in its own run (as the pipeline does), passing outputs along by hand."""
    out: dict[str, Any] = {"data": _add(2000, seed=0)}
    with mloop.start_run("example", "prepare") as run:
        out["train"], out["holdout"] = example.prepare(data=mloop.get_dataset("sensors@latest"))
        out["prepare_run"] = run.id
    for name, shuffled in (("fit", False), ("fit_shuffled", True)):
        with mloop.start_run("example", name) as run:
            out[name] = example.fit(out["train"], trees=30, shuffle_labels=shuffled)
            out[f"{name}_run"] = run.id
    with mloop.start_run("example", "register") as run:
        out["registered"] = example.register(out["fit"], out["train"], out["holdout"])
        out["register_run"] = run.id
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import contextvars

    root = tmp_path_factory.mktemp("retrain")
    context = contextvars.copy_context()

    def build() -> tuple[Client, dict[str, Any]]:
        c = Client(workspace=mloop.init_workspace(root / "ws"))
        mloop.use_client(c)
        return c, _chain(c)

    c, out = context.run(build)
    yield context, c, out
    c.close()


def test_prepare_splits_the_chosen_version_with_a_private_holdout(chain: Any) -> None:
    _, client, out = chain
    assert out["data"] == "data:sensors/1"
    assert out["train"].ref == "data:sensors-train/1" and out["holdout"] == "data:sensors-holdout/1"
    holdout = client.store.get_dataset_version("sensors-holdout", 1)
    assert holdout.private and holdout.rows == 500 and out["train"].info.rows == 1500


def test_fit_reads_the_train_split_and_logs_an_out_of_bag_score(chain: Any) -> None:
    _, client, out = chain
    inputs = {e.source for e in client.store.list_lineage(f"run:{out['fit_run']}", direction="up")}
    assert inputs == {"data:sensors-train/1"}
    good, shuffled = client.get_run(out["fit_run"]), client.get_run(out["fit_shuffled_run"])
    assert good.metrics["oob_roc_auc"] > 0.65 and good.metrics["rows"] == 1500
    assert shuffled.metrics["oob_roc_auc"] < 0.6  # shuffled labels: nothing learned
    assert good.params["estimator"] == "RandomForestClassifier"  # (the runner logs the step's parameters)


def test_register_registers_with_signature_and_label_and_never_reads_the_holdout(chain: Any) -> None:
    context, client, out = chain
    registered = out["registered"]
    assert registered == {"version": "model:sensors/1", "holdout": "data:sensors-holdout/1",
                          "train": "data:sensors-train/1"}  # fmt: skip
    version = client.store.get_model_version("sensors", 1)
    assert version.run_id == out["register_run"] and version.datasets == ("data:sensors-train/1",)
    assert client.store.list_evaluations("sensors", 1) == []  # evaluation is the gate's business
    evaluation = context.run(mloop.evaluate, "model:sensors/1", out["holdout"])  # the label comes from the version
    assert evaluation.metrics["roc_auc"] > 0.65
    for run in ("prepare_run", "fit_run", "fit_shuffled_run", "register_run"):  # no step read the holdout
        edges = client.store.list_lineage(f"run:{out[run]}", direction="up")
        assert "data:sensors-holdout/1" not in {e.source for e in edges}
    model = mloop.load_model("model:sensors/1", client=client)
    row = sensor_table(3, seed=9).drop(columns=["failure"])
    assert model.predict(row).shape == (3,)


def test_the_pipeline_is_the_documented_shape_and_publishes_its_data_parameter(tmp_path: Path) -> None:
    from mloop.pipelines.publish import definition_params

    graph = example.retrain.graph
    assert graph.order == ["prepare", "fit", "register"]
    assert graph.upstream["fit"] == {"prepare"} and graph.upstream["register"] == {"fit", "prepare"}
    assert example.retrain.name == "retrain" and example.retrain.experiment == "sensors"
    params = {p.name: p.default for p in definition_params(example.retrain)}
    assert params["prepare.data"] == "sensors@latest" and params["fit.shuffle_labels"] is False


def test_pipeline_file_is_written_once_and_an_edited_copy_is_kept(tmp_path: Path) -> None:
    path, edited = write_pipeline_file(tmp_path)
    original = Path(example.__file__).read_text(encoding="utf-8")
    assert path == tmp_path / PIPELINE_FILE and not edited and path.read_text(encoding="utf-8") == original
    assert write_pipeline_file(tmp_path) == (path, False)
    path.write_text(original.replace("trees: int = 60", "trees: int = 300"), encoding="utf-8")
    assert write_pipeline_file(tmp_path) == (path, True)
    assert "trees: int = 300" in path.read_text(encoding="utf-8")  # the user's edit is kept
