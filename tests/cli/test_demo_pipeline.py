"""The example training pipeline's steps, called in this process inside a run (fast; the demo test runs them in
worker processes): what each step records, that evaluate picks the better candidate on validation data, that
register promotes only a model that beats production, and that no step ever reads the private holdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mloop
from mloop.cli.demo import pipeline as example
from mloop.cli.demo.show import stages
from mloop.cli.demo.tour import PIPELINE_FILE, write_pipeline_file
from mloop.tracking.client import Client


def _chain(client: Client) -> dict[str, Any]:
    """Every step once, each in its own run (as the pipeline does), passing outputs along by hand."""
    out: dict[str, Any] = {}
    with mloop.start_run("example", "prepare") as run:
        out["train"], out["holdout"] = example.prepare()
        out["prepare_run"] = run.id
    with mloop.start_run("example", "featurise") as run:
        features, out["x_fit"], out["y_fit"], out["x_val"], out["y_val"] = example.featurise(out["train"])
        out["featurise_run"] = run.id
    args = (features, out["x_fit"], out["y_fit"], out["x_val"], out["y_val"])
    with mloop.start_run("example", "linear") as run:
        out["linear"] = example.train_linear(*args, epochs=5)
        out["linear_run"] = run.id
    with mloop.start_run("example", "forest") as run:
        out["forest"] = example.train_forest(*args, trees=25, max_depth=3)
        out["forest_run"] = run.id
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import contextvars

    root = tmp_path_factory.mktemp("example")
    context = contextvars.copy_context()

    def build() -> tuple[Client, dict[str, Any]]:
        c = Client(workspace=mloop.init_workspace(root / "ws"))
        mloop.use_client(c)
        return c, _chain(c)

    c, out = context.run(build)
    yield context, c, out
    c.close()


def test_steps_record_data_lineage_and_metrics(chain: Any) -> None:
    _, client, out = chain
    assert out["train"].ref == "data:breast-cancer-train/1" and out["holdout"] == "data:breast-cancer-holdout/1"
    assert client.store.get_dataset_version("breast-cancer-holdout", 1).private
    inputs = {e.source for e in client.store.list_lineage(f"run:{out['featurise_run']}", direction="up")}
    assert inputs == {"data:breast-cancer-train/1"}  # featurise read the train split, and nothing else
    linear, forest = client.get_run(out["linear_run"]), client.get_run(out["forest_run"])
    assert len(client.get_metric_history(linear.id, "val_accuracy")) == 5  # one value per epoch
    assert len(client.get_metric_history(forest.id, "val_accuracy")) == 3  # 10, 20, 25 trees
    for run in (linear, forest):
        assert 0.8 < run.metrics["val_accuracy"] <= 1 and 0.8 < run.metrics["val_roc_auc"] <= 1
    assert (
        linear.params["estimator"].startswith("SGDClassifier")
        and forest.params["estimator"] == "RandomForestClassifier"
    )
    rows = len(out["x_fit"]) + len(out["x_val"])
    assert rows == client.store.get_dataset_version("breast-cancer-train", 1).rows and len(out["x_val"]) == 86


def test_evaluate_picks_the_better_candidate_on_validation(chain: Any) -> None:
    context, _, out = chain
    data = (out["x_val"], out["y_val"])

    def pick(metric: str) -> Any:
        with mloop.start_run("example", f"evaluate-{metric}"):
            return example.evaluate(out["linear"], out["forest"], *data, metric=metric)

    for metric in ("roc_auc", "accuracy"):
        best, runner_up, choice = context.run(pick, metric)
        scores = choice["scores"]
        key = f"val_{metric}"
        assert choice["metric"] == metric and {choice["winner"], choice["runner_up"]} == {"linear", "forest"}
        assert (scores[choice["winner"]][key], scores[choice["winner"]]["val_accuracy"]) >= (
            scores[choice["runner_up"]][key],
            scores[choice["runner_up"]]["val_accuracy"],
        )
        assert best is out[choice["winner"]] and runner_up is out[choice["runner_up"]]
    with pytest.raises(ValueError, match="metric='f1' is not one of"):
        context.run(pick, "f1")


def test_register_promotes_only_a_model_that_beats_production(chain: Any) -> None:
    context, client, out = chain

    def register(model: Any) -> dict[str, Any]:
        with mloop.start_run("example", "register"):
            result: dict[str, Any] = example.register(model, out["train"], out["holdout"])
            return result

    first = context.run(register, out["linear"])
    assert first["version"] == "model:breast-cancer/1" and first["promoted"] is True
    assert first["metrics"]["roc_auc"] > 0.9 and first["report"]["passed"] is True
    assert client.store.get_model_version("breast-cancer", 1).datasets == ("data:breast-cancer-train/1",)
    again = context.run(register, out["linear"])  # the same model cannot beat itself
    assert again["version"] == "model:breast-cancer/2" and again["promoted"] is False
    failed = [c["check"] for c in again["report"]["checks"] if not c["passed"]]
    assert failed and failed[0].startswith("beats(")
    assert client.store.get_model_version("breast-cancer", alias="production").version == 1
    # the holdout was read only by mloop's evaluation, never by a step
    reads = client.store.list_events(types=["dataset.holdout_read"], subject="data:breast-cancer-holdout/1").items
    assert reads and {e.payload.get("via") for e in reads} == {"evaluation"}
    for run in ("prepare_run", "featurise_run", "linear_run", "forest_run"):
        edges = client.store.list_lineage(f"run:{out[run]}", direction="up")
        assert "data:breast-cancer-holdout/1" not in {e.source for e in edges}


def test_pipeline_file_is_written_once_and_an_edited_copy_is_kept(tmp_path: Path) -> None:
    path, edited = write_pipeline_file(tmp_path)
    original = Path(example.__file__).read_text(encoding="utf-8")
    assert path == tmp_path / PIPELINE_FILE and not edited and path.read_text(encoding="utf-8") == original
    assert write_pipeline_file(tmp_path) == (path, False)
    path.write_text(original.replace("trees: int = 60", "trees: int = 300"), encoding="utf-8")
    assert write_pipeline_file(tmp_path) == (path, True)
    assert "trees: int = 300" in path.read_text(encoding="utf-8")  # the user's edit is kept


def test_the_pipeline_is_the_documented_shape() -> None:
    graph = example.train.graph
    assert graph.order[0] == "prepare" and graph.order[-1] == "register"
    assert graph.upstream["train_linear"] == graph.upstream["train_forest"] == {"featurise"}  # parallel
    assert graph.upstream["evaluate"] == {"train_linear", "train_forest", "featurise"}
    assert graph.upstream["register"] == {"evaluate", "prepare"}
    assert example.train.experiment == "breast-cancer"
    assert stages(graph) == "prepare → featurise → train_linear | train_forest → evaluate → register"
