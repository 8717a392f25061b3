"""An incremental monitor window over one hour of an endpoint's traffic at 1,000 requests/s (issue #13).

    .venv/bin/python bench/bench_monitor.py [--rate 1000] [--features 10] [--rounds 3] [--json]

Set-up: a LogisticRegression on ``--features`` float columns, registered; its training data (50,000 rows) as a
dataset version; an endpoint record; one hour of collected traffic written exactly as the collector writes it
(``collected/requests/endpoint=bench/hour=…/part-….parquet``: one part a second, ``--rate`` rows each, so 3,600
parts and 3.6M rows at 1,000 req/s) with ground truth for 10% of the requests in the feedback partitions; the
second half-hour drifts (three features shifted by 0.5 std). ``--rounds`` incremental monitors (every signal,
estimated accuracy by re-scoring every row) run once a simulated minute while the hour is written, as a
monitor scheduled every minute does: each run absorbs the parts that arrived since the last one (timed: the
cost of summarising a part). The last run is a minute before the hour ends, the worst case for the close.

Timed: closing the window incrementally (``run_monitor`` just after the hour: the last minute's 60 parts are
read, then the signals come from the summaries); a cold incremental window (a monitor created after the hour:
every part summarised at once); then, after compacting the hour (as the supervisor does once an hour closes,
timed apart), the row-based baseline (``incremental: false``, re-scoring a 100,000-row sample as before) and
the floor of reading the hour's rows. The bar: the incremental window in under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

HOUR_MS = 3_600_000


def _spec(incremental: bool) -> dict[str, Any]:
    return {"endpoint": "bench", "reference": {"dataset": "data:train/1", "target": "label"}, "window": {"every": "1h"},
            "estimated": {"rescore": True}, "alerts": {"notify": []}, "incremental": incremental}  # fmt: skip


def setup(folder: Path, rate: int, features: int, monitors: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.artifacts.collected import FEEDBACK, REQUESTS, CollectedRoot, hour_of
    from mloop.monitoring.monitors import create_monitor, run_monitor
    from mloop.tracking.client import Client

    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    train = pd.DataFrame(rng.normal(size=(50_000, features)), columns=names)
    y = (train["f0"] + train["f1"] > 0).astype(int)
    model = LogisticRegression().fit(train, y)
    client = Client(workspace=mloop.init_workspace(folder / "ws"))
    mloop.use_client(client)
    with mloop.start_run("fit") as run:
        run.log_model(model, "bench", signature_data=train)
    data = folder / "train"
    data.mkdir()
    train.assign(label=y).to_parquet(data / "train.parquet")
    mloop.Dataset.add(data, "train", client=client)
    client.store.create_endpoint("bench", spec={"traffic": [{"model": "model:bench/1", "weight": 100.0}]}, actor="b")
    started = time.perf_counter()
    for i in range(monitors):
        create_monitor(client, f"inc{i}", _spec(True))
    create_s = (time.perf_counter() - started) / max(monitors, 1)
    root = CollectedRoot(client.artifacts.uri)
    t0 = (int(time.time() * 1000) // HOUR_MS - 3) * HOUR_MS  # an hour three hours ago
    absorb_s: list[float] = []
    for second in range(3600):
        x = rng.normal(size=(rate, features))
        if second >= 1800:
            x[:, 2:5] += 0.5
        ts = (t0 + second * 1000) * 1000 + np.sort(rng.integers(0, 1_000_000, rate))
        ids = np.char.add(f"s{second}-", np.arange(rate).astype(str)).astype(object)
        cols = {"request_id": pa.array(ids, pa.string()), "row": np.zeros(rate, np.int64),
                "endpoint": pa.repeat(pa.scalar("bench"), rate), "model": pa.repeat(pa.scalar("model:bench/1"), rate),
                "role": pa.repeat(pa.scalar("live"), rate), "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "latency_ms": rng.uniform(0.3, 2.0, rate), "status": np.full(rate, 200, np.int32)}  # fmt: skip
        cols.update({f"input.{n}": x[:, i] for i, n in enumerate(names)})
        cols["prediction"] = model.predict(pd.DataFrame(x, columns=names))
        root.write_table(REQUESTS, "bench", hour_of(int(ts[0])), pa.table(cols))
        k = rate // 10
        truth = ((x[:k, 0] + x[:k, 1]) > 0).astype(int)
        fb = pa.table({"request_id": pa.array(ids[:k], pa.string()), "row": np.zeros(k, np.int64),
                       "ground_truth": truth, "ts": pa.array(ts[:k] + 5_000_000, pa.timestamp("us", tz="UTC")),
                       "endpoint": pa.repeat(pa.scalar("bench"), k)})  # fmt: skip
        root.write_table(FEEDBACK, "bench", hour_of(int(ts[0]) + 5_000_000), fb)
        if (second + 1) % 60 == 0 and second < 3599:  # a monitor scheduled every minute; the last run a minute early
            for i in range(monitors):
                started = time.perf_counter()
                assert run_monitor(client, f"inc{i}", now=t0 + (second + 1) * 1000) == []
                absorb_s.append(time.perf_counter() - started)
    return {"client": client, "t0": t0, "rows": 3600 * rate, "absorb_s": absorb_s, "create_s": create_s}


def _close(env: dict[str, Any], name: str) -> float:
    from mloop.monitoring.monitors import run_monitor

    started = time.perf_counter()
    done = run_monitor(env["client"], name, now=env["t0"] + HOUR_MS + 10_000)
    took = time.perf_counter() - started
    assert len(done) == 1 and done[0]["rows"] == env["rows"], done
    env.setdefault("breaches", len(done[0]["breaches"]))
    return took


def measure(env: dict[str, Any], rounds: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from mloop.artifacts.collected_read import read_collected
    from mloop.artifacts.compaction import compact_endpoint
    from mloop.monitoring.monitors import create_monitor

    client, t0 = env["client"], env["t0"]
    out: dict[str, Any] = {"incremental_s": [_close(env, f"inc{i}") for i in range(rounds)]}
    create_monitor(client, "cold", _spec(True))
    out["cold_s"] = _close(env, "cold")
    started = time.perf_counter()
    compact_endpoint(client.artifacts.uri, "bench")  # what the endpoint's supervisor does in the background
    out["compact_s"] = time.perf_counter() - started
    rows, reads = [], []
    for i in range(rounds):
        create_monitor(client, f"rows{i}", _spec(False))
        rows.append(_close(env, f"rows{i}"))
        started = time.perf_counter()
        table = read_collected(client.artifacts.uri, "bench", since=datetime.fromtimestamp(t0 / 1000, UTC),
                               until=datetime.fromtimestamp((t0 + HOUR_MS) / 1000, UTC), with_feedback=True,
                               role="live", sort=False)  # fmt: skip
        reads.append(time.perf_counter() - started)
        assert table.num_rows == env["rows"]
    out.update(rows_s=rows, read_s=reads)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mloop-bench-monitor-"))
    try:
        started = time.perf_counter()
        env = setup(folder, args.rate, args.features, args.rounds)
        setup_s = time.perf_counter() - started
        got = measure(env, args.rounds)
        absorb = env["absorb_s"]
        med = statistics.median
        out = {"rows": env["rows"], "rate": args.rate, "features": args.features, "setup_s": round(setup_s, 1),
               "load_average": [round(v, 2) for v in os.getloadavg()], "incremental_s": med(got["incremental_s"]),
               "incremental_rounds_s": [round(v, 3) for v in got["incremental_s"]], "cold_s": got["cold_s"],
               "absorb_run_s": med(absorb), "part_ms": 1000 * med(absorb) / 60, "rows_based_s": med(got["rows_s"]),
               "rows_rounds_s": [round(v, 3) for v in got["rows_s"]], "read_floor_s": med(got["read_s"]),
               "compact_s": got["compact_s"], "create_s": env["create_s"], "breaches": env["breaches"]}  # fmt: skip
        if args.json:
            print(json.dumps(out, indent=2))
            return
        print(f"{out['rows']:,} rows ({args.rate}/s for 1 h, {args.features} features); set-up {setup_s:.0f} s; "
              f"load average {out['load_average']}")  # fmt: skip
        print(f"  incremental window {out['incremental_s']:.3f} s (rounds {out['incremental_rounds_s']}), "
              f"breaches {out['breaches']}")  # fmt: skip
        print(f"  a run absorbing one minute (60 parts) {out['absorb_run_s']:.3f} s: {out['part_ms']:.1f} ms a part")
        print(f"  cold incremental window (no summaries yet, 3,600 parts) {out['cold_s']:.2f} s")
        print(f"  row-based window after compaction {out['rows_based_s']:.3f} s (rounds {out['rows_rounds_s']}), "
              f"read floor {out['read_floor_s']:.3f} s, compaction {out['compact_s']:.1f} s, "
              f"monitor create {out['create_s']:.2f} s")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
