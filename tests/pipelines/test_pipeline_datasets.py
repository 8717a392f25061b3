"""Datasets in pipelines: dataset parameters (resolved at run time, lineage, the content digest in the key), a
private holdout refused and recorded, dataset versions returned by steps stored as references (round trip)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pipeline_cases import write

import mloop
from mloop.datasets.dataset import Dataset
from mloop.entities import DatasetVersion, RunStatus
from mloop.errors import IntegrityError, InvalidInput
from mloop.guard import READ_DENIED
from mloop.pipelines import Pipeline, PipelineResult, load_pipeline, resume
from mloop.pipelines.executors import Executor
from mloop.pipelines.materialisers import dumps, loads
from mloop.pipelines.references import parse_dataset_ref
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client

STEPS = """
import os

from mloop import Dataset
from mloop.entities import DatasetVersion
from mloop.pipelines import DatasetRef, Pipeline, dataset_input, step


@step
def rows(*, data: DatasetRef = "churn-train@latest") -> int:
    return len(data.to_pandas())


@step
def pick(*, data: Dataset = dataset_input("churn-train@latest")) -> Dataset:
    return data


@step
def entity(pick: Dataset) -> DatasetVersion:
    return pick.info


@step
def count(pick: Dataset, entity: DatasetVersion) -> dict:
    return {"ref": pick.ref, "rows": len(pick.to_pandas()), "entity": entity.ref, "same": entity == pick.info}


@step
def peek(*, holdout: DatasetRef = "churn-holdout@latest") -> int:
    return len(holdout.to_pandas())  # never reached: the holdout is refused before the step starts


@step
def maybe(*, data: DatasetRef | None = None) -> str:
    return "none" if data is None else f"{type(data).__name__} {data.ref}"


@step
def after(rows: int, *, flag: str = "") -> int:
    if os.path.exists(flag):
        raise RuntimeError("after is broken while the flag file exists")
    return rows * 2


data_flow = Pipeline("data_flow", [rows, pick, entity, count])
resumable = Pipeline("resumable", [rows, after])
optional = Pipeline("optional", [maybe])
holdout_param = Pipeline("holdout_param", [peek])
"""


def churn_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (2 * x[:, 0] - x[:, 1] + rng.logistic(size=n) > 0).astype(int)
    return pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y)


def add_split(client: Client, tmp_path: Path, n: int = 600, seed: int = 3) -> Any:
    """``churn/<n>`` split into ``churn-train`` and the private ``churn-holdout`` (30 %)."""
    path = tmp_path / f"churn-{seed}.parquet"
    churn_frame(n, seed).to_parquet(path)
    added = mloop.Dataset.add(path, "churn", client=client)
    return mloop.split_dataset(added.dataset.ref, holdout=0.3, seed=0, stratify="label", client=client)


def load(project: Path, name: str) -> Pipeline:
    write(project / "data_steps.py", STEPS)
    return load_pipeline(f"{project / 'data_steps.py'}:{name}")


def value(client: Client, result: PipelineResult, step: str) -> Any:
    stored = result.steps[step].outputs[step]
    return json.loads(client.artifacts.get_bytes(stored["digest"]))


def inputs_of(client: Client, run_id: str | None) -> list[tuple[str, str]]:
    return sorted((e.source, e.relation) for e in client.store.list_lineage(f"run:{run_id}", direction="up"))


def test_a_dataset_parameter_is_resolved_recorded_and_keyed_by_content(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    split = add_split(client, tmp_path)
    train_v1 = split.train.info
    first = load(project, "data_flow").run(client=client, compute=compute)
    assert first.ok, {n: s.error for n, s in first.steps.items()}
    assert value(client, first, "rows") == train_v1.rows
    rows_run = client.get_run(first.steps["rows"].run_id or "")
    assert rows_run.params["data"] == json.dumps("churn-train@latest")  # what was asked
    key = json.loads(rows_run.tags[TAG.KEY_JSON])
    assert key["params"]["data"] == json.dumps("data:churn-train/1")  # what it resolved to
    assert key["inputs"]["data"] == train_v1.manifest_digest  # the version's content
    assert inputs_of(client, rows_run.id) == [("data:churn-train/1", "input")]
    # unchanged data: every step is reused
    again = load(project, "data_flow").run(client=client, compute=compute)
    assert {s.status for s in again.steps.values()} == {"cached"}
    # a new version behind the alias: a cache miss for the steps that read it and, through the reference, downstream
    add_split(client, tmp_path, n=900, seed=4)
    plan = load(project, "data_flow").plan(client=client)
    assert plan.steps["rows"].status == "to run" and plan.steps["pick"].status == "to run"
    third = load(project, "data_flow").run(client=client, compute=compute)
    assert {n: s.status for n, s in third.steps.items()} == dict.fromkeys(["rows", "pick", "entity", "count"], "ran")
    assert "parameter 'data' changed" in third.steps["rows"].reason and "churn-train/2" in third.steps["rows"].reason
    train_v2 = client.store.get_dataset_version("churn-train", 2)
    assert value(client, third, "rows") == train_v2.rows != train_v1.rows
    assert inputs_of(client, third.steps["rows"].run_id) == [("data:churn-train/2", "input")]
    # pinning the old version (Azure ML's "iris:2" form: NAME@VERSION) is the first run's key again
    pinned = load(project, "data_flow").run({"data": "churn-train@1"}, client=client, compute=compute)
    assert pinned.steps["rows"].status == "cached" and pinned.steps["rows"].key == first.steps["rows"].key


def test_a_returned_dataset_version_is_a_reference_loaded_as_the_same_object(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    split = add_split(client, tmp_path)
    result = load(project, "data_flow").run(client=client, compute=compute)
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    pick = result.steps["pick"].outputs["pick"]
    assert pick["materialiser"] == "reference" and pick["type"] == "mloop.datasets.dataset.Dataset"
    assert not pick["fallback"] and pick["size"] < 500  # a reference, not a copy of the data
    stored = json.loads(client.artifacts.get_bytes(pick["digest"]))
    assert stored == {"object": "Dataset", "ref": "data:churn-train/1", "name": "churn-train", "version": 1,
                      "id": split.train.info.id, "digest": split.train.info.manifest_digest}  # fmt: skip
    assert result.steps["entity"].outputs["entity"]["type"] == "mloop.entities.datasets.DatasetVersion"
    seen = value(client, result, "count")
    assert seen == {"ref": "data:churn-train/1", "rows": split.train.info.rows, "entity": "data:churn-train/1",
                    "same": True}  # fmt: skip
    # reading the loaded Dataset downstream is a read like any other: lineage on that step's run
    assert ("data:churn-train/1", "input") in inputs_of(client, result.steps["count"].run_id)


def test_reference_materialiser_round_trip_in_process(client: Client, tmp_path: Path) -> None:
    split = add_split(client, tmp_path)
    train: Dataset = split.train
    for obj in (train, train.info):
        data, m = dumps(obj)
        assert m.name == "reference" and not m.fallback
        back = loads(data, "reference")
        assert type(back) is type(obj)
        assert (back.info if isinstance(back, Dataset) else back) == train.info
    doc = json.loads(dumps(train.info)[0])
    forged = json.dumps({**doc, "id": "0" * 32}).encode()  # the version was deleted and made again since
    with pytest.raises(IntegrityError, match=r"data:churn-train/1 is not the version a step returned"):
        loads(forged, "reference")
    assert isinstance(loads(dumps(train.info)[0], "reference"), DatasetVersion)


def test_a_holdout_parameter_fails_the_step_and_is_recorded(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    split = add_split(client, tmp_path)
    result = load(project, "holdout_param").run(client=client, compute=compute)
    step = result.steps["peek"]
    assert step.status == "failed" and "AccessDenied" in (step.error or "")
    assert f"{split.holdout.ref} is a private holdout" in (step.error or "")
    assert client.get_run(step.run_id or "").status is RunStatus.FAILED
    assert inputs_of(client, step.run_id) == [(split.holdout.ref, READ_DENIED)]
    denied = client.events(types=["dataset.holdout_denied"], subject=split.holdout.ref)
    assert [e.payload["run"] for e in denied] == [f"run:{step.run_id}"]


def test_a_dataset_reference_that_does_not_resolve_fails_only_that_step(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    result = load(project, "data_flow").run({"data": "nope@latest"}, client=client, compute=compute)
    assert {n: s.status for n, s in result.steps.items()} == {
        "rows": "failed", "pick": "failed", "entity": "skipped", "count": "skipped"}  # fmt: skip
    assert "NotFound" in (result.steps["rows"].error or "") and "nope" in (result.steps["rows"].error or "")
    add_split(client, tmp_path)
    missing = load(project, "data_flow").run({"rows.data": "churn-train@9"}, client=client, compute=compute)
    assert missing.steps["rows"].status == "failed" and missing.steps["count"].status == "ran"
    assert "'churn-train' has no version 9" in (missing.steps["rows"].error or "")  # @9 is read as version 9


def test_an_optional_dataset_parameter(client: Client, project: Path, tmp_path: Path, compute: Executor) -> None:
    add_split(client, tmp_path)

    def text(result: PipelineResult) -> str:
        return client.artifacts.get_bytes(result.steps["maybe"].outputs["maybe"]["digest"]).decode()

    assert text(load(project, "optional").run(client=client, compute=compute)) == "none"
    given = load(project, "optional").run({"data": "churn-train"}, client=client, compute=compute)
    assert text(given) == "Dataset data:churn-train/1"


def test_resume_reuses_a_finished_step_with_a_dataset_parameter(
    client: Client, project: Path, tmp_path: Path, compute: Executor
) -> None:
    add_split(client, tmp_path)
    flag = tmp_path / "broken.flag"
    flag.touch()
    first = load(project, "resumable").run({"flag": str(flag)}, client=client, compute=compute)
    assert {n: s.status for n, s in first.steps.items()} == {"rows": "ran", "after": "failed"}
    flag.unlink()
    resumed = resume(first.run_id or "", client=client, compute=compute)  # the key of `rows` is the same today
    assert {n: s.status for n, s in resumed.steps.items()} == {"rows": "cached", "after": "ran"}
    assert resumed.steps["rows"].key == first.steps["rows"].key


def test_dataset_reference_text_forms() -> None:
    assert parse_dataset_ref("iris@2").version == 2  # Azure ML's iris:2
    assert parse_dataset_ref("data:iris/3").version == 3
    assert parse_dataset_ref("iris@latest").alias == "latest"
    assert parse_dataset_ref("iris").version is None
    with pytest.raises(InvalidInput, match="is a model reference"):
        parse_dataset_ref("model:churn/1")
