"""The request collector through the scoring app: rows match what was scored, graceful close loses nothing,
a full buffer drops and counts (scoring still answers), failures are one null row, feedback is accepted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mloop.deployments.collected import read_collected
from mloop.errors import InvalidInput
from mloop.serving.collector import Collector, collector_for
from mloop.tracking.client import Client

ROWS = [{"age": 25, "income": 40.5, "plan": "basic"}, {"age": 61, "income": 55.0, "plan": "pro"}]


@pytest.fixture
def collector(client: Client) -> Iterator[Collector]:
    c = collector_for(client, "churn-ep", flush_interval=0.1)
    yield c
    c.close()


def _parts(client: Client, kind: str = "requests") -> list[Path]:
    root = Path(client.artifacts.uri) / "collected" / kind
    return sorted(root.rglob("*.parquet"))


def test_rows_match_what_was_scored(client: Client, churn: Any, serve: Any, collector: Collector) -> None:
    model, _ = churn
    tc = serve("model:churn/1", collector=collector)
    r1 = tc.post("/predict", json=ROWS, headers={"X-Request-ID": "req-a"})
    r2 = tc.post("/predict?proba=true", json=ROWS[:1], headers={"X-Request-ID": "req-b"})
    assert r1.status_code == r2.status_code == 200
    collector.close()
    table = read_collected(client, "churn-ep")
    df = table.to_pandas()
    assert list(df["request_id"]) == ["req-a", "req-a", "req-b"] and list(df["row"]) == [0, 1, 0]
    assert set(df["model"]) == {"model:churn/1"} and set(df["role"]) == {"live"} and set(df["status"]) == {200}
    assert set(df["endpoint"]) == {"churn-ep"} and (df["latency_ms"] > 0).all()
    assert list(df["input.age"]) == [25, 61, 25] and list(df["input.plan"]) == ["basic", "pro", "basic"]
    expected = model.predict(pd.DataFrame(ROWS))
    assert list(df["prediction"][:2]) == list(expected) and pd.isna(df["prediction"][2])
    proba = model.predict_proba(pd.DataFrame(ROWS[:1]))[0]
    assert np.allclose(df["probabilities"][2], proba) and df["probabilities"][:2].isna().all()
    assert table.schema.field("probabilities").type.value_type == "double"
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    parts = _parts(client)  # readable by any Parquet tool, hive layout (one part per flush)
    assert parts[0].parent.name.startswith("hour=") and parts[0].parent.parent.name == "endpoint=churn-ep"
    assert sum(pq.read_table(part).num_rows for part in parts) == 3


def test_numeric_matrix_columns_named_by_the_signature(client: Client, matrix: Any, serve: Any,
                                                       collector: Collector) -> None:  # fmt: skip
    model, x = matrix
    tc = serve("model:matrix/1", collector=collector)
    for i in range(5):
        assert tc.post("/predict", json=x[i : i + 2].tolist(), headers={"X-Request-ID": f"m{i}"}).status_code == 200
    collector.close()
    df = read_collected(client, "churn-ep").to_pandas()
    inputs = [c for c in df.columns if c.startswith("input.")]
    assert len(df) == 10 and len(inputs) == 3
    expected = np.vstack([x[i : i + 2] for i in range(5)])
    assert np.allclose(df[inputs].to_numpy(), expected)
    assert list(df["prediction"]) == list(model.predict(expected))


def test_graceful_close_loses_nothing(client: Client, churn: Any, serve: Any) -> None:
    collector = collector_for(client, "ep", flush_interval=30, flush_rows=7)  # by size, and the rest at close
    tc = serve("model:churn/1", collector=collector)
    n = 60
    for i in range(n):
        assert tc.post("/predict", json=ROWS[:1], headers={"X-Request-ID": f"r{i:03d}"}).status_code == 200
    collector.close()
    df = read_collected(client, "ep").to_pandas()
    assert sorted(df["request_id"]) == [f"r{i:03d}" for i in range(n)]
    stats = collector.stats()
    assert stats["rows"] == n and stats["dropped"] == 0 and stats["buffered"] == 0 and stats["files"] >= 2


def test_full_buffer_drops_counts_and_scoring_answers(client: Client, churn: Any, serve: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    collector = collector_for(client, "ep", flush_interval=3600, flush_rows=5, max_rows=5)
    with collector._lock:  # no size wake-up: the flush thread sleeps for the hour, so the buffer stays full
        collector._woken = True
    tc = serve("model:churn/1", collector=collector)
    started = time.perf_counter()
    codes = [tc.post("/predict", json=ROWS[:1]).status_code for _ in range(20)]
    elapsed = time.perf_counter() - started
    assert codes == [200] * 20 and elapsed < 10
    stats = collector.stats()
    assert stats["buffered"] == 5 and stats["dropped"] == 15
    assert "dropped" in caplog.text and "max_rows=5" in caplog.text
    metrics = tc.get("/metrics").text
    assert 'mloop_collector_dropped_rows_total{endpoint="ep"} 15.0' in metrics
    collector.close()
    assert collector.stats()["rows"] == 5


def test_failed_request_is_one_null_row(client: Client, churn: Any, serve: Any, collector: Collector) -> None:
    tc = serve("model:churn/1", collector=collector)
    assert tc.post("/predict", json={"age": "old"}, headers={"X-Request-ID": "bad-1"}).status_code == 422
    assert tc.post("/predict", content=b"{", headers={"X-Request-ID": "bad-2"}).status_code == 400
    collector.close()
    df = read_collected(client, "churn-ep").to_pandas()
    assert list(df["request_id"]) == ["bad-1", "bad-2"] and list(df["status"]) == [422, 400]
    assert "prediction" not in df.columns and not any(c.startswith("input.") for c in df.columns)


def test_shadow_role_from_the_scope(client: Client, churn: Any, serve: Any, collector: Collector) -> None:
    tc = serve("model:churn/1", collector=collector)
    inner = tc.app.app

    async def shadowed(scope: Any, receive: Any, send: Any) -> None:  # what the endpoint app does for mirrors
        scope["mloop.role"] = "shadow"
        await inner(scope, receive, send)

    tc.app.app = shadowed
    tc.app.direct = {}  # through the router, so the wrapper sees the request
    assert tc.post("/predict", json=ROWS[:1]).status_code == 200
    collector.close()
    assert read_collected(client, "churn-ep", role="shadow").num_rows == 1
    assert read_collected(client, "churn-ep", role="live").num_rows == 0


def test_record_rows_streaming_batch(client: Client, collector: Collector) -> None:
    data = np.arange(6, dtype=float).reshape(3, 2)
    collector.record_rows(["e1", "e2", "e3"], "model:m/2", data, np.array([1, 0, 1]), 0.004, columns=["a", "b"])
    collector.record_rows(
        ["e4"], "model:m/2", data[:1], {"probabilities": np.array([[0.3, 0.7]])}, 0.001, columns=["a", "b"]
    )
    with pytest.raises(InvalidInput, match="2 ids for 3 rows"):
        collector.record_rows(["x", "y"], "model:m/2", data, np.array([1, 0, 1]), 0.001)
    collector.close()
    df = read_collected(client, "churn-ep").to_pandas()
    assert list(df["request_id"]) == ["e1", "e2", "e3", "e4"] and list(df["row"]) == [0, 0, 0, 0]
    assert list(df["input.a"]) == [0.0, 2.0, 4.0, 0.0] and list(df["prediction"][:3]) == [1, 0, 1]
    assert np.allclose(df["probabilities"][3], [0.3, 0.7])


def test_feedback_single_batch_and_bad_input(client: Client, churn: Any, serve: Any, collector: Collector) -> None:
    tc = serve("model:churn/1", collector=collector)
    r = tc.post("/feedback", json={"request_id": "a", "ground_truth": 1})
    assert r.status_code == 202 and r.json() == {"accepted": 1, "rows": 1}
    r = tc.post("/feedback", json={"items": [{"request_id": "b", "ground_truth": [0, 1, 1]},
                                             {"request_id": "c", "row": 2, "ground_truth": 0}]})  # fmt: skip
    assert r.status_code == 202 and r.json() == {"accepted": 2, "rows": 4}
    assert tc.post("/feedback", json=[{"request_id": "d", "ground_truth": 1}]).json()["rows"] == 1
    bad = [
        ({"ground_truth": 1}, "items[0].request_id"),
        ({"request_id": "a"}, "items[0].ground_truth"),
        ({"request_id": "a", "ground_truth": {"x": 1}}, "items[0].ground_truth"),
        ({"request_id": "a", "ground_truth": 1, "row": -1}, "items[0].row"),
        ({"request_id": "a", "ground_truth": 1, "label": 1}, "items[0].label"),
        ({"items": "x"}, "items"),
        ([], "items"),
        ([{"request_id": "a", "ground_truth": 1}, 5], "items[1]"),
    ]
    for body, field in bad:
        r = tc.post("/feedback", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (body, r.text)
    r = tc.post("/feedback", content=b"not json")
    assert r.status_code == 400 and r.json()["error"]["field"] == "body"
    assert tc.get("/feedback").status_code == 405
    collector.close()
    parts = _parts(client, "feedback")
    assert parts and parts[0].parent.parent.name == "endpoint=churn-ep"
    fb = pd.concat([pq.read_table(p).to_pandas() for p in parts]).sort_values("ts", kind="stable")
    assert len(fb) == 6 and list(fb["request_id"]) == ["a", "b", "b", "b", "c", "d"]
    assert list(fb["row"]) == [0, 0, 1, 2, 2, 0] and str(fb["ts"].dtype) == "datetime64[us, UTC]"


def test_feedback_route_only_with_a_collector(churn: Any, serve: Any) -> None:
    assert serve("model:churn/1").post("/feedback", json={"request_id": "a", "ground_truth": 1}).status_code == 404


def test_bad_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Endpoint name"):
        Collector(str(tmp_path), endpoint="../x")
    with pytest.raises(InvalidInput, match="flush_rows"):
        Collector(str(tmp_path), endpoint="e", flush_rows=10, max_rows=5)
    with pytest.raises(InvalidInput, match="flush_interval"):
        Collector(str(tmp_path), endpoint="e", flush_interval=0)


def test_a_failed_write_is_kept_and_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "collected" / "requests" / "endpoint=ep"  # a file where the partition folder goes
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    c = Collector(str(tmp_path), endpoint="ep", flush_interval=0.05)
    c.record("r1", "model:m/1", np.zeros((1, 2)), {"predictions": np.array([1])}, 0.001, columns=("a", "b"))
    c.flush()
    stats = c.stats()
    assert stats["write_errors"] >= 1 and stats["rows"] == 0 and stats["buffered"] == 1
    assert "could not write 1 row(s)" in caplog.text
    blocker.unlink()
    c.close()
    assert c.stats()["rows"] == 1 and c.stats()["dropped"] == 0
    assert pq.read_table(next(tmp_path.rglob("*.parquet"))).column("request_id").to_pylist() == ["r1"]
