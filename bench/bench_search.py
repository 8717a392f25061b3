"""Run search: mloop vs MLflow on the same populated store, then mloop alone at a large size.

    python bench/bench_search.py [--runs 1000] [--big 100000] [--repeat 5] [--queries 10] [--json]

Population (never timed): N runs in experiment "bench", each with param ``model`` drawn from {rf, lr, gb}
and metric ``acc`` drawn uniformly from [0, 1) by a seeded generator, so both sides hold identical data.
MLflow is populated through ``MlflowClient`` (create_run + log_batch + set_terminated); mloop through
``mloop.start_run(params=...)`` + ``run.log_metric``.

Query (timed), the same on both sides:

    filter   "metrics.acc > 0.9 and params.model = 'rf'"
    order_by ["metrics.acc DESC"], max_results 100, experiment "bench"

Each repeat is a fresh subprocess against the already populated store. In it:
  * cold  = the first query of the process (opens the store/engine; imports are already done),
  * list  = median of ``--queries`` further queries returning a list
            (MLflow: ``output_format="list"`` -> list[Run]; mloop: the list-like result of search_runs),
  * pandas = median of ``--queries`` further queries returning a pandas DataFrame
            (MLflow: ``output_format="pandas"``; mloop: ``search_runs(...).to_pandas()``).
The table reports the median of those per-process numbers over repeats. The sides are interleaved per
repeat (the first side rotates), and each ratio is the median (min-max) of the per-repeat ratios mlflow/mloop.
Every query result is checked: the expected number of matching runs, all with model rf and acc > 0.9, in
descending acc order.

``--big N`` (mloop only, 0 to skip): populate N runs and report the same query's latency; bar < 100 ms.
``--src LABEL=DIR`` (twice or more): mloop source trees against each other instead of MLflow (_trees.py).
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPT = Path(__file__).resolve()
FILTER = "metrics.acc > 0.9 and params.model = 'rf'"
ORDER_BY = ["metrics.acc DESC"]
MAX_RESULTS = 100
MODELS = ("rf", "lr", "gb")
SEED = 20240601


def dataset(n: int, seed: int = SEED) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [(rng.choice(MODELS), rng.random()) for _ in range(n)]


def expected_matches(n: int, cap: int | None = MAX_RESULTS) -> list[float]:
    """acc values the query must return, in order (the first ``cap``; all with ``cap=None``)."""
    accs = sorted((acc for model, acc in dataset(n) if model == "rf" and acc > 0.9), reverse=True)
    return accs if cap is None else accs[:cap]


# ============================================================================================ workers


def w_populate(spec: dict[str, Any]) -> dict[str, Any]:
    side, start, count, n = spec["side"], int(spec["start"]), int(spec["count"]), int(spec["n"])
    rows = dataset(n)[start : start + count]
    t0 = c.now()
    if c.is_mlflow(side):
        c.mlflow_setup_logging()
        import mlflow
        from mlflow.entities import Metric, Param

        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name("bench")
        exp_id = exp.experiment_id if exp else client.create_experiment("bench")
        for i, (model, acc) in enumerate(rows, start=start):
            run = client.create_run(exp_id, run_name=f"r{i}")
            rid = run.info.run_id
            client.log_batch(rid, metrics=[Metric("acc", acc, 0, 0)], params=[Param("model", model)])
            client.set_terminated(rid)
    else:
        import mloop

        for i, (model, acc) in enumerate(rows, start=start):
            with mloop.start_run(experiment="bench", name=f"r{i}", params={"model": model}) as run:
                run.log_metric("acc", acc, step=0)
    return {"seconds": c.now() - t0, "count": count}


def _query(side: str, form: str) -> list[float]:
    """Run the query once in the given form; return the acc values of the rows, in result order."""
    if c.is_mlflow(side):
        import mlflow

        res = mlflow.search_runs(
            experiment_names=["bench"],
            filter_string=FILTER,
            order_by=ORDER_BY,
            max_results=MAX_RESULTS,
            output_format=form,
        )
        if form == "list":
            for r in res:
                assert r.data.params["model"] == "rf"
            return [float(r.data.metrics["acc"]) for r in res]
        assert (res["params.model"] == "rf").all()
        return [float(v) for v in res["metrics.acc"]]
    import mloop

    res = mloop.search_runs(experiment="bench", filter=FILTER, order_by=ORDER_BY, max_results=MAX_RESULTS)
    if form == "list":
        out = []
        for r in res:
            assert r.params["model"] == "rf"
            out.append(float(r.metrics["acc"]))
        return out
    df = res.to_pandas()
    model_col = "params.model" if "params.model" in df.columns else "model"
    acc_col = "metrics.acc" if "metrics.acc" in df.columns else "acc"
    assert (df[model_col] == "rf").all(), df.columns
    return [float(v) for v in df[acc_col]]


def w_query(spec: dict[str, Any]) -> dict[str, Any]:
    side, k, n = spec["side"], int(spec["queries"]), int(spec["n"])
    expected = expected_matches(n)
    if c.is_mlflow(side):
        c.mlflow_setup_logging()
        import mlflow  # noqa: F401  (import outside the timed region)
    else:
        # mloop's to_pandas imports pandas lazily; MLflow imports it at `import mlflow`. Import it here so
        # neither side's timed region pays for importing pandas.
        import pandas  # noqa: F401

        import mloop  # noqa: F401

    def check(got: list[float]) -> None:
        if got != expected:
            raise AssertionError(
                f"{side}: {len(got)} rows, expected {len(expected)}; first {got[:3]} vs {expected[:3]}"
            )

    t0, cpu0 = c.now(), time.process_time()
    got = _query(side, "list")
    cold, cold_cpu = c.now() - t0, time.process_time() - cpu0
    check(got)
    times: dict[str, list[float]] = {"list": [], "pandas": []}
    cpu: dict[str, list[float]] = {"list": [], "pandas": []}
    for i in range(k):
        for form in ("list", "pandas") if i % 2 == 0 else ("pandas", "list"):
            t0, cpu0 = c.now(), time.process_time()
            got = _query(side, form)
            times[form].append(c.now() - t0)
            cpu[form].append(time.process_time() - cpu0)
            check(got)
    return {
        "seconds": c.median(times["pandas"]),
        "cold_s": cold,
        "list_s": c.median(times["list"]),
        "pandas_s": c.median(times["pandas"]),
        # CPU time of the process over the same calls: much less sensitive to other jobs on the machine
        "cold_cpu_s": cold_cpu,
        "list_cpu_s": c.median(cpu["list"]),
        "pandas_cpu_s": c.median(cpu["pandas"]),
        "matches": len(expected),
    }


# ============================================================================================ driver


def populate(side: str, work: Path, n: int, procs: int, pg_db: str | None = None) -> float:
    """Populate ``n`` runs, with ``procs`` processes in parallel (after one creates the experiment)."""
    env = c.side_env(side, work, pg_db)
    t0 = c.now()
    first = min(n, 1)
    c.run_worker(SCRIPT, {"task": "populate", "side": side, "start": 0, "count": first, "n": n}, env, cwd=work)
    rest = n - first
    if rest:
        import subprocess

        chunk = -(-rest // procs)
        jobs = []
        for p in range(procs):
            start = first + p * chunk
            count = min(chunk, n - start)
            if count <= 0:
                continue
            spec = {"task": "populate", "side": side, "start": start, "count": count, "n": n}
            jobs.append(
                (
                    spec,
                    subprocess.Popen(
                        c.worker_command(SCRIPT, spec),
                        env=env,
                        cwd=work,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        for spec, proc in jobs:
            out, err = proc.communicate()
            c.parse_result(proc.returncode, out, err, spec)
    return c.now() - t0


def query_repeats(side: str, work: Path, n: int, repeat: int, queries: int) -> list[dict[str, Any]]:
    env = c.side_env(side, work)
    out = []
    for rep in range(repeat):
        spec = {"task": "query", "side": side, "queries": queries, "n": n}
        try:
            res = c.run_worker(SCRIPT, spec, env, cwd=work)
            c.log(
                f"  query n={n} rep {rep + 1}/{repeat} {side:<14} cold {c.fmt_s(res['cold_s'])}  "
                f"list {c.fmt_s(res['list_s'])}  pandas {c.fmt_s(res['pandas_s'])}"
            )
            out.append(res)
        except c.WorkerError as exc:
            c.log(f"  query n={n} rep {rep + 1}/{repeat} {side} FAILED\n{exc}")
            out.append({"error": str(exc)})
    return out


def summarise_side(samples: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("cold_s", "list_s", "pandas_s", "cold_cpu_s", "list_cpu_s", "pandas_cpu_s")
    return {key: c.median(s.get(key) for s in samples if key in s) for key in keys} | {
        "ok": sum(1 for s in samples if "error" not in s),
        "n": len(samples),
        "errors": [s["error"] for s in samples if "error" in s],
    }


def main() -> None:
    parser = c.base_parser("run search benchmark")
    parser.add_argument("--runs", type=int, default=1_000, help="runs in the comparison store (1000)")
    parser.add_argument("--big", type=int, default=100_000, help="mloop-only large store size (0 skips)")
    parser.add_argument("--queries", type=int, default=10, help="timed queries per form per process (10)")
    parser.add_argument("--populate-procs", type=int, default=1, help="processes populating mloop's big store")
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR", help="compare mloop trees")
    args = parser.parse_args()
    if args.src:
        from _trees import compare_search

        compare_search(args, SCRIPT)
        return
    sides = c.pick_sides(args.sides, [c.MLOOP_SQLITE, c.MLFLOW_SQLITE, c.MLFLOW_FILE])
    out: dict[str, Any] = {
        "versions": c.versions(),
        "repeat": args.repeat,
        "queries_per_process": args.queries,
        "filter": FILTER,
        "order_by": ORDER_BY,
        "max_results": MAX_RESULTS,
        "runs": args.runs,
        "matches": len(expected_matches(args.runs)),
        "command": " ".join(["bench_search.py", *sys.argv[1:]]),
        "loadavg_at_start": os.getloadavg(),
        "comparison": {},
    }
    works = {}
    per_side: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    try:
        for side in sides:
            works[side] = c.new_workdir(f"search-{side}")
            secs = populate(side, works[side], args.runs, 1)
            c.log(f"populated {args.runs} runs for {side} in {c.fmt_s(secs)} (untimed)")
        for rep in range(args.repeat):
            for side in c.rotated(sides, rep):
                per_side[side] += query_repeats(side, works[side], args.runs, 1, args.queries)
        for side in sides:
            out["comparison"][side] = summarise_side(per_side[side])
    finally:
        for w in works.values():
            c.remove_workdir(w)
    base = out["comparison"].get(c.MLOOP_SQLITE, {})
    keys = ("cold_s", "list_s", "pandas_s")
    cpu_keys = ("cold_cpu_s", "list_cpu_s", "pandas_cpu_s")
    for side, r in out["comparison"].items():
        mlflow_side = c.is_mlflow(side)
        r["ratio_of_medians"] = {k: c.ratio(r.get(k), base.get(k)) for k in keys} if mlflow_side else None
        # per-repeat ratios: repeat i of this side ran back to back with repeat i of mloop (interleaved)
        r["paired_ratio_vs_mloop"] = (
            {
                k: c.paired_ratios(
                    [s.get(k) for s in per_side.get(c.MLOOP_SQLITE, [])], [s.get(k) for s in per_side[side]]
                )
                for k in keys + cpu_keys
            }
            if mlflow_side and c.MLOOP_SQLITE in per_side
            else None
        )
        r["ratio_vs_mloop"] = (
            {k: (r["paired_ratio_vs_mloop"][k] or {}).get("median") for k in keys}
            if r["paired_ratio_vs_mloop"]
            else r["ratio_of_medians"]
        )
    main_ratio = (out["comparison"].get(c.MLFLOW_SQLITE) or {}).get("ratio_vs_mloop") or {}
    out["bar_ratio"] = 20
    out["meets_bar"] = {k: (None if v is None else v >= 20) for k, v in main_ratio.items()}

    if args.big and c.MLOOP_SQLITE in sides:
        work = c.new_workdir("search-big")
        try:
            secs = populate(c.MLOOP_SQLITE, work, args.big, args.populate_procs)
            c.log(f"populated {args.big} runs for mloop-sqlite in {c.fmt_s(secs)} (untimed)")
            samples = query_repeats(c.MLOOP_SQLITE, work, args.big, args.repeat, args.queries)
            big = summarise_side(samples)
            big |= {
                "runs": args.big,
                "populate_s": secs,
                "matches": len(expected_matches(args.big)),
                "matching_total": len(expected_matches(args.big, cap=None)),
            }
            big["meets_bar_100ms"] = {
                k: (None if big.get(k) is None else big[k] < 0.1) for k in ("cold_s", "list_s", "pandas_s")
            }
            out["big_mloop"] = big
        finally:
            c.remove_workdir(work)

    out["loadavg_at_end"] = os.getloadavg()
    c.save_json(out, args.save)
    if args.json:
        c.emit_json(out)
        return
    rows = []
    for side, r in out["comparison"].items():
        paired = r["paired_ratio_vs_mloop"] or {}
        rows.append(
            [
                side,
                c.fmt_s(r["cold_s"]),
                c.fmt_s(r["list_s"]),
                c.fmt_s(r["pandas_s"]),
                *(("base" if not c.is_mlflow(side) else c.fmt_range(paired.get(k))) for k in keys),
                f"{r['ok']}/{r['n']}",
            ]
        )
    c.print_table(
        f"search_runs over {args.runs:,} runs ({out['matches']} matches): {FILTER!r}, order by acc DESC",
        ["side", "cold", "list", "pandas", "x cold", "x list", "x pandas", "ok"],
        rows,
        "medians over fresh processes, sides interleaved per repeat; x = median (min-max) of the per-repeat "
        "ratios mlflow/mloop; bar: mlflow-sqlite/mloop >= 20x "
        f"(pandas {out['meets_bar'].get('pandas_s')}, list {out['meets_bar'].get('list_s')})",
    )
    cpu_rows = [
        [
            side,
            *(c.fmt_s(r.get(k)) for k in cpu_keys),
            *(
                c.fmt_range((r["paired_ratio_vs_mloop"] or {}).get(k)) if c.is_mlflow(side) else "base"
                for k in cpu_keys
            ),
        ]
        for side, r in out["comparison"].items()
    ]
    c.print_table(
        "the same queries in CPU time of the worker process (less sensitive to other jobs on the machine)",
        ["side", "cold CPU", "list CPU", "pandas CPU", "x cold CPU", "x list CPU", "x pandas CPU"],
        cpu_rows,
    )
    if "big_mloop" in out:
        b = out["big_mloop"]
        c.print_table(
            f"mloop-sqlite search_runs over {b['runs']:,} runs ({b['matching_total']:,} match, "
            f"first {b['matches']} returned: max_results {MAX_RESULTS})",
            ["side", "cold", "list", "pandas", "ok", "populate (untimed)"],
            [
                [
                    c.MLOOP_SQLITE,
                    c.fmt_s(b["cold_s"]),
                    c.fmt_s(b["list_s"]),
                    c.fmt_s(b["pandas_s"]),
                    f"{b['ok']}/{b['n']}",
                    c.fmt_s(b["populate_s"]),
                ]
            ],
            f"bar: < 100 ms -> list {b['meets_bar_100ms']['list_s']}, pandas {b['meets_bar_100ms']['pandas_s']}",
        )


if __name__ == "__main__":
    if c.is_worker():
        c.worker_main({"populate": w_populate, "query": w_query})
    else:
        main()
