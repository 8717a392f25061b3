"""Batch scoring (issue #11): in-process ``model.predict`` on all rows vs ``mloop score`` in chunks.

    python bench/bench_score.py [--rows 1000000] [--repeat 3] [--workers 2] [--model logreg|forest] [--json]

Set-up (untimed): a fresh workspace in a temporary folder, a scikit-learn logistic regression on 10 float
columns (``--model forest``: a 100-tree random forest, where predict dominates) registered with its
signature, and a seeded Parquet file of ``--rows`` rows (row groups of 100,000) plus one of a quarter of the
rows (to show that peak memory does not grow with the input).

Sides, each in a fresh process per repeat, peak RSS from ``os.wait4`` (the process's high-water mark):

* ``in-process``  a Python process that loads the model with ``mloop.load_model`` (untimed, like the
                  imports), then times ``pq.read_table(path).to_pandas()`` + ``model.predict(frame)`` on all
                  rows at once (the baseline: all rows in memory).
* ``score``       ``mloop score MODEL INPUT -o OUT.parquet --no-register --json`` (the CLI, start-up included;
                  the JSON's ``seconds`` minus ``load_seconds`` is timed, the model load being untimed on
                  both sides; ``wall`` is the whole process, interpreter start-up and imports included).
* ``score-register``  the same with registration (the output snapshotted as a dataset version with lineage).
* ``score-wN``    ``--workers N --no-register``.
* ``score-quarter``  ``--no-register`` on the quarter-size file (flat memory: peak RSS ≈ the full-size run).

The bar: throughput within 2x of in-process predict, peak memory flat. Medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PY = sys.executable
MLOOP = str(Path(sys.executable).parent / "mloop")
FEATURES = [f"f{i}" for i in range(10)]

INPROCESS = """
import sys, time, json
import pyarrow.parquet as pq
import mloop
from mloop.context import Context
ctx = Context(sys.argv[1])
model = mloop.load_model("model:bench", client=ctx)
t0 = time.perf_counter()
frame = pq.read_table(sys.argv[2]).to_pandas()
pred = model.predict(frame[FEATURES])
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": len(pred)}))
""".replace("FEATURES", repr(FEATURES))


def _measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout): the child is reaped with wait4 to read its own ru_maxrss."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def _setup(folder: Path, rows: int, kind: str = "logreg") -> tuple[str, Path, Path]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.tracking.client import Client

    ws = mloop.init_workspace(folder / "ws")
    client = Client(workspace=ws)
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(5000, len(FEATURES))), columns=FEATURES)
    y = (train["f0"] + train["f1"] * 0.5 > 0).astype(int)
    with client.start_run("bench", "train") as run:
        model = LogisticRegression() if kind == "logreg" else RandomForestClassifier(100, max_depth=12, random_state=0)
        run.log_model(model.fit(train, y), "bench", signature_data=train)
    uri = client.settings.store_uri
    client.close()
    full, quarter = folder / "input.parquet", folder / "quarter.parquet"
    for path, n in ((full, rows), (quarter, rows // 4)):
        with pq.ParquetWriter(path, pa.schema([(c, pa.float64()) for c in FEATURES])) as writer:
            for start in range(0, n, 100_000):
                size = min(100_000, n - start)
                block = rng.normal(size=(size, len(FEATURES)))
                writer.write_table(pa.table({c: block[:, i] for i, c in enumerate(FEATURES)}))
    return uri, full, quarter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", choices=["logreg", "forest"], default="logreg")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("MLOOP_BENCH_TMP")) as tmp:
        folder = Path(tmp)
        uri, full, quarter = _setup(folder, args.rows, args.model)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
        env.update({"MLOOP_URI": uri, "MLOOP_HOME": str(folder / "home"), "NO_COLOR": "1"})
        out = str(folder / "out.parquet")
        score = [MLOOP, "score", "model:bench", str(full), "-o", out, "--json"]
        sides: dict[str, tuple[list[str], int]] = {
            "in-process": ([PY, "-c", INPROCESS, uri, str(full)], args.rows),
            "score": ([*score, "--no-register"], args.rows),
            "score-register": (score, args.rows),
            f"score-w{args.workers}": ([*score, "--no-register", "--workers", str(args.workers)], args.rows),
            "score-quarter": ([MLOOP, "score", "model:bench", str(quarter), "-o", out, "--json", "--no-register"],
                              args.rows // 4),
        }  # fmt: skip
        _measure(sides["score"][0], env)  # warm: the model's verified local copy, the page cache
        for _ in range(args.repeat):
            for side, (cmd, rows) in sides.items():
                wall, rss, stdout = _measure(cmd, env)
                report = json.loads(stdout)
                inner = report["seconds"] - report.get("load_seconds", 0.0)  # model load: untimed on both sides
                entry = results.setdefault(side, {"rows": rows, "wall": [], "inner": [], "rss_mib": []})
                entry["wall"].append(wall)
                entry["inner"].append(inner)
                entry["rss_mib"].append(rss)
    base = statistics.median(results["in-process"]["inner"])
    summary = {}
    for side, r in results.items():
        inner, wall, rss = (statistics.median(r[k]) for k in ("inner", "wall", "rss_mib"))
        summary[side] = {"rows": r["rows"], "seconds": round(inner, 3), "process_wall": round(wall, 3),
                         "rows_per_s": round(r["rows"] / inner), "peak_rss_mib": round(rss, 1),
                         "time_vs_in_process": round(inner / base * args.rows / r["rows"], 2)}  # fmt: skip
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "rows": args.rows,
                    "repeat": args.repeat,
                    "load": os.getloadavg(),
                    "sides": summary,
                }
            )
        )
        return
    model = "LogisticRegression" if args.model == "logreg" else "RandomForest (100 trees, depth 12)"
    print(f"{args.rows:,} rows x {len(FEATURES)} floats, {model}, median of {args.repeat}; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'side':16} {'rows':>10} {'seconds':>8} {'wall':>7} {'rows/s':>11} {'peak RSS':>10} {'x in-proc':>9}")
    for side, s in summary.items():
        print(f"{side:16} {s['rows']:>10,} {s['seconds']:>8.2f} {s['process_wall']:>7.2f} {s['rows_per_s']:>11,} "
              f"{s['peak_rss_mib']:>7.0f} MiB {s['time_vs_in_process']:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
