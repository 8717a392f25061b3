"""Concurrent writers: P processes each log N metric values (per-call loop) to ONE store at the same time.

    python bench/bench_concurrency.py [--procs 8] [--steps 10000] [--repeat 5]
                                      [--mlflow-repeat 1] [--mlflow-steps 10000] [--json]

Sides: mloop-sqlite (one SQLite workspace), mloop-postgres (a uniquely named database on 127.0.0.1:5432,
created with psycopg and dropped afterwards) and, for comparison, mlflow-sqlite (MLflow's SQLite backend).

For each repeat: a fresh store is created and initialised by a set-up process (untimed). Then P worker
processes start, import their library, open the store and report READY; when all are ready the driver
sends GO to all at once. Each worker then starts its own run, calls ``log_metric("v", value, step=i)`` for
i in 0..N-1 (``run.log_metric`` / ``mlflow.log_metric``), ends the run and reports its wall-clock start and
end. Every exception is caught and counted, per call, with its message; "database is locked" errors are
counted separately. Wall time = last end - first start over the P workers.

Afterwards (untimed) a verification process reads every run's history back and counts the values stored
(exact step/value match), against the P*N expected.

MLflow's side is slow (~7 ms per call on SQLite in one process), so it runs ``--mlflow-repeat`` times
(default 1) with ``--mlflow-steps`` values per process (default: the same N).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPT = Path(__file__).resolve()
KEY = "v"
MAX_MESSAGES = 5


def value_at(proc: int, i: int) -> float:
    return (proc + 1) + 1.0 / (i + 2)


# ============================================================================================ workers


def _classify(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300]


def w_setup(spec: dict[str, Any]) -> dict[str, Any]:
    if c.is_mlflow(spec["side"]):
        c.mlflow_setup_logging()
        import mlflow

        mlflow.set_experiment("bench")
    else:
        import mloop

        with mloop.start_run(experiment="bench-warmup", name="warmup"):
            pass
    return {"seconds": 0.0}


def w_writer(spec: dict[str, Any]) -> dict[str, Any]:
    side, proc, n = spec["side"], int(spec["proc"]), int(spec["steps"])
    errors: Counter[str] = Counter()
    calls_failed = 0
    run_id = None
    if c.is_mlflow(side):
        c.mlflow_setup_logging()
        import mlflow

        mlflow.set_experiment("bench")
    else:
        import mloop

        # Open the store before READY, as MLflow's set_experiment does above: mloop imports SQLAlchemy and
        # checks the schema lazily on first use, which is start-up, not logging.
        mloop.get_client().store  # noqa: B018
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        raise RuntimeError("driver did not say GO")
    start = time.time()
    if c.is_mlflow(side):
        for _attempt in range(5):  # give MLflow every chance to get a run at all
            try:
                run = mlflow.start_run(run_name=f"w{proc}")
                run_id = run.info.run_id
                break
            except Exception as exc:
                errors[_classify(exc)] += 1
        if run_id is not None:
            for i in range(n):
                try:
                    mlflow.log_metric(KEY, value_at(proc, i), step=i)
                except Exception as exc:
                    calls_failed += 1
                    errors[_classify(exc)] += 1
            try:
                mlflow.end_run()
            except Exception as exc:
                errors[_classify(exc)] += 1
    else:
        try:
            with mloop.start_run(experiment="bench", name=f"w{proc}") as run:
                run_id = c.mloop_run_id(run)
                for i in range(n):
                    try:
                        run.log_metric(KEY, value_at(proc, i), step=i)
                    except Exception as exc:
                        calls_failed += 1
                        errors[_classify(exc)] += 1
        except Exception as exc:  # start or end of run (the final flush) failed
            errors[_classify(exc)] += 1
    end = time.time()
    return {
        "seconds": end - start,
        "start": start,
        "end": end,
        "run_id": run_id,
        "calls_failed": calls_failed,
        "errors": sum(errors.values()),
        "locked_errors": sum(v for k, v in errors.items() if "database is locked" in k),
        "messages": dict(errors.most_common(MAX_MESSAGES)),
    }


def w_verify(spec: dict[str, Any]) -> dict[str, Any]:
    side, n = spec["side"], int(spec["steps"])
    run_ids: dict[str, str] = spec["run_ids"]  # proc -> run id
    stored = exact = 0
    how = ""
    for proc_s, rid in run_ids.items():
        proc = int(proc_s)
        if c.is_mlflow(side):
            c.mlflow_setup_logging()
            import mlflow

            pts = mlflow.MlflowClient().get_metric_history(rid, KEY)
            pairs = [(int(p.step), float(p.value)) for p in pts]
            how = "api:MlflowClient.get_metric_history"
        else:
            pairs, how = c.mloop_metric_history(rid, KEY)
        stored += len(pairs)
        expected = {(i, value_at(proc, i)) for i in range(n)}
        exact += len(expected & set(pairs))
    return {"seconds": 0.0, "stored": stored, "exact": exact, "readback": how}


# ============================================================================================ driver


def one_round(side: str, procs: int, steps: int, timeout: float) -> dict[str, Any]:
    work = c.new_workdir(f"conc-{side}")
    pg_db = c.pg_create_db() if side == c.MLOOP_POSTGRES else None
    started: list[subprocess.Popen[str]] = []
    try:
        env = c.side_env(side, work, pg_db)
        c.run_worker(SCRIPT, {"task": "setup", "side": side}, env, cwd=work)
        specs = [{"task": "writer", "side": side, "proc": p, "steps": steps} for p in range(procs)]
        for spec in specs:
            started.append(
                subprocess.Popen(
                    c.worker_command(SCRIPT, spec),
                    env=env,
                    cwd=work,
                    text=True,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        pre: list[str] = []
        for proc in started:
            while True:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise c.WorkerError(f"worker exited before READY:\n{''.join(pre)}\n{proc.stderr.read()}")  # type: ignore[union-attr]
                if line.strip() == "READY":
                    break
                pre.append(line)
        t0 = c.now()
        for proc in started:
            proc.stdin.write("GO\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        results = []
        deadline = time.monotonic() + timeout
        timed_out = False
        for spec, proc in zip(specs, started, strict=True):
            try:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                results.append(c.parse_result(proc.returncode, out, err, spec))
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                proc.communicate()
                results.append({"error": "timeout", "errors": 0, "locked_errors": 0, "run_id": None})
            except c.WorkerError as exc:
                results.append({"error": str(exc), "errors": 1, "locked_errors": 0, "run_id": None})
        driver_wall = c.now() - t0
        ok = [r for r in results if "start" in r]
        wall = (max(r["end"] for r in ok) - min(r["start"] for r in ok)) if ok else None
        run_ids = {str(i): r["run_id"] for i, r in enumerate(results) if r.get("run_id")}
        ver = c.run_worker(SCRIPT, {"task": "verify", "side": side, "steps": steps, "run_ids": run_ids}, env, cwd=work)
        messages: Counter[str] = Counter()
        for r in results:
            messages.update(r.get("messages", {}))
            if "error" in r:
                messages[r["error"].splitlines()[0][:300]] += 1
        return {
            "wall_s": wall,
            "driver_wall_s": driver_wall,
            "timed_out": timed_out,
            "expected": procs * steps,
            "stored": ver["stored"],
            "exact": ver["exact"],
            "runs_started": len(run_ids),
            "errors": sum(int(r.get("errors", 0)) for r in results),
            "calls_failed": sum(int(r.get("calls_failed", 0)) for r in results),
            "locked_errors": sum(int(r.get("locked_errors", 0)) for r in results),
            "messages": dict(messages.most_common(MAX_MESSAGES)),
            "per_worker_s": [r.get("seconds") for r in results],
            "readback": ver["readback"],
        }
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if pg_db:
            c.pg_drop_db(pg_db)
        c.remove_workdir(work)


def main() -> None:
    parser = c.base_parser("concurrent writers benchmark")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10_000, help="log_metric calls per process (10000)")
    parser.add_argument("--mlflow-repeat", type=int, default=1, help="repeats for the MLflow side (1)")
    parser.add_argument("--mlflow-steps", type=int, default=None, help="calls per MLflow process (= --steps)")
    parser.add_argument("--timeout", type=float, default=3000, help="seconds per round before killing workers")
    args = parser.parse_args()
    sides = c.pick_sides(args.sides, [c.MLOOP_SQLITE, c.MLOOP_POSTGRES, c.MLFLOW_SQLITE])
    if c.MLOOP_POSTGRES in sides and (why := c.pg_available()):
        c.log(f"skipping mloop-postgres: PostgreSQL not reachable ({why})")
        sides.remove(c.MLOOP_POSTGRES)
    mlflow_steps = args.mlflow_steps or args.steps
    doc: dict[str, Any] = {"versions": c.versions(), "procs": args.procs, "sides": {}}
    for side in sides:
        steps = mlflow_steps if c.is_mlflow(side) else args.steps
        repeat = args.mlflow_repeat if c.is_mlflow(side) else args.repeat
        rounds = []
        for rep in range(repeat):
            try:
                r = one_round(side, args.procs, steps, args.timeout)
            except Exception as exc:
                r = {"failed": f"{type(exc).__name__}: {exc}"}
            rounds.append(r)
            c.log(f"  {side} rep {rep + 1}/{repeat}: {json.dumps({k: v for k, v in r.items() if k != 'per_worker_s'})}")
        good = [r for r in rounds if "failed" not in r]
        doc["sides"][side] = {
            "steps_per_proc": steps,
            "repeat": repeat,
            "wall_median_s": c.median(r["wall_s"] for r in good),
            "expected_per_round": args.procs * steps,
            "stored_min": min((r["stored"] for r in good), default=None),
            "exact_min": min((r["exact"] for r in good), default=None),
            "errors_total": sum(r["errors"] for r in good),
            "locked_errors_total": sum(r["locked_errors"] for r in good),
            "rounds": rounds,
        }
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
        return
    rows = []
    for side, s in doc["sides"].items():
        n_expected = s["expected_per_round"]
        wall = s["wall_median_s"]
        rows.append(
            [
                side,
                f"{args.procs} x {s['steps_per_proc']:,}",
                c.fmt_s(wall),
                "-" if not wall else f"{n_expected / wall:,.0f}/s",
                f"{s['exact_min']:,} / {n_expected:,}" if s["exact_min"] is not None else "-",
                s["errors_total"],
                s["locked_errors_total"],
                f"{len([r for r in s['rounds'] if 'failed' not in r])}/{s['repeat']}",
            ]
        )
    c.print_table(
        f"{args.procs} concurrent processes, per-call log_metric loop into one store",
        ["side", "work", "wall (median)", "values/s", "stored exact (min)", "errors", "locked", "rounds"],
        rows,
        "stored exact = (step, value) pairs read back that match what was logged, worst round; "
        "errors/locked summed over rounds",
    )
    for side, s in doc["sides"].items():
        msgs: Counter[str] = Counter()
        for r in s["rounds"]:
            msgs.update(r.get("messages", {}))
            if "failed" in r:
                msgs[r["failed"][:300]] += 1
        for m, k in msgs.most_common(MAX_MESSAGES):
            print(f"  {side}: {k} x {m}")


if __name__ == "__main__":
    if c.is_worker():
        c.worker_main({"setup": w_setup, "writer": w_writer, "verify": w_verify})
    else:
        main()
