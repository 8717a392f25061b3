"""An incremental monitor window over one hour of an endpoint's traffic at 1,000 requests/s (issue #13).

    .venv/bin/python bench/bench_monitor.py [--rate 1000] [--features 10] [--rounds 3] [--json]

Set-up (untimed): a LogisticRegression on ``--features`` float columns, registered; its training data (50,000
rows) as a dataset version; an endpoint record; one hour of collected traffic written exactly as the collector
writes it (``collected/requests/endpoint=bench/hour=…/part-….parquet``: one part a second, ``--rate`` rows
each, so 3,600 parts and 3.6M rows at 1,000 req/s) with ground truth for 10% of the requests in the feedback
partitions; the second half-hour drifts (three features shifted by 0.5 std). A monitor (reference: the dataset
version, built once, timed separately) is created per round.

Timed: ``run_monitor`` computing that one window (every signal: drift per feature, dataset and prediction
drift, quality, live accuracy joined from feedback, estimated accuracy by re-scoring the inputs, technical) and
recording it; also with re-scoring off (``estimated.rescore=false``), and the floor: reading the hour's rows
alone (``read_collected`` with feedback, unsorted). Before the first round the hour's 3,600 parts are compacted
into one file, as an endpoint's supervisor does in the background once an hour closes (timed and reported
apart). The bar: the window in under 1 s.
"""

from __future__ import annotations

import argparse
import json
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


def setup(folder: Path, rate: int, features: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.artifacts.collected import FEEDBACK, REQUESTS, CollectedRoot, hour_of
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
    root = CollectedRoot(client.artifacts.uri)
    t0 = (int(time.time() * 1000) // HOUR_MS - 3) * HOUR_MS  # an hour three hours ago
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
    return {"client": client, "t0": t0, "rows": 3600 * rate}


def one_round(env: dict[str, Any], i: int, rescore: bool) -> dict[str, float]:
    from mloop.artifacts.collected_read import read_collected
    from mloop.monitoring.monitors import create_monitor, run_monitor

    client, t0 = env["client"], env["t0"]
    spec = {"endpoint": "bench", "reference": {"dataset": "data:train/1", "target": "label"},
            "window": {"every": "1h"}, "estimated": {"rescore": rescore}, "alerts": {"notify": []}}  # fmt: skip
    started = time.perf_counter()
    create_monitor(client, f"m{i}-{int(rescore)}", spec)
    created = time.perf_counter() - started
    from mloop.artifacts.compaction import compact_endpoint

    started = time.perf_counter()
    merged = compact_endpoint(client.artifacts.uri, "bench")  # what the endpoint's supervisor does in the background
    compact = time.perf_counter() - started if merged else env.get("compact_s", 0.0)
    env["compact_s"] = compact
    started = time.perf_counter()
    done = run_monitor(client, f"m{i}-{int(rescore)}", now=t0 + HOUR_MS + 10_000)
    window = time.perf_counter() - started
    assert len(done) == 1 and done[0]["rows"] == env["rows"], done
    started = time.perf_counter()
    from datetime import UTC, datetime

    table = read_collected(client.artifacts.uri, "bench", since=datetime.fromtimestamp(t0 / 1000, UTC),
                           until=datetime.fromtimestamp((t0 + HOUR_MS) / 1000, UTC), with_feedback=True,
                           role="live", sort=False)  # fmt: skip
    read = time.perf_counter() - started
    assert table.num_rows == env["rows"]
    return {
        "window_s": window,
        "create_s": created,
        "read_s": read,
        "compact_s": compact,
        "breaches": len(done[0]["breaches"]),
    }


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
        env = setup(folder, args.rate, args.features)
        setup_s = time.perf_counter() - started
        rounds = {True: [], False: []}  # type: dict[bool, list[dict[str, float]]]
        for i in range(args.rounds):
            for rescore in (True, False) if i % 2 == 0 else (False, True):
                rounds[rescore].append(one_round(env, i, rescore))
        out = {"rows": env["rows"], "rate": args.rate, "features": args.features, "setup_s": setup_s}
        for rescore, items in rounds.items():
            key = "with_rescore" if rescore else "without_rescore"
            out[key] = {k: statistics.median(r[k] for r in items) for k in items[0]}
            out[key]["all_window_s"] = [round(r["window_s"], 3) for r in items]
        if args.json:
            print(json.dumps(out, indent=2))
            return
        print(f"{out['rows']:,} rows ({args.rate}/s for 1 h, {args.features} features); set-up {setup_s:.0f} s")
        for key in ("with_rescore", "without_rescore"):
            r = out[key]
            print(
                f"  {key:16s} window {r['window_s']:.3f} s (rounds {r['all_window_s']}), read floor "
                f"{r['read_s']:.3f} s, monitor create {r['create_s']:.2f} s, breaches {r['breaches']:.0f}, "
                f"compaction of the hour (once; the supervisor does it in the background) {r['compact_s']:.1f} s"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
