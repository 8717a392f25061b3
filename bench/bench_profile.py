"""Table profiling: mloop's profile_table vs pandas describe on a 1,000,000 x 20 Parquet file.

    python bench/bench_profile.py [--rows 1000000] [--repeat 5] [--json] [--save PATH] [--sides ...]

Data (never timed, written once to $MLOOP_BENCH_TMP or /tmp and reused): a seeded Parquet file of ``--rows``
rows x 20 columns: 8 float64 (normal, some with 2 % nulls, one lognormal), 6 int64 (0..1, 0..9, 0..999,
0..99,999, 0..2**40, 0..364) and 6 text columns (3, 12 and 50 uniform categories; 1,000, 20,000 and 200,000
possible values drawn Zipf-skewed). Written by pyarrow with default settings (one row group, statistics on).

Sides, each timed in a fresh subprocess per repeat (imports untimed, file in the page cache):

* ``mloop``          ``mloop.datasets.profile.profile_table(path)``: schema, count/missing, min/max/mean/std,
                     7 quantiles and a 20-bin histogram per numeric column, top-20 values and cardinality per
                     text column.
* ``mloop-1thread``  the same with ``threads=1`` (how much the 2 cores help).
* ``pandas``         ``pd.read_parquet(path).describe(include="all")``. The heavy profilers
                     (ydata-profiling, evidently) take minutes on this size and pull in large dependency
                     trees, so pandas' describe stands in as the everyday peer; it computes less (count, mean,
                     std, min/max and 3 quantiles per number; count, unique, top, freq per text column).
* ``arrow-read``     ``pyarrow.parquet.read_table(path)`` alone: the physical limit, i.e. the time to just get
                     the data into memory.

Peak RSS is the worker's high-water mark (``VmHWM``, else ``resource.getrusage(RUSAGE_SELF).ru_maxrss``;
it includes the interpreter and imports, reported separately as "RSS after imports"). Bars for mloop: < 2 s
and < 1 GB. The answers are cross-checked (row count and the mean of f0 agree between mloop and pandas).
The machine these run on is small and shared: read the medians and the load average printed with them.
"""

from __future__ import annotations

import importlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPT = Path(__file__).resolve()
SEED = 7
SIDES = ("mloop", "mloop-1thread", "pandas", "arrow-read")
TIME_BAR_S = 2.0
RSS_BAR_MB = 1024.0
DATA_VERSION = 1  # bump when make_data changes, so a cached file is not reused


def data_path(rows: int) -> Path:
    base = Path(os.environ.get("MLOOP_BENCH_TMP", tempfile.gettempdir()))
    return base / f"mloop-bench-profile-v{DATA_VERSION}-{rows}x20-seed{SEED}.parquet"


def make_data(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    cols: dict[str, Any] = {}
    for i in range(7):
        values = rng.normal(i, 1 + i, rows)
        cols[f"f{i}"] = pa.array(values, mask=rng.random(rows) < 0.02) if i % 2 == 0 else pa.array(values)
    cols["f7"] = pa.array(rng.lognormal(0, 1, rows))
    for i, high in enumerate([2, 10, 1_000, 100_000, 1 << 40, 365]):
        cols[f"i{i}"] = pa.array(rng.integers(0, high, rows))
    for i, card in enumerate([3, 12, 50, 1_000, 20_000, 200_000]):
        names = np.array([f"cat_{j:06d}" for j in range(card)], dtype=object)
        picks = rng.integers(0, card, rows) if card <= 50 else rng.zipf(1.3, rows) % card
        cols[f"s{i}"] = pa.array(names[picks], type=pa.string())
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(cols), tmp)
    tmp.replace(path)


# ============================================================================================ workers


def _rss_mb() -> float:
    """Peak RSS of this process so far. ru_maxrss carries the parent's peak over fork+exec on Linux, so the
    driver keeps itself small (the data is generated in a worker) and VmHWM, which exec resets, is preferred."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def w_profile(spec: dict[str, Any]) -> dict[str, Any]:
    side, path = spec["side"], spec["path"]
    checks: dict[str, Any] = {}
    if side.startswith("mloop"):
        from mloop.datasets.profile import profile_table

        before = _rss_mb()
        t0 = time.perf_counter()
        profile = profile_table(path, threads=1 if side == "mloop-1thread" else None)
        seconds = time.perf_counter() - t0
        checks = {"rows": profile.rows, "f0_mean": profile.column("f0").mean, "columns": len(profile.columns)}
        extra = {"json_bytes": len(profile.to_json())}
    elif side == "pandas":
        import pandas as pd

        importlib.import_module("pyarrow.dataset")  # read_parquet imports it on first use: keep that untimed

        before = _rss_mb()
        t0 = time.perf_counter()
        df = pd.read_parquet(path)
        t_read = time.perf_counter() - t0
        described = df.describe(include="all")
        seconds = time.perf_counter() - t0
        checks = {"rows": len(df), "f0_mean": float(described.loc["mean", "f0"]), "columns": described.shape[1]}
        extra = {"read_s": t_read, "describe_s": seconds - t_read}
    elif side == "arrow-read":
        importlib.import_module("pyarrow.dataset")  # as above: untimed
        import pyarrow.parquet as pq

        before = _rss_mb()
        t0 = time.perf_counter()
        table = pq.read_table(path)
        seconds = time.perf_counter() - t0
        checks = {"rows": table.num_rows, "columns": table.num_columns}
        extra = {}
    else:
        raise ValueError(f"unknown side {side!r}")
    return {"seconds": seconds, "rss_mb": _rss_mb(), "rss_after_imports_mb": before, "checks": checks, **extra}


def w_make(spec: dict[str, Any]) -> dict[str, Any]:
    make_data(Path(spec["path"]), int(spec["rows"]))
    return {"path": spec["path"]}


WORKERS = {"profile": w_profile, "make": w_make}


# ============================================================================================ driver


def run_side(side: str, path: Path, rep: int) -> dict[str, Any]:
    spec = {"task": "profile", "side": side, "path": str(path), "rep": rep}
    return c.run_worker(SCRIPT, spec, c.quiet_env(), cwd=path.parent, timeout=1800)


def summarise(samples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for side, runs in samples.items():
        if not runs:
            continue
        row: dict[str, Any] = {
            "median_s": c.median(r["seconds"] for r in runs),
            "min_s": min(r["seconds"] for r in runs),
            "max_s": max(r["seconds"] for r in runs),
            "peak_rss_mb": c.median(r["rss_mb"] for r in runs),
            "rss_after_imports_mb": c.median(r["rss_after_imports_mb"] for r in runs),
            "runs": len(runs),
            "checks": runs[-1]["checks"],
        }
        for key in ("read_s", "describe_s", "json_bytes"):
            if key in runs[0]:
                row[key] = c.median(r[key] for r in runs)
        out[side] = row
    limit = out.get("arrow-read", {}).get("median_s")
    for row in out.values():
        row["x_read"] = c.ratio(row["median_s"], limit)
    mloop_s = out.get("mloop", {}).get("median_s")
    for row in out.values():
        row["x_mloop"] = c.ratio(row["median_s"], mloop_s)
    return out


def cross_check(results: dict[str, dict[str, Any]], rows: int) -> list[str]:
    problems = [
        f"{side}: {r['checks'].get('rows')} rows, expected {rows}"
        for side, r in results.items()
        if r["checks"].get("rows") != rows
    ]
    mean_m = results.get("mloop", {}).get("checks", {}).get("f0_mean")
    mean_p = results.get("pandas", {}).get("checks", {}).get("f0_mean")
    if mean_m is not None and mean_p is not None and abs(mean_m - mean_p) > 1e-9 * max(1.0, abs(mean_p)):
        problems.append(f"mean of f0 differs: mloop {mean_m!r} vs pandas {mean_p!r}")
    return problems


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("mloop", "pyarrow", "numpy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def show(doc: dict[str, Any]) -> None:
    rows = []
    for side, r in doc["results"].items():
        rows.append(
            [
                side,
                c.fmt_s(r["median_s"]),
                f"{c.fmt_s(r['min_s'])} .. {c.fmt_s(r['max_s'])}",
                c.fmt_x(r["x_read"]),
                c.fmt_x(r["x_mloop"]),
                f"{r['peak_rss_mb']:,.0f} MB",
                f"{r['rss_after_imports_mb']:,.0f} MB",
            ]
        )
    bars = doc["bars"]
    note = (
        f"{doc['rows']:,} rows x 20 columns, {doc['file_mb']:.0f} MB Parquet; median of {doc['repeat']} fresh "
        f"processes; {doc['cpus']} CPUs; load average at start {doc['load_average']:.1f}.\n"
        "x read = time / arrow-read (the physical limit); x mloop = time / mloop.\n"
        f"Bars for mloop: time < {TIME_BAR_S:.0f} s -> {'PASS' if bars['time_ok'] else 'FAIL'}, "
        f"peak RSS < {RSS_BAR_MB:.0f} MB -> {'PASS' if bars['rss_ok'] else 'FAIL'}."
    )
    pandas = doc["results"].get("pandas")
    if pandas:
        note += (
            f"\npandas split: read_parquet {c.fmt_s(pandas['read_s'])}, "
            f"describe(include='all') {c.fmt_s(pandas['describe_s'])}."
        )
    if doc["problems"]:
        note += "\nCROSS-CHECK PROBLEMS: " + "; ".join(doc["problems"])
    columns = ["side", "median", "range", "x read", "x mloop", "peak RSS", "RSS after imports"]
    c.print_table("profile_table vs pandas describe vs reading alone", columns, rows, note)


def main() -> None:
    parser = c.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated table (default 1e6)")
    args = parser.parse_args()
    sides = [s.strip() for s in (args.sides or ",".join(SIDES)).split(",") if s.strip()]
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        raise SystemExit(f"unknown side(s) {unknown}; choose from {list(SIDES)}")
    path = data_path(args.rows)
    if not path.exists():
        c.log(f"writing {args.rows:,} x 20 Parquet table to {path} ...")
        spec = {"task": "make", "side": "data", "path": str(path), "rows": args.rows}
        c.run_worker(SCRIPT, spec, c.quiet_env(), cwd=path.parent)
    load = os.getloadavg()[0]
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for rep in range(args.repeat):
        for side in c.rotated(sides, rep):
            samples[side].append(run_side(side, path, rep))
            c.log(f"[{rep + 1}/{args.repeat}] {side}: {c.fmt_s(samples[side][-1]['seconds'])}")
    results = summarise(samples)
    mloop = results.get("mloop", {})
    doc = {
        "benchmark": "profile",
        "rows": args.rows,
        "file": str(path),
        "file_mb": path.stat().st_size / 1e6,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average": load,
        "versions": versions(),
        "results": results,
        "bars": {
            "time_s": TIME_BAR_S,
            "rss_mb": RSS_BAR_MB,
            "time_ok": bool(mloop) and mloop["median_s"] < TIME_BAR_S,
            "rss_ok": bool(mloop) and mloop["peak_rss_mb"] < RSS_BAR_MB,
        },
        "problems": cross_check(results, args.rows),
    }
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
    else:
        show(doc)


if __name__ == "__main__":
    if c.is_worker():
        c.worker_main(WORKERS)
    else:
        main()
