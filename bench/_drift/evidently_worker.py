"""Evidently's side of bench/bench_drift.py, run by bench/.venv-evidently's python (no mloop there).

    python bench/_drift/evidently_worker.py ROWS

Loads the generated reference and current tables into pandas DataFrames (untimed), then times
``Report([DataDriftPreset()]).run(current_data=..., reference_data=...)`` and prints ``RESULT {json}`` with
the time, the per-column scores and methods Evidently chose, and the peak RSS.
"""

from __future__ import annotations

import json
import re
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data


def main() -> None:
    rows = int(sys.argv[1])
    folder = data.data_dir(rows)
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = pd.DataFrame(data.whole(folder, "ref"))
    cur = pd.DataFrame(data.whole(folder, "cur"))
    warnings.simplefilter("ignore")
    start, cpu = time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    scores: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    methods: set[str] = set()
    for metric in snapshot.dict()["metrics"]:
        match = re.match(r"ValueDrift\(column=(\w+),method=([^,]+),threshold=([\d.]+)\)", metric["metric_name"])
        if match:
            scores[match.group(1)] = float(metric["value"])
            thresholds[match.group(1)] = float(match.group(3))
            methods.add(f"{match.group(2)} >= {match.group(3)}")
    drifted = sorted(name for name, score in scores.items() if score >= thresholds[name])
    out = {"seconds": seconds, "cpu_s": cpu_s, "scores": scores, "methods": sorted(methods), "drifted": drifted,
           "peak_rss_mb": data.peak_rss_mb()}  # fmt: skip
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
