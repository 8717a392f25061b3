"""Entities' JSON shapes (``to_dict``: what ``--json`` prints and the REST server will return) and ``iter_pages``."""

from __future__ import annotations

import json
import math

import pytest

from mloop.entities import (
    Approval,
    ArtifactEntry,
    Dataset,
    DatasetVersion,
    Evaluation,
    Event,
    Experiment,
    LineageEdge,
    ManifestEntry,
    Metric,
    Model,
    ModelFile,
    ModelVersion,
    Page,
    RunRecord,
    RunStatus,
    iter_pages,
)

DATASET_VERSION_KEYS = ["ref", "name", "version", "id", "dataset_id", "created_at", "actor", "message", "kind",
                        "format", "rows", "file_count", "total_size", "private", "aliases", "source", "role", "meta",
                        "manifest_digest"]  # fmt: skip
MODEL_VERSION_KEYS = ["ref", "name", "version", "id", "model_id", "flavor", "status", "aliases", "created_at", "actor",
                      "description", "run_id", "source", "datasets", "code_commit", "target", "files", "signature",
                      "input_example", "environment", "params", "metrics", "tags"]  # fmt: skip
EVALUATION_KEYS = ["id", "model", "data", "task", "rows", "metrics", "latency_ms", "importance", "report_digest",
                   "report", "comparison", "created_at", "actor"]  # fmt: skip


def test_dataset_shapes() -> None:
    v = DatasetVersion("v1", "d1", "sensors", 3, "blake3:m", 2, 30, 1000, "alice", kind="table", format="csv",
                       rows=5, meta={"a": 1}, aliases=("prod",))  # fmt: skip
    out = v.to_dict()
    assert list(out) == DATASET_VERSION_KEYS
    assert out["ref"] == "data:sensors/3" and out["aliases"] == ["prod"] and out["meta"] == {"a": 1}
    assert list(Dataset("d1", "sensors", 1000, 3, 3).to_dict()) == [
        "name", "latest_version", "version_count", "created_at", "id"]  # fmt: skip
    assert ManifestEntry("a.csv", 3, "blake3:x").to_dict() == {"path": "a.csv", "size": 3, "digest": "blake3:x"}
    edge = LineageEdge("data:x/1", "run:1", "input", "alice", 5).to_dict()
    assert edge == {"source": "data:x/1", "target": "run:1", "relation": "input", "actor": "alice", "created_at": 5}


def test_model_shapes() -> None:
    v = ModelVersion("v1", "m1", "churn", 2, "sklearn", 1000, "alice", files=(ModelFile("model.pkl", 9, "d"),),
                     signature={"inputs": []}, datasets=("data:x/1",), aliases=("production",))  # fmt: skip
    out = v.to_dict()
    assert list(out) == MODEL_VERSION_KEYS
    assert out["files"] == [{"path": "model.pkl", "size": 9, "digest": "d"}]
    assert out["aliases"] == ["production"] and out["datasets"] == ["data:x/1"] and out["signature"] == {"inputs": []}
    assert list(Model("m1", "churn", 1000, 2, 2, {"production": 1}).to_dict()) == [
        "name", "id", "created_at", "latest_version", "version_count", "aliases"]  # fmt: skip
    e = Evaluation("e1", "model:churn/2", "data:h/1", "classification", {"roc_auc": 0.9}, 1000, "alice", rows=10,
                   importance=(("a", 0.2, 0.01),))  # fmt: skip
    assert list(e.to_dict()) == EVALUATION_KEYS
    assert e.to_dict()["importance"] == [{"feature": "a", "mean": 0.2, "std": 0.01}]
    assert e.to_dict()["report"] is None
    a = Approval("a1", "model:churn/2", "production", "alice", ("approver",), "ok", 1000).to_dict()
    assert a == {"alias": "production", "actor": "alice", "roles": ["approver"], "comment": "ok", "created_at": 1000}


def test_tracking_and_event_shapes() -> None:
    run = RunRecord("r1", "x1", "alpha", RunStatus.FINISHED, 1000, 1500, params={"lr": "0.1"}, metrics={"acc": 0.9})
    out = run.to_dict()
    assert list(out) == ["run_id", "name", "experiment_id", "status", "start_time", "end_time", "duration_ms", "actor",
                         "parent_id", "deleted", "environment_digest", "params", "metrics", "tags"]  # fmt: skip
    assert out["status"] == "FINISHED" and out["duration_ms"] == 500 and out["params"] == {"lr": "0.1"}
    assert Experiment("x1", "iris", 1000).to_dict() == {
        "experiment_id": "x1", "name": "iris", "created_at": 1000, "deleted": False}  # fmt: skip
    assert list(ArtifactEntry("model/a", "d", 3, 7).to_dict()) == ["path", "size", "digest", "created_at"]
    assert Metric("loss", 0.5, 2, 9).to_dict() == {"key": "loss", "value": 0.5, "step": 2, "timestamp": 9}
    event = Event(4, "run.deleted", "run:r1", "alice", 1000, {"why": "x"}).to_dict()
    assert list(event) == ["id", "type", "subject", "actor", "time", "payload"] and event["payload"] == {"why": "x"}


def test_shapes_are_plain_json_values() -> None:
    """``to_dict`` returns copies made of dicts, lists and scalars: json.dumps needs no default=."""
    v = ModelVersion("v1", "m1", "churn", 2, "sklearn", 1000, "alice", metrics={"loss": math.nan},
                     environment={"packages": {"numpy": "2"}})  # fmt: skip
    json.dumps(v.to_dict())
    shape = v.to_dict()
    shape["environment"]["python"] = "3.11"
    assert "python" not in v.environment  # a (shallow) copy: changing it leaves the entity alone


def test_iter_pages_walks_every_page_lazily() -> None:
    pages = {None: Page([1, 2], "a"), "a": Page([3], "b"), "b": Page([4, 5], None)}
    asked: list[str | None] = []

    def fetch(cursor: str | None) -> Page[int]:
        asked.append(cursor)
        return pages[cursor]

    items = iter_pages(fetch)
    assert next(items) == 1 and asked == [None]  # nothing fetched ahead of what is consumed
    assert list(items) == [2, 3, 4, 5] and asked == [None, "a", "b"]
    assert list(iter_pages(lambda cursor: Page([]))) == []


def test_iter_pages_passes_errors_through() -> None:
    def fetch(cursor: str | None) -> Page[int]:
        raise KeyError(cursor)

    with pytest.raises(KeyError):
        list(iter_pages(fetch))
