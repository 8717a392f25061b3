"""Summaries and tables of ``bench_deploy.py``: medians by side and concurrency, paired ratios, the shadow's
accounting (share mirrored, shed) and the CPU split that gives the ideal cost of a 100% shadow on one core.

The ideal cost: a closed loop on a server bound by its one core serves ``1 / (L + S)`` requests a second
when a live request costs ``L`` of CPU and its shadow ``S``; so the throughput a shadow costs is at best
``S / (L + S)``. ``L`` is the one-version endpoint's measured server CPU a request; ``S`` is taken three ways:
as measured (the shadow endpoint's CPU a live request minus ``L``), as the scoring app costs in process without
HTTP at the same concurrency (what the replay runs: the floor of the current design), and as the model call
alone at the shadow's observed batch size (the floor of the bulk drain, which gets the parsed input); the probe
side adds the CPU measured inside the drain a mirrored request.
"""

from __future__ import annotations

import statistics
from typing import Any

from _common import fmt_range, print_table

__all__ = ["ideal_costs", "print_report", "summarise"]


def _med(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarise(runs: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, by_c in runs.items():
        for c, rs in by_c.items():
            counts = {k: sum(r["counts"][k] for r in rs) for k in rs[0]["counts"]}
            out.setdefault(side, {})[str(c)] = {
                "throughput": round(_med([r["throughput"] for r in rs]) or 0, 1),
                "p50_ms": round((_med([r["p50"] for r in rs]) or 0) * 1e3, 3),
                "p99_ms": round((_med([r["p99"] for r in rs]) or 0) * 1e3, 3),
                "cpu_ms_per_request": round(_med([r["cpu_ms_per_request"] for r in rs]) or 0, 4),
                "control_cpu_ms_per_s": round(_med([r["control_cpu_ms_per_s"] for r in rs]) or 0, 2),
                "live_batch": _med([r["live_batch"] for r in rs]),
                "shadow_batch": _med([r["shadow_batch"] for r in rs]),
                "non_2xx": sum(r["non_2xx"] for r in rs),
                "socket_errors": sum(r["socket_errors"] for r in rs),
                "live_200": counts["live_200"],
                "shadow_answered": counts["shadow_all"],
                "shadow_200": counts["shadow_200"],
                "shadow_503": counts["shadow_503"],
                "shadow_shed": counts["shadow_shed"],
                "mirrored_share": counts["shadow_all"] / counts["live_200"] if counts["live_200"] else None,
                "rounds": [round(r["throughput"], 1) for r in rs],
                "load1": [round(r.get("load1", 0), 2) for r in rs],
                "drain_us_per_mirrored": _med([r.get("drain_us_per_mirrored") for r in rs]),
                "gc": {k: counts.get(k, 0) for k in ("gc_count", "gc_s", "gc2_count", "gc2_s", "gc_over_10ms")},
            }
    return out


def ideal_costs(doc: dict[str, Any]) -> dict[str, Any]:
    """The shadow's cost per concurrency: measured, and the two ideals above (fractions of throughput)."""
    summary, split, out = doc["summary"], doc.get("split"), {}
    if "endpoint" not in summary or "shadow" not in summary:
        return {}
    for c, ep in summary["endpoint"].items():
        sh = summary["shadow"].get(c)
        if sh is None:
            continue
        live_us = ep["cpu_ms_per_request"] * 1e3
        measured_us = sh["cpu_ms_per_request"] * 1e3 - live_us
        row: dict[str, Any] = {"live_us": round(live_us, 1), "shadow_measured_us": round(measured_us, 1),
                               "cost_cpu": measured_us / (live_us + measured_us)}  # fmt: skip
        if split:
            app_us = split["app_us"].get(c)
            probe = summary.get("shadow-probe", {}).get(c, {})
            batch = round(sh["shadow_batch"] or probe.get("shadow_batch") or 1)
            predict = split["predict_us"].get(str(batch))
            if app_us is not None:
                row["shadow_app_us"] = app_us
                row["ideal_replay"] = app_us / (live_us + app_us)
                row["http_and_router_us"] = round(live_us - app_us, 1)
            if predict is not None:
                row["shadow_predict_us"] = round(predict / batch, 1)
                row["ideal_predict_only"] = predict / batch / (live_us + predict / batch)
        replay = summary.get("shadow-replay", {}).get(c)
        if replay is not None:
            replay_us = replay["cpu_ms_per_request"] * 1e3 - live_us
            row["shadow_replay_us"] = round(replay_us, 1)
            row["cost_cpu_replay"] = replay_us / (live_us + replay_us)
        drain = summary.get("shadow-probe", {}).get(c, {}).get("drain_us_per_mirrored")
        if drain is not None:
            row["drain_us"] = round(drain, 1)
        out[c] = row
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _ratio_pct(pr: dict[str, Any] | None) -> str:
    """A paired ratio as a change: '-12.3% (-15.0..-9.1%, 3 pairs)'."""
    if not pr:
        return "-"
    lo, mid, hi = ((pr[k] - 1) * 100 for k in ("min", "median", "max"))
    return f"{mid:+.1f}% ({lo:+.1f}..{hi:+.1f}%, {pr['n']} pairs)"


def print_report(doc: dict[str, Any]) -> None:
    rows = []
    for side, by_c in doc["summary"].items():
        for c, s in by_c.items():
            batch = "-" if s["live_batch"] is None else f"{s['live_batch']:.1f}"
            sbatch = "-" if s["shadow_batch"] is None else f"{s['shadow_batch']:.1f}"
            rows.append([side, c, f"{s['throughput']:,.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                         f"{s['cpu_ms_per_request']:.3f}", f"{s['control_cpu_ms_per_s']:.1f}", batch, sbatch,
                         f"{s['non_2xx']}/{s['socket_errors']}"])  # fmt: skip
    print_table("Single-row JSON, closed loop (wrk), medians over rounds; CPU: the server process a live request",
                ["side", "c", "req/s", "p50 ms", "live p99 ms", "CPU ms/req", "supervisor CPU ms/s",
                 "live batch", "shadow batch", "non-2xx/errors"], rows)  # fmt: skip
    rows = [[name, c, fmt_range(pr), _ratio_pct(pr)] for name, by_c in doc["ratios"].items() for c, pr in by_c.items()]
    print_table("Paired per-round ratios", ["ratio", "c", "median (min-max)", "as a change"], rows)
    rows = []
    for side, c, s in [
        (k, c, s) for k in doc["summary"] if "shadow" in k for c, s in doc["summary"].get(k, {}).items()
    ]:
        rows.append([side, c, f"{s['live_200']:,.0f}", f"{s['shadow_answered']:,.0f}", _pct(s["mirrored_share"]),
                     f"{s['shadow_200']:,.0f}", f"{s['shadow_503']:,.0f}", f"{s['shadow_shed']:,.0f}"])  # fmt: skip
    if rows:
        columns = ["side", "c", "live 200", "shadow answered", "mirrored", "shadow 200", "shadow 503", "shed"]
        print_table("Did the shadow do the work? (/metrics over all rounds)", columns, rows)
    rows = [[side, c, f"{s['gc']['gc_count']:,.0f}", f"{s['gc']['gc_s'] * 1e3:.1f}", f"{s['gc']['gc2_count']:.0f}",
             f"{s['gc']['gc2_s'] * 1e3:.1f}", f"{s['gc']['gc_over_10ms']:.0f}",
             "-" if s["drain_us_per_mirrored"] is None else f"{s['drain_us_per_mirrored']:.1f}"]
            for side, by_c in doc["summary"].items() for c, s in by_c.items() if s["gc"]["gc_count"]]  # fmt: skip
    if rows:
        print_table("Probe sides, over all rounds: garbage collections and the drain's CPU",
                    ["side", "c", "collections", "total ms", "gen-2", "gen-2 ms", "over 10 ms",
                     "drain CPU µs a mirrored request"], rows)  # fmt: skip
    loads = [x for by_c in doc["summary"].values() for s in by_c.values() for x in s["load1"]]
    if loads:
        print(f"\nLoad average (1 min) after each run: {min(loads):.1f}-{max(loads):.1f}")
    split = doc.get("split")
    if split:
        print(f"\nIn process (driver's core): parse {split['parse_us']} µs a request; predict a call by batch "
              f"size {split['predict_us']} µs; the whole scoring app without HTTP {split['app_us']} µs a request "
              f"at those concurrencies (batches {split['app_batch']}); input {split['input_type']}")  # fmt: skip
    rows = []
    for c, r in ideal_costs(doc).items():
        rows.append([c, r["live_us"], r["shadow_measured_us"], _pct(r["cost_cpu"]), r.get("http_and_router_us", "-"),
                     r.get("shadow_app_us", "-"), _pct(r.get("ideal_replay")), r.get("shadow_replay_us", "-"),
                     _pct(r.get("cost_cpu_replay")), r.get("drain_us", "-"), r.get("shadow_predict_us", "-"),
                     _pct(r.get("ideal_predict_only"))])  # fmt: skip
    if rows:
        print_table("The shadow's cost against its physical limit (one core: cost = S / (L + S))",
                    ["c", "L live µs", "S measured µs", "cost (CPU)", "HTTP+router µs", "S app in process µs",
                     "ideal (replay)", "S replay µs", "replay cost (CPU)", "S in drain µs", "S predict only µs",
                     "ideal (predict only)"], rows)  # fmt: skip
