"""Compacting collected hours: one file per closed hour, no row lost or doubled for readers at any step, a crash
mid-compaction finished by the next one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.artifacts.collected import REQUESTS, CollectedRoot, partition_dir
from mloop.artifacts.collected_read import read_collected
from mloop.artifacts.compaction import MARKER_PREFIX, compact_endpoint, compact_hour

HOUR_US = 3_600_000_000
H0 = 1_700_000_000_000_000 // HOUR_US  # an hour bucket in the past


def _part(root: CollectedRoot, i: int, rows: int = 10, extra: bool = False) -> None:
    ts = H0 * HOUR_US + i * 1_000_000 + np.arange(rows)
    cols = {"request_id": [f"r{i}-{j}" for j in range(rows)], "row": np.zeros(rows, np.int64),
            "endpoint": ["ep"] * rows, "model": ["model:m/1"] * rows, "role": ["live"] * rows,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "latency_ms": np.ones(rows),
            "status": np.full(rows, 200, np.int32), "input.a": np.arange(rows, dtype=float)}  # fmt: skip
    if extra:
        cols["input.b"] = np.ones(rows)  # a later model version with another input
    root.write_table(REQUESTS, "ep", H0, pa.table(cols))


def _folder(tmp: Path) -> Path:
    return tmp / partition_dir(REQUESTS, "ep", H0)


def test_compaction_keeps_every_row_in_one_file(tmp_path: Path) -> None:
    root = CollectedRoot(str(tmp_path))
    for i in range(30):
        _part(root, i, extra=i >= 25)
    before = read_collected(str(tmp_path), "ep")
    assert compact_endpoint(str(tmp_path), "ep") == 30
    files = sorted(p.name for p in _folder(tmp_path).iterdir())
    assert len(files) == 1 and files[0].endswith(".parquet")
    after = read_collected(str(tmp_path), "ep")
    assert after.num_rows == before.num_rows == 300
    assert after.select(before.column_names).equals(before)
    assert after.column("input.b").null_count == 250  # schemas unified: the older parts have no b
    assert compact_endpoint(str(tmp_path), "ep") == 0  # nothing left to merge


def test_readers_are_right_at_every_step_and_a_crash_is_finished_later(tmp_path: Path) -> None:
    root = CollectedRoot(str(tmp_path))
    for i in range(5):
        _part(root, i)
    folder = _folder(tmp_path)
    parts = sorted(p.name for p in folder.iterdir())
    key = partition_dir(REQUESTS, "ep", H0)
    # step 1 only: the marker is there, the merged file is not -> the parts are read
    root.write(f"{key}/{MARKER_PREFIX}x.json", f'{{"parts": {parts!r}, "into": "part-merged.parquet"}}'
               .replace("'", '"').encode())  # fmt: skip
    assert read_collected(str(tmp_path), "ep").num_rows == 50
    # step 2 done, crash before deleting: the merged file is read, not the parts (no row twice)
    pq.write_table(read_collected(str(tmp_path), "ep", sort=False), folder / "part-merged.parquet")
    assert read_collected(str(tmp_path), "ep").num_rows == 50
    # the next compaction finishes: parts and marker gone, the merged file stays
    compact_hour(root, key)
    assert sorted(p.name for p in folder.iterdir()) == ["part-merged.parquet"]
    assert read_collected(str(tmp_path), "ep").num_rows == 50


def test_open_hours_are_not_compacted(tmp_path: Path) -> None:
    root = CollectedRoot(str(tmp_path))
    for i in range(3):
        _part(root, i)
    assert compact_endpoint(str(tmp_path), "ep", now=(H0 + 1) * 3600 + 10) == 0  # ended 10 s ago: may grow
    assert compact_endpoint(str(tmp_path), "ep", now=(H0 + 1) * 3600 + 600) == 3
