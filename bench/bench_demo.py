"""``mloop demo`` timed with its phases (issue #14: "the whole demo under 2 minutes on this machine").

    python bench/bench_demo.py [--repeat 3] [--json] [--save PATH]

Each repeat is one fresh process, ``mloop demo --dir <new empty folder> --json``, on a fresh workspace, timed with
``time.perf_counter`` around it (interpreter start-up, imports and the stop of every process it started included),
and reads the demo's own ``--json`` summary for its phases: data, train (publish, run, evaluate, promote), deploy
(the endpoint starts), watch (monitor, automations, scheduler, undrifted traffic and its window), drift (new data
version, drifted traffic, the alert), loop (retrain, gate, canary 50% → 100%, with no manual step), refusal (a
shuffled-label retrain refused by the gate), report (HTML report, processes stopped). Also ``drift → production``:
from the recorded alert to the retrained model serving 100%. Reports the median and every repeat, with the load
average before each. A repeat whose demo fails is reported as failed (its error), never timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

BAR_S = 120.0
PHASES = ("data", "train", "deploy", "watch", "drift", "loop", "refusal", "report")


def one(work: Path, index: int) -> dict[str, Any]:
    folder = work / f"demo-{index}"
    load = os.getloadavg()[0]
    command = [sys.executable, "-c", "from mloop.cli.app import main; main()", "demo", "--dir", str(folder), "--json"]
    started = c.now()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    wall = c.now() - started
    if done.returncode != 0:
        return {"ok": False, "load": load, "error": done.stderr.strip().splitlines()[-1:] or ["?"]}
    summary = json.loads(done.stdout)
    phases = {p["name"]: p["seconds"] for p in summary["phases"]}
    gain = summary["comparison"]
    return {"ok": True, "load": load, "wall_s": wall, "demo_s": summary["seconds"], "phases": phases,
            "drift_to_production_s": summary["drift_to_production_s"],
            "manual_steps_after_drift": summary["manual_steps_after_drift"],
            "production": summary["production"], "refused": summary["refused"].get("version"),
            "gain": gain.get("improvement"), "ci_low": gain.get("ci_low")}  # fmt: skip


def main() -> None:
    parser = c.base_parser(__doc__ or "")
    parser.set_defaults(repeat=3)
    args = parser.parse_args()
    work = c.new_workdir("demo")
    runs = []
    try:
        for i in range(args.repeat):
            c.log(f"demo {i + 1}/{args.repeat} (load {os.getloadavg()[0]:.1f}) ...")
            runs.append(one(work, i))
            c.log(f"  {runs[-1].get('wall_s', 'failed')}")
    finally:
        c.remove_workdir(work)
    ok = [r for r in runs if r["ok"]]
    med = {key: c.median(r[key] for r in ok) for key in ("wall_s", "demo_s", "drift_to_production_s")}
    phases = {p: c.median(r["phases"][p] for r in ok) for p in PHASES}
    doc = {"versions": c.versions(), "repeats": runs, "median": med, "median_phases": phases, "bar_s": BAR_S,
           "met": bool(ok) and len(ok) == len(runs) and (med["wall_s"] or BAR_S + 1) < BAR_S}  # fmt: skip
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
        return
    columns = ["", "median", *[f"run {i + 1}" for i in range(len(runs))]]

    def row(label: str, value: Any, per_run: list[Any]) -> list[Any]:
        return [label, c.fmt_s(value), *per_run]

    rows = [row("whole demo (process, wall)", med["wall_s"],
                [c.fmt_s(r["wall_s"]) if r["ok"] else "failed" for r in runs])]  # fmt: skip
    rows += [row(f"  {p}", phases[p], [c.fmt_s(r["phases"][p]) if r["ok"] else "-" for r in runs]) for p in PHASES]
    rows.append(row("drift alert → retrained model at 100%", med["drift_to_production_s"],
                    [c.fmt_s(r["drift_to_production_s"]) if r["ok"] else "-" for r in runs]))  # fmt: skip
    rows.append(["load average before", "", *[f"{r['load']:.1f}" for r in runs]])
    failures = "; ".join(f"run {i + 1}: {r['error']}" for i, r in enumerate(runs) if not r["ok"])
    note = f"bar: whole demo < {BAR_S:.0f} s -> {'met' if doc['met'] else 'NOT met'}" + (
        f"; failed: {failures}" if failures else "")  # fmt: skip
    c.print_table("mloop demo, fresh folder each run", columns, rows, note)


if __name__ == "__main__":
    main()
