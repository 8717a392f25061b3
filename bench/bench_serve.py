"""Scoring-server throughput (issue #11): ``mlflow models serve`` vs ``mloop serve`` vs a bare Starlette app.

    bash bench/run.sh serve [--rounds 3] [--duration 5] [--concurrency 8,32] [--no-pin] [--json] [--save PATH]

Set-up (untimed, ``bench/_serve/servers.py``): a scikit-learn LogisticRegression on 10 float columns,
registered in a fresh mloop workspace and saved with ``mlflow.sklearn.save_model``; the three servers start
once on loopback (one worker each) and each answers the request once (mloop's and MLflow's predictions must
equal the model's) before anything is timed.

Load: single-row JSON requests (the same bytes, ``{"dataframe_records": [{...}]}``, to ``/invocations`` on
every side), closed loop with Debian's ``wrk`` (C, keep-alive) at each concurrency for ``--duration`` seconds,
after a 1 s warm-up per server. Rounds interleave the sides (the first side rotates each round); reported are
the medians over rounds and the **per-round paired ratios** (median, min-max). After each wrk run on the bare
app the same load is also driven by mloop's own generator (``mloop.serving.loadgen``), to show whether it is
fast enough not to be the bottleneck (``mloop profile`` uses it).

The machine has 2 cores: the generator and the server share them. With ``--pin`` (the default) every server runs
on CPU 0 and the generators on CPU 1, so a server never competes with the generator for its core (other jobs on
the machine still can).

Overload (``bench/_serve/overload.py``): the sustainable rate is mloop's median closed-loop throughput at the
highest concurrency; then ``--overload-factor`` (10) times that rate is offered open-loop for
``--overload-seconds`` over ``--overload-connections`` connections (more than the server's queue bound), and
the 503 share, accepted p99, shed latency, other 5xx, and RSS over time are reported.

The bars: mloop >= 20x MLflow's throughput and >= 50% of the bare app's, at concurrency 8 and 32.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_range, paired_ratios, print_table, rotated, save_json, versions
from _serve.servers import SIDES, Server, prediction_of, setup
from _serve.wrk import run_wrk


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="servers on CPU 0, generators on CPU 1 (default on)")  # fmt: skip
    parser.add_argument("--mloop-args", default="", help="extra `mloop serve` options, e.g. '--batch-rows 1'")
    parser.add_argument("--overload-factor", type=float, default=10.0)
    parser.add_argument("--overload-seconds", type=float, default=15.0)
    parser.add_argument("--overload-connections", type=int, default=1024)
    parser.add_argument("--no-overload", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", metavar="PATH")
    return parser.parse_args()


def _loadgen(url: str, body: bytes, connections: int, duration: float) -> dict[str, Any]:
    from mloop.serving.loadgen import generate_load

    r = generate_load(url, body, concurrency=connections, duration=duration)
    return {"throughput": r.throughput, "p50": r.percentile(50), "p99": r.percentile(99),
            "non_2xx": r.requests - r.count(200), "socket_errors": r.errors}  # fmt: skip


def _check(servers: dict[str, Server], body: bytes, expected: int) -> None:
    for side, server in servers.items():
        status, reply = server.post("/invocations", body)
        if status != 200:
            raise SystemExit(f"{side} answered {status}: {reply}")
        if side != "bare" and prediction_of(side, reply) != expected:
            raise SystemExit(f"{side} predicted {prediction_of(side, reply)!r}, the model {expected!r}")


def _measure(args: argparse.Namespace, servers: dict[str, Server], body: bytes) -> dict[str, Any]:
    levels = [int(c) for c in args.concurrency.split(",")]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for server in servers.values():  # warm-up, untimed
        run_wrk(server.url + "/invocations", body, connections=levels[0], duration=1)
    for rnd in range(args.rounds):
        for c in levels:
            for side in rotated(list(servers), rnd):
                url = servers[side].url + "/invocations"
                cpu0 = servers[side].cpu_seconds()
                result = run_wrk(url, body, connections=c, duration=args.duration)
                served = result.get("requests") or 1
                result["cpu_ms_per_request"] = (servers[side].cpu_seconds() - cpu0) * 1e3 / served
                result["rss_mib"] = round(servers[side].rss() / 2**20, 1)
                runs.setdefault(side, {}).setdefault(c, []).append(result)
                print(f"round {rnd + 1} c={c} {side:6} wrk {result['throughput']:>9,.0f} req/s "
                      f"p50 {result['p50'] * 1e3:.2f} ms p99 {result['p99'] * 1e3:.2f} ms "
                      f"non-2xx {result['non_2xx']} errors {result['socket_errors']}", file=sys.stderr)  # fmt: skip
                if side == "bare":
                    gen = _loadgen(url, body, c, args.duration)
                    runs.setdefault("bare-loadgen", {}).setdefault(c, []).append(gen)
                    print(f"round {rnd + 1} c={c} bare   loadgen {gen['throughput']:>5,.0f} req/s", file=sys.stderr)
    return runs


def _summary(runs: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"sides": {}, "ratios": {}}
    for side, by_c in runs.items():
        for c, results in by_c.items():
            out["sides"].setdefault(side, {})[str(c)] = {
                "throughput": round(statistics.median(r["throughput"] for r in results), 1),
                "p50_ms": round(statistics.median(r["p50"] for r in results) * 1e3, 3),
                "p99_ms": round(statistics.median(r["p99"] for r in results) * 1e3, 3),
                "non_2xx": sum(r["non_2xx"] for r in results),
                "socket_errors": sum(r["socket_errors"] for r in results),
                "cpu_ms_per_request": (round(statistics.median(r["cpu_ms_per_request"] for r in results), 4)
                                       if "cpu_ms_per_request" in results[0] else None),
                "rounds": [round(r["throughput"], 1) for r in results],
            }  # fmt: skip
    pairs = [("mloop", "mlflow", "mloop_vs_mlflow"), ("mloop", "bare", "mloop_vs_bare"),
             ("bare-loadgen", "bare", "loadgen_vs_wrk_on_bare")]  # fmt: skip
    for top, base, name in pairs:
        if top in runs and base in runs:
            for c in runs[top]:
                pr = paired_ratios([r["throughput"] for r in runs[base][c]], [r["throughput"] for r in runs[top][c]])
                out["ratios"].setdefault(name, {})[str(c)] = pr
                if "cpu_ms_per_request" in runs[top][c][0]:  # base CPU a request / top CPU a request
                    pr = paired_ratios([1 / r["cpu_ms_per_request"] for r in runs[base][c]],
                                       [1 / r["cpu_ms_per_request"] for r in runs[top][c]])  # fmt: skip
                    out["ratios"].setdefault(f"{name} (server CPU a request)", {})[str(c)] = pr
    return out


def _print(doc: dict[str, Any]) -> None:
    rows = []
    for side, by_c in doc["summary"]["sides"].items():
        for c, s in by_c.items():
            cpu = "-" if s.get("cpu_ms_per_request") is None else f"{s['cpu_ms_per_request']:.3f}"
            rows.append([side, c, f"{s['throughput']:,.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", cpu,
                         s["non_2xx"], s["socket_errors"]])  # fmt: skip
    print_table("Single-row JSON requests, closed loop (wrk; bare-loadgen: mloop's generator), medians",
                ["side", "concurrency", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "non-2xx",
                 "socket errors"], rows)  # fmt: skip
    rows = [[name, c, fmt_range(pr)] for name, by_c in doc["summary"]["ratios"].items() for c, pr in by_c.items()]
    print_table("Paired per-round throughput ratios", ["ratio", "concurrency", "median (min-max)"], rows)
    if doc.get("overload"):
        o = doc["overload"]
        print(json.dumps({k: v for k, v in o.items() if k != "rss_mib"}, indent=1))
        print("RSS MiB:", {k: v for k, v in o["rss_mib"].items() if k != "series"},
              "series:", o["rss_mib"]["series"])  # fmt: skip


def main() -> None:
    args = _args()
    pin = args.pin and (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})  # the driver and the generators it starts (wrk) on CPU 1
    sides = [s for s in SIDES if s in args.sides.split(",")]
    doc: dict[str, Any] = {"versions": versions(), "cpu_count": os.cpu_count(), "pinned": pin, "rounds": args.rounds,
                           "duration": args.duration, "load_before": os.getloadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory(dir=os.environ.get("MLOOP_BENCH_TMP")) as tmp:
        env_setup = setup(Path(tmp))
        body: bytes = env_setup["body"]
        doc["body"] = body.decode()
        servers: dict[str, Server] = {}
        try:
            for side in sides:
                servers[side] = Server(side, env_setup, cpus={0} if pin else None, extra=args.mloop_args.split())
            doc["ready_seconds"] = {side: round(s.wait_ready(), 2) for side, s in servers.items()}
            _check(servers, body, env_setup["expected"])
            runs = _measure(args, servers, body)
            doc["summary"] = _summary(runs)
            doc["runs"] = runs
            if "mloop" in servers and not args.no_overload:
                from _serve.overload import overload

                top = max(runs["mloop"], key=int)
                sustainable = statistics.median(r["throughput"] for r in runs["mloop"][top])
                doc["overload"] = overload(
                    servers["mloop"], body, sustainable, factor=args.overload_factor,
                    duration=args.overload_seconds, connections=args.overload_connections,
                )  # fmt: skip
        finally:
            for server in servers.values():
                server.stop()
    doc["load_after"] = os.getloadavg()
    save_json(doc, args.save)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        _print(doc)


if __name__ == "__main__":
    main()
