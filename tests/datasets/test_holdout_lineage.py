"""Tables, splits, the private holdout, lineage and retention."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

import mloop
from mloop.datasets.access import evaluation_access
from mloop.datasets.dataset import Dataset, get_dataset
from mloop.datasets.lineage import delete_dataset_version, lineage_tree
from mloop.datasets.splits import split_dataset
from mloop.errors import AccessDenied, Conflict
from mloop.tracking.client import Client
from mloop.tracking.gc import collect_garbage


@pytest.fixture
def sensors(client: Client, tmp_path: Path) -> Dataset:
    path = tmp_path / "sensors.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "temp", "site", "label"])
        for i in range(200):
            w.writerow([i, 20 + (i % 7) * 0.5, ["north", "south"][i % 2], int(i % 4 == 0)])
    return Dataset.add(path, "sensors", client=client).dataset


def test_table_versions_have_schema_and_profile(sensors: Dataset) -> None:
    assert sensors.info.kind == "table" and sensors.info.format == "csv" and sensors.info.rows == 200
    frame = sensors.to_pandas()
    assert list(frame.columns) == ["t", "temp", "site", "label"] and len(frame) == 200
    profile = sensors.profile()
    assert profile is not None and profile.rows == 200
    assert [name for name, _ in profile.schema] == ["t", "temp", "site", "label"]


def test_split_and_private_holdout(client: Client, sensors: Dataset) -> None:
    result = split_dataset(sensors.ref, holdout=0.25, seed=7, stratify="label")
    train, hold = result.train, result.holdout
    assert (train.ref, hold.ref) == ("data:sensors-train/1", "data:sensors-holdout/1")
    assert hold.info.private and not train.info.private
    assert train.info.rows + hold.info.rows == 200
    assert hold.info.rows == 50
    assert train.to_pandas()["label"].mean() == pytest.approx(0.25, abs=0.02)  # stratified

    with pytest.raises(AccessDenied, match="sensors-holdout/1"):
        hold.to_pandas()
    with mloop.start_run("train") as run:
        with pytest.raises(AccessDenied, match="private holdout"):
            get_dataset("data:sensors-holdout@latest").path()
        with pytest.raises(AccessDenied):
            run.use_dataset(hold.ref)
        train.to_pandas()
    with evaluation_access(client, "model:demo/1"):
        assert len(hold.to_pandas()) == 50
    denied = client.events(types=["dataset.holdout_denied"])
    read = client.events(types=["dataset.holdout_read"])
    assert len(denied) == 3 and denied[1].payload["run"] == run.ref == denied[2].payload["run"]
    assert [e.payload["purpose"] for e in read] == ["evaluation of model:demo/1"]

    again = split_dataset(sensors.ref, holdout=0.25, seed=7, stratify="label")
    assert not again.created and again.holdout.ref == hold.ref  # deterministic: no duplicate versions


def test_split_by_time_holds_back_the_latest_rows(client: Client, sensors: Dataset) -> None:
    result = split_dataset(sensors.ref, holdout=0.1, seed=1, by_time="t")
    settings = client.workspace.settings
    client.workspace.settings = dataclasses.replace(settings, roles={client.actor: ("holdout-reader",)})
    with mloop.holdout_access("test"):
        assert result.holdout.to_pandas()["t"].min() == 180
    assert result.train.to_pandas()["t"].max() == 179


def test_lineage_and_retention(client: Client, sensors: Dataset) -> None:
    split = split_dataset(sensors.ref, holdout=0.2, seed=3)
    with mloop.start_run("train", name="fit") as run:
        split.train.to_pandas()
    client.store.add_lineage(run.ref, "model:churn/1", "output", actor="test")  # the registry's edge
    trees = lineage_tree(client, "data:sensors@latest")
    down = trees["downstream"].to_dict()
    assert down["ref"] == "data:sensors/1"
    kids = {c["ref"]: c for c in down["children"]}
    assert set(kids) == {"data:sensors-train/1", "data:sensors-holdout/1"}
    run_node = kids["data:sensors-train/1"]["children"][0]
    assert run_node["ref"] == run.ref and run_node["relation"] == "input"
    assert run_node["children"][0]["ref"] == "model:churn/1"
    up = lineage_tree(client, f"run:{run.id[-8:]}")["upstream"].to_dict()
    assert up["children"][0]["ref"] == "data:sensors-train/1"
    assert up["children"][0]["children"][0]["ref"] == "data:sensors/1"

    with pytest.raises(Conflict, match="model:churn/1"):
        delete_dataset_version(client, "data:sensors/1")
    assert delete_dataset_version(client, "data:sensors-holdout/1") == "data:sensors-holdout/1"
    assert delete_dataset_version(client, "data:sensors/1", force=True) == "data:sensors/1"
    report = collect_garbage(client, grace_s=0)
    assert report.blobs_removed >= 2 and report.bytes_freed > 0
    assert len(split.train.to_pandas()) == 160  # what is still referenced is intact
