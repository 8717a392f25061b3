"""Endpoints (issue #12): what the router costs over ``mloop serve``, and what a 100% shadow costs the live traffic.

    .venv/bin/python bench/bench_deploy.py [--rounds 3] [--duration 5] [--concurrency 8,32] [--no-pin] [--json]
    bash bench/run.sh deploy [same flags]
    .venv/bin/python bench/bench_deploy.py --rounds 4 --sides \\
        serve,endpoint,shadow,shadow-probe,endpoint-probe,shadow-replay    # every side, ≈ 6 min

Four sides by default, one uvicorn worker each, collector off everywhere (``bench_collector.py`` measures it),
started once on loopback (``bench/_deploy/sides.py``):

* ``serve``     ``mloop serve model:bench/1`` (the baseline);
* ``endpoint``  ``endpoints.create(ctx, "plain", ["bench/1"], collect=False)``: the supervised endpoint server
                with one version (router overhead);
* ``shadow``    the same with ``shadow="bench/2", shadow_percent=100``: every live request's parsed input is
                scored by a second LogisticRegression (refitted with another C) after the live answer was sent,
                in bulk by the engine's ``ShadowDrain`` (since 4c965c4; before, a replay through its scoring app);
* ``shadow-probe`` the ``shadow`` endpoint served by ``bench/_deploy/probe.py``: the engine's ``EndpointApp``
                as the worker runs it, plus instruments on ``/metrics`` (the drain's batch sizes and CPU, every
                garbage collection's pause); no supervisor.

Opt-in sides (``--sides``), served by the same script: ``endpoint-probe`` (GC pauses of the one-version
endpoint), ``shadow-replay`` (the bulk drain off: the per-request replay, to compare both designs in one run) and
``shadow-tuned`` (a sketch of the drain changes RESULTS §19 proposes: bigger batches, metrics once a batch).

Workload: the serving benchmark's (``bench_serve.py``, RESULTS §16): a LogisticRegression on 10 float columns,
single-row JSON (``{"dataframe_records": [{...}]}`` on ``/invocations``), closed loop with Debian's ``wrk``
(``-t1 -c{8,32} --latency``) after a 1 s warm-up per side; servers (and an endpoint's supervisor) pinned to CPU 0,
the driver and wrk to CPU 1. Rounds interleave the sides (the first side rotates each round); reported are the
medians over rounds and the **per-round paired ratios**: endpoint / serve and shadow / endpoint (throughput and
live p99; the shadow's throughput cost is 1 - ratio, its p99 increase ratio - 1), and the server's CPU time a
live request (psutil). wrk sees only the live answers: its p99 is the live p99.

The shadow did the work? Its ``/metrics`` before and after each run: requests the shadow version answered
(``mloop_requests_total{model="model:bench/2"}``, by status) against the live 200s, i.e. the share mirrored,
and what it shed (503 from its own queue bound; ``mloop_shed_requests_total``), plus the mean batch size of
the live app (``mloop_batch_rows``) and of the shadow (the probe's ``bench_drain_rows``; the replay's
``mloop_batch_rows``). The load average is read after each run.

Then, in process on the driver's core (``bench/_deploy/split.py``): the CPU a request of parsing, of one
``predict`` call by batch size, and of the whole scoring app without HTTP (what a shadow replay runs), to
state the physical limit of a 100% shadow on the same core: ideal cost = shadow work / (live work + shadow work).

The bar: a 100% shadow costs under 25% of live throughput and adds no more than 10% to live p99.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import paired_ratios, rotated, save_json, versions
from _deploy.report import ideal_costs, print_report, summarise
from _deploy.sides import (
    ALL_SIDES,
    ENDPOINT_SIDES,
    LIVE,
    SHADOW,
    SIDES,
    EndpointSide,
    ScriptSide,
    ServeSide,
    metric_sum,
    setup,
)
from _serve.wrk import run_wrk


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"of {', '.join(ALL_SIDES)}")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="servers on CPU 0, driver and wrk on CPU 1 (default on)")  # fmt: skip
    parser.add_argument("--no-split", action="store_true", help="skip the in-process CPU split")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", metavar="PATH")
    return parser.parse_args()


def _counts(side: Any) -> dict[str, float]:
    """The live and shadow request counters of a side's /metrics (the shadow's are 0 without one), and the
    probe's instruments (0 on the other sides)."""
    text = side.metrics()
    live = {"model": LIVE} if side.name != "serve" else {}
    return {
        "live_200": metric_sum(text, "mloop_requests_total", model=LIVE, status="200"),
        "shadow_200": metric_sum(text, "mloop_requests_total", model=SHADOW, status="200"),
        "shadow_all": metric_sum(text, "mloop_requests_total", model=SHADOW),  # the drain counts under "predict"
        "shadow_503": metric_sum(text, "mloop_requests_total", model=SHADOW, status="503"),
        "shadow_shed": metric_sum(text, "mloop_shed_requests_total", model=SHADOW),
        "live_rows": metric_sum(text, "mloop_batch_rows_sum", **live),
        "live_calls": metric_sum(text, "mloop_batch_rows_count", **live),
        "shadow_rows": metric_sum(text, "mloop_batch_rows_sum", model=SHADOW),  # the replay's batches
        "shadow_calls": metric_sum(text, "mloop_batch_rows_count", model=SHADOW),
        "drain_rows": metric_sum(text, "bench_drain_rows_sum"),
        "drain_calls": metric_sum(text, "bench_drain_rows_count"),
        "drain_cpu_s": metric_sum(text, "bench_drain_cpu_seconds_total"),
        "gc_count": metric_sum(text, "bench_gc_pause_seconds_count"),
        "gc_s": metric_sum(text, "bench_gc_pause_seconds_sum"),
        "gc2_count": metric_sum(text, "bench_gc_pause_seconds_count", generation="2"),
        "gc2_s": metric_sum(text, "bench_gc_pause_seconds_sum", generation="2"),
        "gc_over_10ms": metric_sum(text, "bench_gc_pause_seconds_count")
        - metric_sum(text, "bench_gc_pause_seconds_bucket", le="0.01"),
    }


def _settle(side: Any, before: dict[str, float], timeout: float = 5.0) -> dict[str, float]:
    """Counters once the shadow's backlog (replays still queued when wrk stopped) is done."""
    deadline = time.monotonic() + timeout
    after = _counts(side)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        again = _counts(side)
        if again["shadow_all"] == after["shadow_all"]:
            return again
        after = again
    return after


def _one_run(side: Any, body: bytes, c: int, duration: float) -> dict[str, Any]:
    before = _counts(side)
    cpu0, ctl0, t0 = side.server_cpu(), side.control_cpu(), time.monotonic()
    result = run_wrk(side.url + "/invocations", body, connections=c, duration=duration)
    after = _settle(side, before)
    elapsed = time.monotonic() - t0
    d = {k: after[k] - before[k] for k in after}
    live = d["live_200"] or 1
    result["cpu_ms_per_request"] = (side.server_cpu() - cpu0) * 1e3 / live
    result["control_cpu_ms_per_s"] = (side.control_cpu() - ctl0) * 1e3 / elapsed
    result["counts"] = d
    result["mirrored_share"] = d["shadow_all"] / live
    result["live_batch"] = d["live_rows"] / d["live_calls"] if d["live_calls"] else None
    rows, calls = (d["drain_rows"], d["drain_calls"]) if d["drain_calls"] else (d["shadow_rows"], d["shadow_calls"])
    result["shadow_batch"] = rows / calls if calls else None
    result["drain_us_per_mirrored"] = d["drain_cpu_s"] * 1e6 / d["drain_rows"] if d["drain_rows"] else None
    result["load1"] = os.getloadavg()[0]
    result["rss_mib"] = round(side.rss() / 2**20, 1)
    return result


def _measure(args: argparse.Namespace, sides: dict[str, Any], body: bytes) -> dict[str, dict[int, list[Any]]]:
    levels = [int(c) for c in args.concurrency.split(",")]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for side in sides.values():  # warm-up, untimed
        run_wrk(side.url + "/invocations", body, connections=levels[0], duration=1)
    for rnd in range(args.rounds):
        for c in levels:
            for name in rotated(list(sides), rnd):
                r = _one_run(sides[name], body, c, args.duration)
                runs.setdefault(name, {}).setdefault(c, []).append(r)
                print(f"round {rnd + 1} c={c} {name:8} {r['throughput']:>8,.0f} req/s p50 {r['p50'] * 1e3:.2f} ms "
                      f"p99 {r['p99'] * 1e3:.2f} ms cpu {r['cpu_ms_per_request']:.3f} ms/req "
                      f"mirrored {r['mirrored_share']:.3f} shed {r['counts']['shadow_shed']:.0f} "
                      f"batch {r['shadow_batch'] or 0:.1f} gc2 {r['counts']['gc2_count']:.0f} "
                      f"load {r['load1']:.1f} non-2xx {r['non_2xx']} err {r['socket_errors']}",
                      file=sys.stderr)  # fmt: skip
    return runs


def _check(sides: dict[str, Any], body: bytes, expected: list[int]) -> None:
    for name, side in sides.items():
        status, reply = side.post("/invocations", body)
        if status != 200 or reply.get("predictions") != [expected[0]]:
            raise SystemExit(f"{name} answered {status}: {reply!r}; expected predictions [{expected[0]}]")
        if name != "serve" and reply.get("model") != LIVE:
            raise SystemExit(f"{name} answered with {reply.get('model')!r}, not the live version {LIVE}")


def _ratios(runs: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pairs = [("endpoint", "serve"), ("shadow", "endpoint"), ("shadow", "serve"), ("shadow-probe", "shadow"),
             ("shadow-probe", "endpoint"), ("endpoint-probe", "endpoint"), ("shadow-probe", "endpoint-probe"),
             ("shadow-replay", "endpoint"), ("shadow-replay", "shadow"), ("shadow-tuned", "endpoint"),
             ("shadow-tuned", "shadow"), ("shadow-tuned", "shadow-probe")]  # fmt: skip
    for top, base in pairs:
        if top not in runs or base not in runs:
            continue
        for c in runs[top]:
            for what, key in (("throughput", "throughput"), ("p99", "p99"), ("cpu a request", "cpu_ms_per_request")):
                pr = paired_ratios([r[key] for r in runs[base][c]], [r[key] for r in runs[top][c]])
                out.setdefault(f"{top} / {base}, {what}", {})[str(c)] = pr
    return out


def main() -> None:
    args = _args()
    pin = args.pin and (os.cpu_count() or 1) >= 2
    server_cpus = {0} if pin else None
    if pin:
        os.sched_setaffinity(0, {1})  # the driver and wrk on CPU 1
    unknown = sorted(set(args.sides.split(",")) - set(ALL_SIDES))
    if unknown:
        raise SystemExit(f"unknown side(s) {unknown}; choose from {', '.join(ALL_SIDES)}")
    wanted = [s for s in ALL_SIDES if s in args.sides.split(",")]
    doc: dict[str, Any] = {"versions": versions(), "cpu_count": os.cpu_count(), "pinned": pin, "rounds": args.rounds,
                           "duration": args.duration, "load_before": os.getloadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory(dir=os.environ.get("MLOOP_BENCH_TMP")) as tmp:
        os.environ["MLOOP_HOME"] = str(Path(tmp) / "home")  # the endpoint's supervisor inherits it
        env_setup = setup(Path(tmp))
        body: bytes = env_setup["body"]
        doc["body"] = body.decode()
        sides: dict[str, Any] = {}
        try:
            for name in wanted:
                if name == "serve":
                    sides[name] = ServeSide(env_setup, cpus=server_cpus)
                else:
                    ep_name, with_shadow, flags = ENDPOINT_SIDES[name]
                    shadow = SHADOW.removeprefix("model:") if with_shadow else None
                    if flags is None:
                        sides[name] = EndpointSide(ep_name, env_setup, shadow=shadow, cpus=server_cpus)
                    else:
                        sides[name] = ScriptSide(ep_name, env_setup, shadow=shadow, cpus=server_cpus, flags=flags)
            doc["ready_seconds"] = {name: round(s.wait_ready(), 2) for name, s in sides.items()}
            _check(sides, body, env_setup["expected"])
            runs = _measure(args, sides, body)
        finally:
            for side in sides.values():
                side.stop()
        doc["summary"] = summarise(runs)
        doc["ratios"] = _ratios(runs)
        doc["runs"] = runs
        if not args.no_split:
            from _deploy.split import cpu_split

            batches = sorted({1, 2, 4, 8, 16, 32} | {round(r["shadow_batch"] or 1) for s in runs.values()
                                                     for rs in s.values() for r in rs})  # fmt: skip
            doc["split"] = cpu_split(env_setup["client"], SHADOW, body, batches,
                                     [int(c) for c in args.concurrency.split(",")])  # fmt: skip
        env_setup["client"].close()
    doc["load_after"] = os.getloadavg()
    doc["ideal"] = ideal_costs(doc)
    save_json(doc, args.save)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        print_report(doc)


if __name__ == "__main__":
    main()
