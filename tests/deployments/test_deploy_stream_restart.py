"""At least once across a kill -9: a consumer process is killed mid-stream and a new one resumes; every event
gets a prediction (none lost), duplicates are allowed and counted."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamkit import NatsBroker, RedisBroker, consumer_process, events

import mloop

N = 12_000


@pytest.fixture(params=["nats", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    b = NatsBroker() if request.param == "nats" else RedisBroker()
    yield b
    b.close()


@pytest.fixture
def registered(client: Any) -> pd.DataFrame:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.normal(size=(300, 4)), columns=["x0", "x1", "x2", "x3"])
    with mloop.start_run("lr") as run:
        run.log_model(LogisticRegression().fit(x, x["x0"] > 0), "lr", signature_data=x)
    return x


def test_kill_9_mid_stream_loses_no_event(client: Any, broker: Any, registered: pd.DataFrame, tmp_path: Path) -> None:
    frame = pd.concat([registered] * (N // len(registered)), ignore_index=True)
    broker.publish(events(frame))
    url = broker.url(key="id", batch=100, ack_wait=1)
    first = consumer_process(tmp_path / "ws", url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = broker.r.xlen(broker.out) if broker.kind == "redis" else broker.pending("mloop-ep")
        if (broker.kind == "redis" and done >= N // 4) or (broker.kind == "nats" and done <= N * 3 // 4):
            break
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    first.stdout.close()
    killed_at = len(broker.read(0, timeout=0))
    assert 0 < killed_at < len(frame), "the kill did not land mid-stream"
    second = consumer_process(tmp_path / "ws", url)
    try:
        deadline = time.monotonic() + 60
        while True:
            outputs = broker.read(len(frame), timeout=max(0.0, deadline - time.monotonic()))
            seen = Counter(o["id"] for o in outputs)
            missing = [f"e{i}" for i in range(len(frame)) if f"e{i}" not in seen]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(30)
        second.stdout.close()
        assert code == 0
    assert missing == [], f"{len(missing)} events lost, e.g. {missing[:5]}"
    duplicates = sum(c - 1 for c in seen.values())
    print(f"{broker.kind}: killed after {killed_at} predictions; {len(frame)} events, {duplicates} duplicates")
    assert all("error" not in o for o in outputs)
    assert broker.pending("mloop-ep") == 0
