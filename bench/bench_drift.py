"""Data drift on 1,000,000 x 20 numeric features: mloop fast and exact modes vs Evidently's DataDriftPreset.

    python bench/bench_drift.py [--rows 1000000] [--rounds 3] [--evidently-rounds 3] [--big-rows 10000000]
                                [--sides mloop-fast,mloop-exact,evidently,mloop-chunked] [--json]

Data (never timed; written once under $MLOOP_BENCH_TMP or /tmp, see ``bench/_drift/data.py``): a reference and
a current table of ``--rows`` x 20 float64 features (normal, lognormal, uniform, gamma), four features of the
current shifted (three beyond the 0.1-sd threshold, one at 0.05 sd that must not be flagged).

Sides, each round in a fresh subprocess (imports and loading the tables into memory untimed):

* ``mloop-fast``    the reference sketch is built once (``build_reference``, timed apart as "sketch build",
                    its JSON size reported), then ``data_drift(sketch, current)``: the automatic choice
                    (Wasserstein at this size) for all 20 features -- the "drift computation" of the bar
                    (< 1.5 s). Also timed: the same with ``ks`` and with ``psi`` forced on every feature.
* ``mloop-exact``   ``data_drift(reference, current, mode="exact")``: scipy-equal statistics from both samples.
* ``evidently``     ``Report([DataDriftPreset()]).run(current_data, reference_data)`` on pandas DataFrames of
                    the same arrays (bench/.venv-evidently, created on first use from
                    bench/requirements-evidently.txt; kept out of MLflow's bench/.venv: Evidently pulls in a
                    large tree and 0.7.23 needs pandas < 3).
* ``mloop-chunked`` ``--big-rows`` (10M) rows per table read from disk in 1M-row chunks: the sketch built in two
                    passes (``build_reference_chunked``), the current table binned chunk by chunk into
                    additive counts (``summarise``, ``+``), then ``data_drift`` on the merged counts. Peak RSS
                    (VmHWM) is the bounded-memory figure; time includes reading the chunks (page cache).

Reported: median seconds over rounds, the ratio Evidently / mloop-fast (bar >= 50x), which features each side
flagged (they must agree: f00, f05, f15), and the largest difference between mloop's and Evidently's normed
Wasserstein scores. Benchmarks are not tests: they print medians and ratios and never gate CI on a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _drift import data

SCRIPT = Path(__file__).resolve()
BENCH = SCRIPT.parent
EVIDENTLY_VENV = BENCH / ".venv-evidently"
SIDES = ("mloop-fast", "mloop-exact", "evidently", "mloop-chunked")
FAST_BAR_S = 1.5
RATIO_BAR = 50.0


# ---------------------------------------------------------------------------------------------- workers


def worker(side: str, rows: int) -> dict[str, Any]:
    from mloop.monitoring.drift import data_drift, dataset_drift, summarise
    from mloop.monitoring.reference import build_reference, build_reference_chunked

    folder = data.data_dir(rows)
    out: dict[str, Any] = {}
    if side == "mloop-chunked":
        start = time.perf_counter()
        sketch = build_reference_chunked(lambda: data.chunks(folder, "ref"))
        out["build_s"] = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        merged: dict[str, Any] = {}
        for chunk in data.chunks(folder, "cur"):
            for name, counts in summarise(sketch, chunk).items():
                merged[name] = counts if name not in merged else merged[name] + counts
        results = data_drift(sketch, merged)
        out["seconds"], out["cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    else:
        import scipy.stats  # noqa: F401  (imported by the ks variant; import time is not drift time)

        ref, cur = data.whole(folder, "ref"), data.whole(folder, "cur")
        if side == "mloop-exact":
            start, cpu = time.perf_counter(), time.process_time()
            results = data_drift(ref, cur, mode="exact")
            out["seconds"], out["cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
        else:
            start = time.perf_counter()
            sketch = build_reference(ref)
            out["build_s"] = time.perf_counter() - start
            out["sketch_json_kb"] = len(json.dumps(sketch.to_dict())) / 1024
            start, cpu = time.perf_counter(), time.process_time()
            results = data_drift(sketch, cur)
            out["seconds"], out["cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
            for method in ("ks", "psi"):
                start = time.perf_counter()
                forced = data_drift(sketch, cur, methods=dict.fromkeys(cur, method))
                out[f"{method}_s"] = time.perf_counter() - start
                out[f"{method}_drifted"] = sorted(r.feature for r in forced if r.drifted)
                out[f"{method}_max_error_bound"] = max(r.error_bound for r in forced)
    out["drifted"] = sorted(r.feature for r in results if r.drifted)
    out["methods"] = sorted({r.method for r in results})
    out["scores"] = {r.feature: r.statistic for r in results}
    out["max_error_bound"] = max(r.error_bound for r in results)
    out["dataset_drift"] = dataset_drift(results).to_dict()["drifted"]
    out["peak_rss_mb"] = data.peak_rss_mb()
    return out


# ---------------------------------------------------------------------------------------------- driver


def ensure_evidently() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(BENCH / "requirements-evidently.txt")], check=True
    )
    return python


def run(side: str, rows: int, evidently_python: Path | None) -> dict[str, Any]:
    if side == "evidently":
        assert evidently_python is not None
        cmd = [str(evidently_python), str(BENCH / "_drift" / "evidently_worker.py"), str(rows)]
    else:
        cmd = [sys.executable, str(SCRIPT), "--worker", side, "--rows", str(rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(f"{side} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, results in runs.items():
        if not results:
            continue
        row: dict[str, Any] = {"rounds": len(results), "seconds": [r["seconds"] for r in results]}
        for key in ("seconds", "cpu_s", "build_s", "ks_s", "psi_s", "peak_rss_mb", "sketch_json_kb"):
            if key in results[0]:
                row[f"median_{key}"] = median([r[key] for r in results])
        row["drifted"] = results[-1]["drifted"]
        row["methods"] = results[-1]["methods"]
        for key in ("max_error_bound", "ks_drifted", "psi_drifted", "ks_max_error_bound"):
            if key in results[-1]:
                row[key] = results[-1][key]
        out[side] = row
    fast, evid = runs.get("mloop-fast"), runs.get("evidently")
    if fast and evid:
        out["ratio_evidently_over_fast"] = median([r["seconds"] for r in evid]) / median([r["seconds"] for r in fast])
        out["cpu_ratio_evidently_over_fast"] = median([r["cpu_s"] for r in evid]) / median([r["cpu_s"] for r in fast])
        out["max_score_difference"] = max(
            abs(fast[-1]["scores"][name] - evid[-1]["scores"][name]) for name in evid[-1]["scores"]
        )
    return out


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nData drift, {args.rows:,} rows x {data.FEATURES} numeric features (median of rounds)")
    print(f"{'side':<16} {'rounds':>6} {'drift s':>9} {'CPU s':>8} {'build s':>8} {'peak RSS MB':>12}  flagged")
    for side in SIDES:
        row = result.get(side)
        if not row:
            continue
        build = f"{row['median_build_s']:.3f}" if "median_build_s" in row else "-"
        flagged = ",".join(row["drifted"])
        print(f"{side:<16} {row['rounds']:>6} {row['median_seconds']:>9.3f} {row['median_cpu_s']:>8.3f} {build:>8} "
              f"{row['median_peak_rss_mb']:>12.0f}  {flagged} ({'/'.join(row['methods'])})")  # fmt: skip
    fast = result.get("mloop-fast")
    if fast:
        print(f"mloop-fast: ks on all features {fast['median_ks_s']:.3f} s (max KS error bound "
              f"{fast['ks_max_error_bound']:.5f}), psi {fast['median_psi_s']:.3f} s; sketch JSON "
              f"{fast['median_sketch_json_kb']:.0f} KB; bar < {FAST_BAR_S} s: "
              f"{'met' if fast['median_seconds'] < FAST_BAR_S else 'NOT met'}")  # fmt: skip
    if "ratio_evidently_over_fast" in result:
        ratio = result["ratio_evidently_over_fast"]
        print(f"Evidently / mloop-fast: {ratio:.1f}x wall, {result['cpu_ratio_evidently_over_fast']:.1f}x CPU "
              f"(bar >= {RATIO_BAR:.0f}x: {'met' if ratio >= RATIO_BAR else 'NOT met'}); "
              f"largest |score difference| mloop-fast vs Evidently: {result['max_score_difference']:.2e}")  # fmt: skip
    print(f"expected flagged: {','.join(data.EXPECTED_DRIFTED)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--evidently-rounds", type=int, default=3)
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="rows for mloop-chunked (0: skip)")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.rows)), flush=True)
        return
    sides = [s for s in args.sides.split(",") if s]
    data.ensure(args.rows)
    if "mloop-chunked" in sides and args.big_rows:
        data.ensure(args.big_rows)
    evidently_python = ensure_evidently() if "evidently" in sides else None
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for round_ in range(max(args.rounds, args.evidently_rounds)):
        for side in sides:
            if side == "mloop-chunked" and (round_ >= args.rounds or not args.big_rows):
                continue
            if (side == "evidently" and round_ >= args.evidently_rounds) or (
                side != "evidently" and round_ >= args.rounds
            ):
                continue
            rows = args.big_rows if side == "mloop-chunked" else args.rows
            result = run(side, rows, evidently_python)
            runs[side].append(result)
            print(f"round {round_ + 1} {side}: {result['seconds']:.3f} s", file=sys.stderr, flush=True)
    result = summary(runs)
    result["rows"], result["big_rows"] = args.rows, args.big_rows
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, args)


if __name__ == "__main__":
    main()
