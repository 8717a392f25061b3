"""Models in pipelines: registering from a step (the version's run is the step's run, so its lineage reaches the
pipeline run and the data the step read), model versions passed between steps, the contamination gate refusing
a model from a step that reached for the holdout, register_if_better (holdout evaluation) inside a step; and the
whole flow on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipeline_cases import write
from test_pipeline_datasets import add_split

import mloop
from mloop.entities import ModelVersion, RunStatus
from mloop.errors import GateFailed
from mloop.pipelines import LocalExecutor, Pipeline, PipelineResult, load_pipeline
from mloop.pipelines.executors import Executor
from mloop.pipelines.materialisers import dumps, loads
from mloop.tracking.client import Client

STEPS = """
import contextlib

import pandas as pd

import mloop
from mloop import Dataset
from mloop.entities import ModelVersion
from mloop.errors import AccessDenied
from mloop.pipelines import DatasetRef, Pipeline, get_step_context, step
from sklearn.linear_model import LogisticRegression


def fit(frame, C=1.0):
    return LogisticRegression(C=C).fit(frame.drop(columns=["label"]), frame["label"])


@step
def train(*, data: DatasetRef = "churn-train@latest", C: float = 1.0) -> ModelVersion:
    return mloop.register_model(fit(data.to_pandas(), C), "churn")


@step
def score(train: ModelVersion, *, data: DatasetRef = "churn-train@latest") -> dict:
    model = mloop.load_model(train.ref)
    frame = data.to_pandas()
    acc = float((model.predict(frame.drop(columns=["label"])) == frame["label"]).mean())
    mloop.log_metric("train_acc", acc)
    return {"ref": train.ref, "run_id": train.run_id, "acc": acc}


@step
def sneaky(*, data: DatasetRef = "churn-train@latest") -> ModelVersion:
    with contextlib.suppress(AccessDenied):
        mloop.get_dataset("churn-holdout@latest").to_pandas()
    return mloop.register_model(fit(data.to_pandas()), "churn")


@step
def gate(*, data: DatasetRef = "churn-train@latest", holdout: str = "data:churn-holdout/1") -> dict:
    result = mloop.register_if_better(fit(data.to_pandas()), "churn", data=holdout)
    return {"ref": result.version.ref, "run_id": result.version.run_id, "promoted": result.promoted,
            "step_run": get_step_context().run_id}


@step
def peek_then_pass(*, data: DatasetRef = "churn-train@latest") -> pd.DataFrame:
    with contextlib.suppress(AccessDenied):
        mloop.get_dataset("churn-holdout@latest").to_pandas()
    return data.to_pandas()


@step
def fit_downstream(peek_then_pass: pd.DataFrame) -> ModelVersion:
    return mloop.register_model(fit(peek_then_pass), "churn")


@step
def split_here(*, source: str = "data:churn/1") -> Dataset:
    return mloop.split_dataset(source, holdout=0.3, seed=1, stratify="label").train


@step
def fit_split(split_here: Dataset) -> ModelVersion:
    return mloop.register_model(fit(split_here.to_pandas()), "churn")


registered = Pipeline("registered", [train, score])
upstream_peek = Pipeline("upstream_peek", [peek_then_pass, fit_downstream])
split_upstream = Pipeline("split_upstream", [split_here, fit_split])
contaminated = Pipeline("contaminated", [sneaky])
gated = Pipeline("gated", [gate])
"""


def load(project: Path, name: str) -> Pipeline:
    write(project / "model_steps.py", STEPS)
    return load_pipeline(f"{project / 'model_steps.py'}:{name}")


def value(client: Client, result: PipelineResult, step: str) -> Any:
    return json.loads(client.artifacts.get_bytes(result.steps[step].outputs[step]["digest"]))


def check_registered_from_the_step(client: Client, project: Path, tmp_path: Path, compute: Executor) -> None:
    split = add_split(client, tmp_path)
    result = load(project, "registered").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    train_run = result.steps["train"].run_id
    version = client.store.get_model_version("churn", 1)
    assert version.run_id == train_run and version.source == f"run:{train_run}/model"
    assert split.train.ref in version.datasets  # the data the step read
    assert client.get_run(train_run or "").parent_id == result.run_id  # hence the pipeline run
    edges = client.store.list_lineage(version.ref, direction="up")
    assert [(e.source, e.relation) for e in edges] == [(f"run:{train_run}", "output")]
    assert result.steps["train"].outputs["train"]["materialiser"] == "reference"
    scored = value(client, result, "score")
    assert scored["ref"] == version.ref and scored["run_id"] == train_run and scored["acc"] > 0.6
    assert client.get_run(result.steps["score"].run_id or "").metrics["train_acc"] == pytest.approx(scored["acc"])
    # a cached re-run registers nothing new; a new parameter value trains and registers version 2
    again = load(project, "registered").run(client=client, compute=compute)
    assert {s.status for s in again.steps.values()} == {"cached"}
    assert [v.version for v in client.store.list_model_versions("churn").items] == [1]
    load(project, "registered").run({"C": 0.1}, client=client, compute=compute)
    assert sorted(v.version for v in client.store.list_model_versions("churn").items) == [1, 2]


def test_a_model_registered_in_a_step_has_the_steps_run_as_its_run(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    check_registered_from_the_step(client, project, tmp_path, compute)


def test_registering_from_a_step_on_postgresql(postgres_uri: str, project: Path, tmp_path: Path) -> None:
    workspace = mloop.init_workspace(tmp_path / "pg", store_uri=postgres_uri, artifact_uri=str(tmp_path / "blobs"))
    client = Client(workspace=workspace)
    mloop.use_client(client)
    try:
        check_registered_from_the_step(client, project, tmp_path, LocalExecutor(max_workers=2))
    finally:
        client.close()


def test_a_model_from_a_step_that_reached_for_the_holdout_is_refused_by_the_gate(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    split = add_split(client, tmp_path)
    result = load(project, "contaminated").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}  # the refusal was caught by the step
    step_run = result.steps["sneaky"].run_id
    version = client.store.get_model_version("churn", 1)
    assert version.run_id == step_run and split.holdout.ref in version.datasets
    mloop.evaluate(version.ref, split.holdout.ref)
    with pytest.raises(GateFailed, match=rf"contaminated: run:{step_run} tried to read \(refused\) "):
        mloop.promote("churn", 1, to="production")


def test_a_holdout_attempt_in_an_upstream_step_taints_the_model_registered_downstream(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    split = add_split(client, tmp_path)
    result = load(project, "upstream_peek").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    version = client.store.get_model_version("churn", 1)
    assert version.run_id == result.steps["fit_downstream"].run_id
    mloop.evaluate(version.ref, split.holdout.ref)
    peek_run = result.steps["peek_then_pass"].run_id
    with pytest.raises(GateFailed, match=rf"contaminated: run:{peek_run} tried to read \(refused\) "):
        mloop.promote("churn", 1, to="production")


def test_splitting_in_an_upstream_step_is_not_contamination(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    add_split(client, tmp_path)  # data:churn/1
    result = load(project, "split_upstream").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    split_run = result.steps["split_here"].run_id
    assert ("data:churn/1", "input") in [(e.source, e.relation) for e in
                                         client.store.list_lineage(f"run:{split_run}", direction="up")]  # fmt: skip
    mloop.evaluate("model:churn/1", "data:churn-holdout/2")  # the holdout the step split off
    report = mloop.promote("churn", 1, to="production")
    row = next(c for c in report.checks if c.check.startswith("uncontaminated"))
    assert row.passed


def test_register_if_better_inside_a_step_evaluates_on_the_holdout(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    split = add_split(client, tmp_path)
    result = load(project, "gated").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    seen = value(client, result, "gate")
    assert seen["run_id"] == seen["step_run"] == result.steps["gate"].run_id
    assert seen["promoted"] is True and client.store.get_model_version("churn", alias="candidate").ref == seen["ref"]
    # evaluation is the one allowed way to a holdout: audited, not lineage, so the model stays clean
    reads = client.events(types=["dataset.holdout_read"], subject=split.holdout.ref)
    assert reads and {e.payload["via"] for e in reads} == {"evaluation"}
    assert client.get_run(seen["run_id"]).status is RunStatus.FINISHED
    mloop.promote("churn", 1, to="production")  # the uncontaminated check passes


def test_model_version_reference_round_trip(client: Client, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    split = add_split(client, tmp_path)
    frame = split.train.to_pandas()
    version = mloop.register_model(LogisticRegression().fit(frame.drop(columns=["label"]), frame["label"]), "churn")
    data, m = dumps(version)
    assert m.name == "reference" and json.loads(data)["ref"] == "model:churn/1"
    back = loads(data, "reference")
    assert isinstance(back, ModelVersion) and back == version
