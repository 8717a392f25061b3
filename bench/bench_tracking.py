"""Tracking write path: mloop vs MLflow on the same work.

    python bench/bench_tracking.py metric-loop [--steps 10000] [--repeat 5] [--json]
    python bench/bench_tracking.py runs [--runs 1000] [--repeat 5] [--json]
    python bench/bench_tracking.py            # both
    python bench/bench_tracking.py profile-runs [--runs 1000] [--repeat 3]   # mloop only: where a run's time goes

metric-loop
    One run; a per-call loop of N ``log_metric(key, value, step=i)`` calls (``mlflow.log_metric`` vs
    ``run.log_metric``). Timed from just before the run starts to just after it ends, so mloop's buffered
    flush at the end of the run is inside the timed region. Untimed afterwards: the whole history is read
    back and every (step, value) pair checked on both sides.
runs
    N runs, each started, given 10 params with one ``log_params`` call and 10 metrics with one
    ``log_metrics`` call, and ended. Untimed afterwards: the number of stored runs and one run's
    params/metrics are checked.

Untimed set-up on each side, in the worker before the clock starts: import, open the store and make sure
the experiment exists (MLflow: ``mlflow.set_experiment``; mloop: a first ``start_run`` in a *separate*
experiment, which opens/migrates the store), so neither side is charged for creating a database.
profile-runs
    mloop-sqlite only, never part of the comparison: the ``runs`` work under phase timers, the same SQL replayed
    with plain sqlite3, and ``py-spy`` (see ``bench/_tracking/__init__.py``).

Repeats interleave the sides (mloop, MLflow, MLflow, mloop, ...: the first side rotates per repeat), and the
headline ratio is the median of the per-repeat ratios mlflow/mloop with their min-max range: the two sides of
a repeat ran back to back under the same load. The ratio of the two medians is printed beside it.

``--before-src DIR`` adds the side mloop-sqlite-before: mloop imported from DIR (e.g. ``git archive <commit> src``
unpacked, then DIR=<that>/src), interleaved with the others, so one invocation measures a change before and after
against the same MLflow samples (both trees must share the schema revision; the before side creates its store
with its own code).

Sides: mloop-sqlite, mlflow-sqlite (MLflow's recommended local backend), mlflow-file (MLflow's deprecated
file store, opted in with MLFLOW_ALLOW_FILE_STORE) and, for metric-loop only, mlflow-sqlite-async (MLflow's
own asynchronous logging, ``MLFLOW_ENABLE_ASYNC_LOGGING=true``, the closest MLflow comes to mloop's buffer).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from _tracking.phases import w_profile_phases
from _tracking.report import profile_runs, show_profile

SCRIPT = Path(__file__).resolve()
N_PARAMS = 10
N_METRICS = 10
MLOOP_BEFORE = "mloop-sqlite-before"  # mloop-sqlite with mloop imported from --before-src


def value_at(i: int) -> float:
    """A value that round-trips exactly through float64 storage and differs per step."""
    return 1.0 / (i + 1)


# ============================================================================================ workers


def _mlflow_prepare() -> Any:
    c.mlflow_setup_logging()
    import mlflow

    mlflow.set_experiment("bench")
    return mlflow


def _mloop_prepare() -> Any:
    import mloop

    with mloop.start_run(experiment="bench-warmup", name="warmup"):
        pass
    return mloop


def w_metric_loop(spec: dict[str, Any]) -> dict[str, Any]:
    n = int(spec["steps"])
    side = spec["side"]
    if c.is_mlflow(side):
        mlflow = _mlflow_prepare()
        t0, cpu0 = c.now(), time.process_time()
        mlflow.start_run(run_name="r1")
        for i in range(n):
            mlflow.log_metric("loss", value_at(i), step=i)
        run_id = mlflow.active_run().info.run_id
        mlflow.end_run()
        elapsed, cpu = c.now() - t0, time.process_time() - cpu0
        points = mlflow.MlflowClient().get_metric_history(run_id, "loss")
        pairs = sorted((int(p.step), float(p.value)) for p in points)
        how = "api:MlflowClient.get_metric_history"
    else:
        mloop = _mloop_prepare()
        t0, cpu0 = c.now(), time.process_time()
        with mloop.start_run(experiment="bench", name="r1") as run:
            for i in range(n):
                run.log_metric("loss", value_at(i), step=i)
        elapsed, cpu = c.now() - t0, time.process_time() - cpu0
        run_id = c.mloop_run_id(run)
        pairs, how = c.mloop_metric_history(run_id, "loss")
    expected = [(i, value_at(i)) for i in range(n)]
    ok = pairs == expected
    if not ok:
        missing = len(set(expected) - set(pairs))
        raise AssertionError(f"{side}: stored {len(pairs)} points, {missing} of {n} expected points missing/wrong")
    return {"seconds": elapsed, "cpu_seconds": cpu, "stored": len(pairs), "verified": ok, "readback": how}


def _params(i: int) -> dict[str, str]:
    return {f"p{k}": f"v{i}_{k}" for k in range(N_PARAMS)}


def _metrics(i: int) -> dict[str, float]:
    return {f"m{k}": float(i * N_METRICS + k) / 7.0 for k in range(N_METRICS)}


def w_runs(spec: dict[str, Any]) -> dict[str, Any]:
    n = int(spec["runs"])
    side = spec["side"]
    if c.is_mlflow(side):
        mlflow = _mlflow_prepare()
        exp_id = mlflow.get_experiment_by_name("bench").experiment_id
        t0, cpu0 = c.now(), time.process_time()
        for i in range(n):
            mlflow.start_run(run_name=f"r{i}")
            mlflow.log_params(_params(i))
            mlflow.log_metrics(_metrics(i))
            mlflow.end_run()
        elapsed, cpu = c.now() - t0, time.process_time() - cpu0
        found = mlflow.search_runs(experiment_ids=[exp_id], max_results=n + 10, output_format="list")
        stored = len(found)
        sample = next(r for r in found if r.info.run_name == "r7")
        params, metrics = dict(sample.data.params), dict(sample.data.metrics)
    else:
        mloop = _mloop_prepare()
        t0, cpu0 = c.now(), time.process_time()
        for i in range(n):
            with mloop.start_run(experiment="bench", name=f"r{i}") as run:
                run.log_params(_params(i))
                run.log_metrics(_metrics(i))
        elapsed, cpu = c.now() - t0, time.process_time() - cpu0
        found = mloop.search_runs(experiment="bench", max_results=n + 10)
        stored = len(found)
        sample = next(r for r in found if r.name == "r7")
        params, metrics = dict(sample.params), dict(sample.metrics)
    if stored != n:
        raise AssertionError(f"{side}: {stored} runs stored, expected {n}")
    if params != _params(7) or metrics != _metrics(7):
        raise AssertionError(f"{side}: run r7 stored params={params} metrics={metrics}")
    return {"seconds": elapsed, "cpu_seconds": cpu, "stored": stored, "per_run_ms": elapsed / n * 1e3}


# ============================================================================================ driver


def _before_env(work: Path, before_src: str) -> dict[str, str]:
    """mloop-sqlite's environment with mloop imported from ``before_src``; the store is created by that code too."""
    env = c.quiet_env()
    env["MLOOP_URI"] = f"sqlite:///{work}/mloop.db"
    env["MLOOP_ARTIFACT_URI"] = str(work / "artifacts")
    env["PYTHONPATH"] = os.pathsep.join([before_src, *filter(None, [env.get("PYTHONPATH")])])
    create = "import os; from mloop.store import open_store; open_store(os.environ['MLOOP_URI']).close()"
    subprocess.run([sys.executable, "-c", create], env=env, cwd=work, check=True)
    return env


def measure(
    task: str, sides: list[str], repeat: int, extra: dict[str, Any], before_src: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for rep in range(repeat):
        for side in c.rotated(sides, rep):
            work = c.new_workdir(task)
            try:
                spec = {"task": task, "side": side, **extra}
                env = _before_env(work, before_src) if side == MLOOP_BEFORE and before_src else c.side_env(side, work)
                res = c.run_worker(SCRIPT, spec, env, cwd=work)
                samples[side].append(res)
                c.log(f"  {task} rep {rep + 1}/{repeat} {side:<20} {c.fmt_s(res['seconds'])}")
            except c.WorkerError as exc:
                c.log(f"  {task} rep {rep + 1}/{repeat} {side:<20} FAILED\n{exc}")
                samples[side].append({"seconds": None, "error": str(exc)})
            finally:
                c.remove_workdir(work)
    return samples


def summarise(task: str, samples: dict[str, list[dict[str, Any]]], count: int, bar: float) -> dict[str, Any]:
    meds = {s: c.median(r.get("seconds") for r in rs) for s, rs in samples.items()}
    base = meds.get(c.MLOOP_SQLITE)
    rows = {}
    for side, med in meds.items():
        rows[side] = {
            "median_s": med,
            "per_op_s": None if med is None else med / count,
            "samples_s": [r.get("seconds") for r in samples[side]],
            "cpu_samples_s": [r.get("cpu_seconds") for r in samples[side]],
            "cpu_median_s": c.median(r.get("cpu_seconds") for r in samples[side]),
            "ratio_vs_mloop": None if c.is_mlflow(side) is False else c.ratio(med, base),
            "errors": [r["error"] for r in samples[side] if "error" in r],
            "details": {k: v for k, v in samples[side][0].items() if k not in ("seconds", "error")}
            if samples[side]
            else {},
        }
    base_samples = rows[c.MLOOP_SQLITE]["samples_s"] if c.MLOOP_SQLITE in rows else []
    # CPU time of the worker over the timed region: much less sensitive to other jobs on the machine
    base_cpu = rows[c.MLOOP_SQLITE]["cpu_samples_s"] if c.MLOOP_SQLITE in rows else []
    for side, row in rows.items():
        mlflow_side = c.is_mlflow(side)
        row["paired_ratio_vs_mloop"] = c.paired_ratios(base_samples, row["samples_s"]) if mlflow_side else None
        row["paired_cpu_ratio_vs_mloop"] = c.paired_ratios(base_cpu, row["cpu_samples_s"]) if mlflow_side else None
    paired_main = (rows.get(c.MLFLOW_SQLITE) or {}).get("paired_ratio_vs_mloop")
    ratio_main = paired_main["median"] if paired_main else None
    before = rows.get(MLOOP_BEFORE)
    if before is not None:  # the same pairs against mloop before the change, and before / after per repeat
        for side, row in rows.items():
            if c.is_mlflow(side):
                row["paired_ratio_vs_before"] = c.paired_ratios(before["samples_s"], row["samples_s"])
                row["paired_cpu_ratio_vs_before"] = c.paired_ratios(before["cpu_samples_s"], row["cpu_samples_s"])
        before["paired_before_over_mloop"] = c.paired_ratios(base_samples, before["samples_s"])
        before["paired_cpu_before_over_mloop"] = c.paired_ratios(base_cpu, before["cpu_samples_s"])
    return {
        "task": task,
        "count": count,
        "bar_ratio": bar,
        # The headline: median over repeats of the per-repeat ratio (each repeat runs the sides back to back).
        "ratio_mlflow_sqlite_over_mloop": ratio_main,
        "ratio_range": None if not paired_main else [paired_main["min"], paired_main["max"]],
        "ratio_of_medians": c.ratio(meds.get(c.MLFLOW_SQLITE), base),
        "cpu_ratio": (rows.get(c.MLFLOW_SQLITE) or {}).get("paired_cpu_ratio_vs_mloop"),
        "meets_bar": None if ratio_main is None else ratio_main >= bar,
        "sides": rows,
    }


def show(summary: dict[str, Any], title: str, unit: str) -> None:
    rows = []
    for side, r in summary["sides"].items():
        base = "base" if side == c.MLOOP_SQLITE else "-"  # the before side's ratios are in the table below
        rows.append(
            [
                side,
                c.fmt_s(r["median_s"]),
                c.fmt_s(r["per_op_s"]),
                c.fmt_x(r["ratio_vs_mloop"]) if c.is_mlflow(side) else "1.0x (base)" if base == "base" else "-",
                c.fmt_range(r["paired_ratio_vs_mloop"]) if c.is_mlflow(side) else base,
                c.fmt_s(r["cpu_median_s"]),
                c.fmt_range(r["paired_cpu_ratio_vs_mloop"]) if c.is_mlflow(side) else base,
                f"{sum(1 for s in r['samples_s'] if s is not None)}/{len(r['samples_s'])}",
            ]
        )
    bar = summary["bar_ratio"]
    met = summary["meets_bar"]
    note = (
        "sides interleaved per repeat (the first side rotates); paired = median (min-max) of the per-repeat "
        f"ratios mlflow/mloop; bar: paired mlflow-sqlite/mloop >= {bar:g}x -> "
        f"{'MET' if met else 'NOT MET' if met is not None else 'n/a'}"
    )
    columns = ["side", "median", f"per {unit}", "ratio of medians", "paired ratio (range)", "CPU", "paired CPU ratio"]
    columns.append("ok runs")
    c.print_table(title, columns, rows, note)
    before = summary["sides"].get(MLOOP_BEFORE)
    if before is None:
        return
    pairs = [
        [
            f"{side} / {MLOOP_BEFORE}",
            c.fmt_range(r["paired_ratio_vs_before"]),
            c.fmt_range(r["paired_cpu_ratio_vs_before"]),
        ]
        for side, r in summary["sides"].items()
        if c.is_mlflow(side)
    ]
    pairs.append(
        [
            f"{MLOOP_BEFORE} / {c.MLOOP_SQLITE} (the speed-up)",
            c.fmt_range(before["paired_before_over_mloop"]),
            c.fmt_range(before["paired_cpu_before_over_mloop"]),
        ]
    )
    c.print_table(f"{title}: before and after, same repeats", ["ratio", "paired wall", "paired CPU"], pairs)


def main() -> None:
    parser = c.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="?", choices=["metric-loop", "runs", "all", "profile-runs"], default="all")
    parser.add_argument("--steps", type=int, default=10_000, help="metric-loop: log_metric calls (10000)")
    parser.add_argument("--runs", type=int, default=1_000, help="runs: number of runs (1000)")
    parser.add_argument("--pyspy-rate", type=int, default=250, help="profile-runs: py-spy samples per second (250)")
    parser.add_argument("--before-src", help="add the side mloop-sqlite-before: mloop imported from this src folder")
    args = parser.parse_args()
    before_src = str(Path(args.before_src).resolve()) if args.before_src else None
    with_before = [MLOOP_BEFORE] if before_src else []
    if args.which == "profile-runs":
        c.log(f"profile-runs: mloop-sqlite, {args.runs} runs x ({N_PARAMS} params + {N_METRICS} metrics)")
        doc = profile_runs(SCRIPT, args.runs, args.repeat, args.pyspy_rate)
        doc |= {"versions": c.versions(), "command": " ".join(["bench_tracking.py", *sys.argv[1:]])}
        c.save_json(doc, args.save)
        c.emit_json(doc) if args.json else show_profile(doc)
        return
    out: dict[str, Any] = {
        "versions": c.versions(),
        "repeat": args.repeat,
        "command": " ".join(["bench_tracking.py", *sys.argv[1:]]),
        "mloop_src": os.environ.get("PYTHONPATH") or "installed",
        "before_src": before_src,
        "loadavg_at_start": os.getloadavg(),
        "results": [],
    }
    if args.which in ("metric-loop", "all"):
        sides = c.pick_sides(args.sides, [c.MLOOP_SQLITE, c.MLFLOW_SQLITE, c.MLFLOW_FILE, c.MLFLOW_SQLITE_ASYNC])
        sides = with_before + sides
        c.log(f"metric-loop: {args.steps} log_metric calls, sides {sides}")
        samples = measure("metric_loop", sides, args.repeat, {"steps": args.steps}, before_src)
        summ = summarise("metric-loop", samples, args.steps, bar=100)
        out["results"].append(summ)
        if not args.json:
            show(summ, f"metric-loop: {args.steps:,} x log_metric in one run (incl. end of run)", "call")
    if args.which in ("runs", "all"):
        sides = with_before + c.pick_sides(args.sides, [c.MLOOP_SQLITE, c.MLFLOW_SQLITE, c.MLFLOW_FILE])
        c.log(f"runs: {args.runs} runs x ({N_PARAMS} params + {N_METRICS} metrics), sides {sides}")
        samples = measure("runs", sides, args.repeat, {"runs": args.runs}, before_src)
        summ = summarise("runs", samples, args.runs, bar=20)
        out["results"].append(summ)
        if not args.json:
            show(summ, f"runs: {args.runs:,} runs, each 10 params + 10 metrics, start to end", "run")
    out["loadavg_at_end"] = os.getloadavg()
    c.save_json(out, args.save)
    if args.json:
        c.emit_json(out)


if __name__ == "__main__":
    if c.is_worker():
        body = lambda i: (_params(i), _metrics(i))  # noqa: E731
        c.worker_main(
            {"metric_loop": w_metric_loop, "runs": w_runs, "profile_phases": lambda s: w_profile_phases(s, body)}
        )
    else:
        main()
