"""What the request collector costs the scoring server (issue #12): the same app with the collector off and on.

    .venv/bin/python bench/bench_collector.py [--rounds 5] [--duration 5] [--concurrency 8,32] [--no-pin] [--save PATH]
        [--before-src OLD_TREE/src] [--extra noop,append]

Workload: the serving benchmark's (``bench_serve.py``, RESULTS §16): a scikit-learn LogisticRegression on 10
float columns, single-row JSON requests (``{"dataframe_records": [{...}]}`` on ``/invocations``), closed loop
with ``wrk`` at each concurrency, one uvicorn worker per side, servers pinned to CPU 0 and wrk to CPU 1. Both
sides run ``bench/_serve/collector_side.py`` (``create_app`` + ``run_one``, as ``mloop serve`` does); the
``on`` side passes ``collector=collector_for(context, "bench")`` with its defaults (flush every 1 s to Parquet
in the workspace's artifact folder, bound 500,000 rows; the server's CPU counts its child processes too).
With ``--before-src`` a third side, ``before``, runs the same with mloop from another source tree (e.g. another
collector design), in the same rounds. ``--extra noop,append`` adds sides whose collector's ``record`` does
nothing, or only appends a tuple to a list (diagnostics: what attaching costs, what the least record costs). Rounds
interleave the sides (the first side rotates each round); reported are medians over rounds and the per-round
paired ratios on/off (and before/off, on/before, noop/off, append/off).

After the runs the ``on`` side's ``/metrics`` gives the rows it wrote and dropped, compared with the requests
it answered 200 (wrk's counts plus warm-up and check), and the collected folder's files and bytes.

The bar: the collector costs under 10% of the serving throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_range, paired_ratios, print_table, rotated, save_json, versions
from _serve.collector_side import CollectorSide, setup
from _serve.wrk import run_wrk


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="servers on CPU 0, wrk on CPU 1 (default on)")  # fmt: skip
    parser.add_argument("--before-src", type=Path, help="a third side: the collector from this source tree's src/")
    parser.add_argument("--extra", default="", help="more sides: noop (record() does nothing), append (only "
                        "appends a tuple), copy (only copies the request's bytes into a ring)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", metavar="PATH")
    return parser.parse_args()


def _metric(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))


def main() -> None:
    args = _args()
    pin = args.pin and (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    levels = [int(c) for c in args.concurrency.split(",")]
    sides = ["off", "on"] + (["before"] if args.before_src else []) + [x for x in args.extra.split(",") if x]
    doc: dict[str, Any] = {"versions": versions(), "cpu_count": os.cpu_count(), "pinned": pin, "rounds": args.rounds,
                           "duration": args.duration, "load_before": os.getloadavg()}  # fmt: skip
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {}
    answered = 0  # 200s the "on" side gave
    with tempfile.TemporaryDirectory(dir=os.environ.get("MLOOP_BENCH_TMP")) as tmp:
        env_setup = setup(Path(tmp))
        body: bytes = env_setup["body"]
        servers: dict[str, CollectorSide] = {}
        try:
            for side in sides:
                source = args.before_src.resolve() if side == "before" else None
                servers[side] = CollectorSide(side, env_setup, cpus={0} if pin else None, source=source)
            for side, server in servers.items():
                server.wait_ready()
                status, reply = server.post("/invocations", body)
                if status != 200 or reply["predictions"][0] != env_setup["expected"]:
                    raise SystemExit(f"{side} answered {status}: {reply}")
                warm = run_wrk(server.url + "/invocations", body, connections=levels[0], duration=1)
                if side == "on":
                    answered += 1 + warm["requests"] - warm.get("non_2xx", 0)
            for rnd in range(args.rounds):
                for c in levels:
                    for side in rotated(sides, rnd):
                        server = servers[side]
                        cpu0 = server.cpu_seconds()
                        result = run_wrk(server.url + "/invocations", body, connections=c, duration=args.duration)
                        served = result.get("requests") or 1
                        result["cpu_ms_per_request"] = (server.cpu_seconds() - cpu0) * 1e3 / served
                        result["rss_mib"] = round(server.rss() / 2**20, 1)
                        if side == "on":
                            answered += result["requests"] - result.get("non_2xx", 0)
                        runs.setdefault(side, {}).setdefault(c, []).append(result)
                        print(f"round {rnd + 1} c={c} collector {side:3} {result['throughput']:>9,.0f} req/s "
                              f"p50 {result['p50'] * 1e3:.2f} ms p99 {result['p99'] * 1e3:.2f} ms "
                              f"cpu {result['cpu_ms_per_request']:.4f} ms/req non-2xx {result['non_2xx']}",
                              file=sys.stderr)  # fmt: skip
            time.sleep(2.5)  # the last flush (every 1 s)
            metrics = servers["on"].metrics()
            folder = Path(env_setup["artifacts"]) / "collected" / "requests"
            parts = list(folder.rglob("*.parquet"))
            doc["collected"] = {
                "answered_200": answered,
                "rows_written": _metric(metrics, "mloop_collector_rows_total"),
                "rows_dropped": _metric(metrics, "mloop_collector_dropped_rows_total"),
                "files": len(parts), "mib": round(sum(p.stat().st_size for p in parts) / 2**20, 2),
            }  # fmt: skip
        finally:
            for server in servers.values():
                server.stop()
        if "on" in servers and "collected" in doc:
            stats = servers["on"].stats() or {}
            doc["collected"]["stats_at_close"] = stats
            if stats.get("rows"):
                doc["collected"]["flush_cpu_us_per_row"] = round(stats["flush_cpu_us"] / stats["rows"], 2)
    doc["load_after"] = os.getloadavg()
    doc["summary"] = _summary(runs)
    doc["runs"] = runs
    save_json(doc, args.save)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        _print(doc)


def _summary(runs: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"sides": {}, "on_vs_off": {}}
    for side, by_c in runs.items():
        for c, results in by_c.items():
            out["sides"].setdefault(side, {})[str(c)] = {
                "throughput": round(statistics.median(r["throughput"] for r in results), 1),
                "p50_ms": round(statistics.median(r["p50"] for r in results) * 1e3, 3),
                "p99_ms": round(statistics.median(r["p99"] for r in results) * 1e3, 3),
                "cpu_ms_per_request": round(statistics.median(r["cpu_ms_per_request"] for r in results), 4),
                "non_2xx": sum(r["non_2xx"] for r in results),
                "rounds": [round(r["throughput"], 1) for r in results],
            }  # fmt: skip
    pairs = [("on", "off", "on_vs_off"), ("before", "off", "before_vs_off"), ("on", "before", "on_vs_before"),
             ("noop", "off", "noop_vs_off"), ("append", "off", "append_vs_off"),
             ("copy", "off", "copy_vs_off")]  # fmt: skip
    for side, base, name in pairs:
        for c in runs.get(side, {}) if base in runs else {}:
            out.setdefault(name, {})[str(c)] = {
                "throughput": paired_ratios([r["throughput"] for r in runs[base][c]],
                                            [r["throughput"] for r in runs[side][c]]),
                "cpu_per_request": paired_ratios([r["cpu_ms_per_request"] for r in runs[base][c]],
                                                 [r["cpu_ms_per_request"] for r in runs[side][c]]),
                "p99": paired_ratios([r["p99"] for r in runs[base][c]], [r["p99"] for r in runs[side][c]]),
            }  # fmt: skip
    return out


def _print(doc: dict[str, Any]) -> None:
    rows = [[side, c, f"{s['throughput']:,.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
             f"{s['cpu_ms_per_request']:.4f}", s["non_2xx"]]
            for side, by_c in doc["summary"]["sides"].items() for c, s in by_c.items()]  # fmt: skip
    print_table("Single-row JSON, closed loop (wrk), medians", ["collector", "concurrency", "req/s", "p50 ms",
                "p99 ms", "server CPU ms/req", "non-2xx"], rows)  # fmt: skip
    titles = {"on_vs_off": "Collector on / off", "before_vs_off": "Collector before / off",
              "on_vs_before": "Collector on / before", "noop_vs_off": "Collector noop / off",
              "append_vs_off": "Collector append-only / off", "copy_vs_off": "Collector copy-only / off"}  # fmt: skip
    for name, title in titles.items():
        rows = []
        for c, r in doc["summary"].get(name, {}).items():
            cost = 1 - r["throughput"]["median"] if r["throughput"] else None
            rows.append([c, fmt_range(r["throughput"]), "-" if cost is None else f"{cost:.1%}",
                         fmt_range(r["cpu_per_request"]), fmt_range(r["p99"])])  # fmt: skip
        if rows:
            print_table(f"{title}, paired per round", ["concurrency", "throughput", "throughput cost",
                        "CPU a request", "p99"], rows)  # fmt: skip
    print("collected:", doc.get("collected"))


if __name__ == "__main__":
    main()
