"""profile-runs driver: alternate the phase and py-spy workers, aggregate, and print the tables."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import _common as c

from _tracking.phases import PHASES
from _tracking.pyspy import pyspy_exe, pyspy_runs

# ---------------------------------------------------------------------------------------------- driver


def profile_runs(script: Path, n: int, repeat: int, rate: int) -> dict[str, Any]:
    """``repeat`` phase workers and ``repeat`` py-spy workers, alternating; medians and summed samples."""
    has_pyspy = pyspy_exe() is not None
    phases: list[dict[str, Any]] = []
    spies: list[dict[str, Any]] = []
    for rep in range(repeat):
        for kind in ("phases", "py-spy") if rep % 2 == 0 else ("py-spy", "phases"):
            if kind == "py-spy":
                if has_pyspy:
                    spies.append(pyspy_runs(script, n, rate))
                    c.log(f"  profile rep {rep + 1}/{repeat} py-spy   {c.fmt_s(spies[-1]['seconds'] / n)} per run")
                continue
            work = c.new_workdir("profile-phases")
            try:
                spec = {"task": "profile_phases", "side": c.MLOOP_SQLITE, "runs": n}
                phases.append(c.run_worker(script, spec, c.side_env(c.MLOOP_SQLITE, work), cwd=work))
            finally:
                c.remove_workdir(work)
            ph = phases[-1]
            c.log(
                f"  profile rep {rep + 1}/{repeat} phases   plain {c.fmt_s(ph['plain_per_run_s'])} per run, "
                f"instrumented {c.fmt_s(ph['instrumented_per_run_s'])}"
            )

    def med(key: str) -> dict[str, float]:
        keys = sorted({k for p in phases for k in p[key]})
        return {k: statistics.median(p[key].get(k, 0.0) for p in phases) for k in keys}

    out: dict[str, Any] = {
        "runs": n,
        "repeat": repeat,
        "plain_per_run_s": statistics.median(p["plain_per_run_s"] for p in phases),
        "plain_per_run_samples_s": [p["plain_per_run_s"] for p in phases],
        "plain_cpu_per_run_s": statistics.median(p["plain_cpu_per_run_s"] for p in phases),
        "instrumented_per_run_s": statistics.median(p["instrumented_per_run_s"] for p in phases),
        "phases_per_run_s": med("phases_per_run_s"),
        "calls_per_run": med("calls_per_run"),
        "statements_per_run": med("statements_per_run"),
        "statements_by_table_per_run": med("statements_by_table_per_run"),
        "sql_replay_per_run_s": med("sql_replay_per_run_s"),
        "sql_replay_cpu_per_run_s": med("sql_replay_cpu_per_run_s"),
        "sql_replay_wal_frames_per_run": med("sql_replay_wal_frames_per_run"),
        "not_timed": phases[0]["not_timed"] if phases else [],
    }
    if spies:
        total: Counter[str] = Counter()
        for sp in spies:
            total.update(sp["samples"])
        per_run = statistics.median(sp["seconds"] / n for sp in spies)
        all_samples = sum(total.values())
        out["pyspy"] = {
            "rate": rate,
            "workers": len(spies),
            "samples": all_samples,
            "per_run_s": per_run,
            "cells_per_run_s": {k: v / all_samples * per_run for k, v in total.most_common()},
        }
    else:
        out["pyspy"] = {"skipped": "py-spy is not installed (pip install py-spy into bench/.venv)"}
    return out


def show_profile(doc: dict[str, Any]) -> None:
    us = lambda s: "-" if s is None else f"{s * 1e6:,.0f} µs"  # noqa: E731
    ph, calls = doc["phases_per_run_s"], doc["calls_per_run"]
    rows = [["plain loop (no timers)", us(doc["plain_per_run_s"]), ""]]
    rows.append(["  of which CPU time of the process", us(doc.get("plain_cpu_per_run_s")), ""])
    rows.append(["with the timers below", us(doc["instrumented_per_run_s"]), ""])
    for top in ("mloop.start_run", "log_params + log_metrics (buffer)", "end of the with block (Run.__exit__)"):
        rows.append([top, us(ph.get(top)), "1"])
    for depth, label, *_ in PHASES:
        rows.append(["  " * depth + label, us(ph.get(label)), f"{calls.get(label, 0):g}"])
    for key in ("driver: BEGIN", "driver: execute (other statements)", "driver: COMMIT"):
        rows.append(["  " + key, us(ph.get(key)), f"{calls.get(key, 0):g}"])
    c.print_table(
        f"mloop-sqlite, {doc['runs']:,} runs x (10 params + 10 metrics): wall time per run, inclusive "
        f"(medians of {doc['repeat']} workers)",
        ["phase", "per run", "calls / run"],
        rows,
        f"not timed (moved?): {doc['not_timed']}" if doc["not_timed"] else "",
    )
    st = ", ".join(f"{k} {v:g}" for k, v in doc["statements_per_run"].items())
    tb = ", ".join(f"{k} {v:g}" for k, v in doc["statements_by_table_per_run"].items())
    print(f"statements per run (driver calls, executemany = 1): {st}\nby table: {tb}")
    c.print_table(
        "the same statements replayed with plain sqlite3 (no SQLAlchemy, no mloop Python), per run",
        ["replay", "per run", "CPU per run", "WAL pages per run"],
        [
            [
                k,
                us(v),
                us(doc["sql_replay_cpu_per_run_s"].get(k)),
                f"{doc['sql_replay_wal_frames_per_run'].get(k, 0):.1f}"
                if k in doc["sql_replay_wal_frames_per_run"]
                else "-",
            ]
            for k, v in doc["sql_replay_per_run_s"].items()
        ],
        "WAL pages are counted where nothing checkpoints (all pages the commits wrote); wall - CPU = waiting, mostly "
        "the fsyncs of the automatic checkpoints",
    )
    spy = doc["pyspy"]
    if "skipped" in spy:
        print(f"py-spy: {spy['skipped']}")
        return
    by_op: Counter[str] = Counter()
    by_layer: Counter[str] = Counter()
    for key, v in spy["cells_per_run_s"].items():
        op, _, layer = key.partition(" | ")
        by_op[op] += v
        by_layer[layer] += v
    total = spy["per_run_s"]
    for title, counter in (("operation", by_op), ("layer", by_layer)):
        c.print_table(
            f"py-spy --idle, {spy['workers']} workers, {spy['samples']:,} samples of the timed loop, by {title} "
            f"(per run; total {us(total)})",
            [title, "per run", "share"],
            [[k, us(v), f"{v / total:.0%}"] for k, v in counter.most_common()],
        )
