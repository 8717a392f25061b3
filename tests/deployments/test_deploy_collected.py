"""Reading collected rows back: time ranges over hour partitions, roles, schemas unified across model versions,
and the latest feedback joined per (request_id, row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.artifacts.collected_read import read_collected as read_root
from mloop.deployments.collected import parse_since, read_collected
from mloop.errors import InvalidInput
from mloop.serving.collected_files import REQUESTS, CollectedRoot, hour_of, make_record, requests_table
from mloop.serving.collector import collector_for
from mloop.tracking.client import Client


def _old_part(client: Client, endpoint: str, when: datetime, rid: str) -> None:
    """A part written as if ``rid`` had been scored at ``when`` (its own hour partition)."""
    ts = int(when.timestamp() * 1e6)
    record = make_record(ts, rid, "model:m/1", "live", np.array([[1.0, 2.0]]), ("a", "b"), np.array([1]), False,
                    1.0, 200, 1)  # fmt: skip
    CollectedRoot(client.artifacts.uri).write_table(REQUESTS, endpoint, hour_of(ts),
                                                    requests_table(endpoint, [record]))  # fmt: skip


def test_since_and_until_select_hours_and_rows(client: Client) -> None:
    now = datetime.now(UTC)
    _old_part(client, "ep", now - timedelta(hours=5), "five-hours")
    _old_part(client, "ep", now - timedelta(hours=2), "two-hours")
    with collector_for(client, "ep") as c:
        c.record("now", "model:m/1", np.array([[3.0, 4.0]]), {"predictions": np.array([0])}, 0.002, columns="ab")
    ids = lambda **kw: read_collected(client, "ep", **kw).column("request_id").to_pylist()  # noqa: E731
    assert ids() == ["five-hours", "two-hours", "now"]
    assert ids(since="1h") == ["now"]
    assert ids(since="3h") == ["two-hours", "now"]
    assert ids(since="6h", until="1h") == ["five-hours", "two-hours"]
    assert ids(since=(now - timedelta(hours=3)).isoformat()) == ["two-hours", "now"]
    assert ids(since="1h", role="shadow") == []
    assert len(list((Path(client.artifacts.uri) / "collected/requests/endpoint=ep").iterdir())) == 3  # 3 hours
    assert read_collected(client, "no-such-endpoint").num_rows == 0


def test_parse_since() -> None:
    now = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert parse_since("1h", now=now) == now - timedelta(hours=1)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2d", now=now) == now - timedelta(days=2)
    assert parse_since("1h30m", now=now) == now - timedelta(minutes=90)
    assert parse_since("2026-12-03T10:00") == datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert parse_since("2026-12-03T10:00+01:00") == datetime(2026, 12, 3, 9, tzinfo=UTC)
    for bad in ("yesterday", "1y", "h", "-1h", ""):
        with pytest.raises(InvalidInput, match="30m, 1h, 2d"):
            parse_since(bad)
    with pytest.raises(InvalidInput, match="not after since"):
        read_root("/nonexistent", "ep", since="1h", until="2h")  # refused before anything is read
    with pytest.raises(InvalidInput, match="'live' or 'shadow'"):
        read_root("/nonexistent", "ep", role="canary")


def test_schemas_of_two_model_versions_unified(client: Client) -> None:
    with collector_for(client, "ep") as c:
        c.record("v1", "model:m/1", np.array([[1, 2]]), {"predictions": np.array([1])}, 0.001, columns=["a", "b"])
        c.flush()
        frame = pd.DataFrame({"a": [1.5], "c": ["x"]})
        c.record("v2", "model:m/2", frame, {"predictions": np.array([0.25])}, 0.001)
    table = read_collected(client, "ep")
    df = table.to_pandas()
    assert list(df["request_id"]) == ["v1", "v2"] and list(df["model"]) == ["model:m/1", "model:m/2"]
    assert table.schema.field("input.a").type == pa.float64() and list(df["input.a"]) == [1.0, 1.5]
    assert pd.isna(df["input.b"][1]) and pd.isna(df["input.c"][0]) and df["input.c"][1] == "x"
    assert list(df["prediction"]) == [1.0, 0.25]


def test_with_feedback_joins_the_latest_per_row(client: Client) -> None:
    with collector_for(client, "ep") as c:
        c.record("multi", "model:m/1", np.zeros((3, 2)), {"predictions": np.array([1, 0, 1])}, 0.001)
        c.record("single", "model:m/1", np.zeros((1, 2)), {"predictions": np.array([1])}, 0.001)
        c.record("unlabelled", "model:m/1", np.zeros((1, 2)), {"predictions": np.array([0])}, 0.001)
        c.record_feedback([{"request_id": "multi", "ground_truth": [1, 1, 1]}, {"request_id": "single",
                           "ground_truth": 0}, {"request_id": "other", "ground_truth": 5}])  # fmt: skip
        c.flush()
        c.record_feedback([{"request_id": "multi", "row": 1, "ground_truth": 0}])  # a correction: the latest wins
    plain = read_collected(client, "ep")
    assert "ground_truth" not in plain.column_names
    df = read_collected(client, "ep", with_feedback=True).to_pandas()
    assert list(df["request_id"]) == ["multi"] * 3 + ["single", "unlabelled"]
    assert df["ground_truth"].tolist()[:4] == [1, 0, 1, 0] and pd.isna(df["ground_truth"][4])
    assert df["ground_truth_ts"][1] > df["ground_truth_ts"][0] and pd.isna(df["ground_truth_ts"][4])
    assert len(df) == 5  # feedback for unknown requests adds no rows


def test_with_feedback_and_no_feedback_yet(client: Client) -> None:
    with collector_for(client, "ep") as c:
        c.record("r", "model:m/1", np.zeros((2, 2)), {"predictions": np.array([1, 0])}, 0.001)
    table = read_collected(client, "ep", with_feedback=True)
    assert table.num_rows == 2 and table.column("ground_truth").null_count == 2


def test_hidden_temporary_files_are_never_read(client: Client) -> None:
    with collector_for(client, "ep") as c:
        c.record("r", "model:m/1", np.zeros((1, 2)), {"predictions": np.array([1])}, 0.001)
    folder = next((Path(client.artifacts.uri) / "collected/requests/endpoint=ep").iterdir())
    (folder / ".part-dead.tmp").write_bytes(b"PAR1 half a file")  # what a crash mid-write leaves
    assert read_collected(client, "ep").num_rows == 1


def test_one_flush_of_two_models_and_an_hour_boundary(client: Client) -> None:
    """Records of two versions alternating (a canary) and a failure, across an hour boundary: every row lands
    in its hour's part, columns unified."""
    now = datetime.now(UTC)
    boundary = int(now.replace(minute=0, second=0, microsecond=0).timestamp() * 1e6)
    records = [
        make_record(boundary - 10, "a", "model:m/1", "live", np.array([[1.0, 2.0]]), ("x", "y"), np.array([1]),
                    False, 1.0, 200, 1),
        make_record(boundary - 5, "b", "model:m/2", "live", np.array([[3.0]]), ("x",), np.array([0.5]), False,
                    1.0, 200, 1),
        make_record(boundary + 5, "c", "model:m/1", "shadow", None, None, None, False, 1.0, 500, 1),
        make_record(boundary + 10, "d", "model:m/1", "live", np.array([[5.0, 6.0]]), ("x", "y"), np.array([0]),
                    False, 1.0, 200, 1),
    ]  # fmt: skip
    from mloop.serving.collected_files import split_by_hour

    parts = split_by_hour(requests_table("ep", records))
    assert [h for h, _ in parts] == [hour_of(boundary - 1), hour_of(boundary)]
    assert sorted(parts[0][1].column("request_id").to_pylist()) == ["a", "b"]
    for hour, table in parts:
        CollectedRoot(client.artifacts.uri).write_table(REQUESTS, "ep", hour, table)
    df = read_collected(client, "ep").to_pandas()
    assert list(df["request_id"]) == ["a", "b", "c", "d"] and list(df["status"]) == [200, 200, 500, 200]
    assert df["input.x"].isna().tolist() == [False, False, True, False] and df["input.x"][3] == 5.0
    assert pd.isna(df["input.y"][1]) and list(df["prediction"].fillna(-1)) == [1.0, 0.5, -1.0, 0.0]
