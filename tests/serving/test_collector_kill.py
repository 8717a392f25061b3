"""Collector durability against ``kill -9``: a real process recording steadily is killed; what was recorded more
than one flush interval (plus the time a write takes) before the kill is on disk, and every visible file is a
whole Parquet file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from mloop.deployments.collected import read_collected
from mloop.tracking.client import Client

INTERVAL = 0.2  # flush interval (s)
BATCH_EVERY = 0.005  # the child records a batch every 5 ms
CHILD = r"""
import sys, time
import numpy as np
from mloop.serving.collector import Collector

root, interval, every = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
c = Collector(root, endpoint="killed", flush_interval=interval)
x = np.random.default_rng(0).normal(size=(200, 20))  # 200 rows a batch: files of a few hundred kB
pred = np.zeros(200, dtype=np.int64)
i = 0
while True:
    c.record(f"b{i:06d}", "model:m/1", x, {"predictions": pred}, 0.001, columns=[f"f{j}" for j in range(20)])
    print(i, time.time(), flush=True)
    i += 1
    time.sleep(every)
"""


def test_kill_9_loses_at_most_the_last_flush_interval(client: Client, tmp_path: Path) -> None:
    root = client.artifacts.uri
    proc = subprocess.Popen([sys.executable, "-c", CHILD, root, str(INTERVAL), str(BATCH_EVERY)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    recorded: list[tuple[int, float]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the child exited"
            i, t = line.split()
            recorded.append((int(i), float(t)))
            if len(recorded) >= 300 and recorded[-1][1] - recorded[0][1] > 1.5:
                break
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    folder = Path(root) / "collected" / "requests" / "endpoint=killed"
    visible = list(folder.rglob("*.parquet"))
    assert len(visible) >= 3
    for part in visible:  # whole files only: each one opens and reads to the end
        assert pq.read_table(part).num_rows % 200 == 0
    on_disk = set(read_collected(client, "killed").column("request_id").to_pylist())
    assert all(rid.startswith("b") for rid in on_disk)
    batches = sorted(int(rid[1:]) for rid in on_disk)
    assert batches == list(range(len(batches))), "a gap: an earlier flush was lost"
    slack = 0.5  # a write in progress at the kill, and a loaded machine
    must_have = [i for i, t in recorded if t < killed_at - INTERVAL - slack]
    assert must_have and batches[-1] >= must_have[-1], (batches[-1], must_have[-1])
    lost = len(recorded) - len(batches)
    assert lost * BATCH_EVERY < INTERVAL + slack + 1, lost  # bounded by the interval, not by the run's length
