"""readd: re-adding an unchanged dataset (the 2 GB folder and many small files), mloop vs DVC."""

from __future__ import annotations

import os
from typing import Any

import _common as c

from _datasets.ctx import Ctx, cleanup
from _datasets.data import Moved
from _datasets.tools import dvc_add, dvc_new_repo, mloop_cli_add, mloop_init, mloop_inspect, mloop_sdk_add


def run_readd(ctx: Ctx) -> dict[str, Any]:
    a = ctx.args
    big = "2 GB dir" if (a.files, a.file_mib) == (200, 10) else f"{a.files} x {a.file_mib} MiB dir"
    cases = [(f"{big}, re-add", ctx.big, False), (f"{a.small_files} small files", ctx.small, True)]
    out: dict[str, Any] = {"cases": {}}
    sides = ["dvc", "mloop-sdk"] + (["mloop-cli"] if ctx.use_cli else [])
    if a.sides:  # e.g. "mloop-cli;mloop-sdk" (no DVC) for comparing mloop trees
        sides = [x for x in sides if x in [y.strip() for y in a.sides.split(";")]]
    for label, data, time_first in cases:
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
        for rep in range(ctx.args.repeat):
            for side in c.rotated(sides, rep):
                row: dict[str, Any] = {}
                if side == "dvc":
                    repo = dvc_new_repo("ds-dvc-re")
                    try:
                        with Moved(data, repo / "data"):
                            ctx.prepare("warm", repo / "data")
                            first = dvc_add(repo, "data")
                            os.sync()
                            second = dvc_add(repo, "data")
                    finally:
                        cleanup(repo)
                    row = {"first": first["seconds"], "readd": second["seconds"], **cpu(first, second)}
                else:
                    ws = c.new_workdir("ds-mloop-re")
                    try:
                        mloop_init(ws)
                        ctx.prepare("warm", data)
                        if side == "mloop-cli":
                            first = mloop_cli_add(ws, data)
                            os.sync()
                            second = mloop_cli_add(ws, data)
                            info = mloop_inspect(ws)
                            if info["versions"] != [1]:
                                raise RuntimeError(f"re-add left versions {info['versions']}, expected [1]")
                            row = {"first": first["seconds"], "readd": second["seconds"], **cpu(first, second)}
                        else:
                            first = mloop_sdk_add(ws, data)
                            os.sync()
                            second = mloop_sdk_add(ws, data)
                            if second["version"] != 1 or second["created"]:
                                raise RuntimeError(
                                    f"re-add gave version {second['version']} created="
                                    f"{second['created']} (expected the existing version 1)"
                                )
                            row = {
                                "first": first["wall"],
                                "readd": second["wall"],
                                **cpu(first, second),  # the SDK worker's CPU around Dataset.add
                                "first_inproc": first["seconds"],  # the worker's timer around Dataset.add
                                "readd_inproc": second["seconds"],
                                "first_internal": first["internal_seconds"],
                                "readd_internal": second["internal_seconds"],
                                "first_breakdown": first["breakdown"],
                                "readd_breakdown": second["breakdown"],
                                "readd_stats": second["stats"],
                            }
                    finally:
                        cleanup(ws)
                runs[side].append(row)
                c.log(f"[readd/{label}] rep {rep + 1} {side}: first {row['first']:.2f} s, re-add {row['readd']:.2f} s")
        med = {side: {k: c.median(r[k] for r in rs) for k in ("first", "readd")} for side, rs in runs.items()}
        for side in ("dvc", "mloop-sdk", "mloop-cli"):  # a side left out by --sides: no times
            med.setdefault(side, {"first": None, "readd": None})
        sdk = runs.get("mloop-sdk", [])
        for k in ("first_internal", "readd_internal", "first_inproc", "readd_inproc"):
            med["mloop-sdk"][k] = c.median(r[k] for r in sdk)
        mloop_side = "mloop-cli" if "mloop-cli" in runs else "mloop-sdk"
        case = {
            "time_first": time_first,
            "median": med,
            "mloop_side": mloop_side,
            "ratio_first": c.ratio(med["dvc"]["first"], med[mloop_side]["first"]),
            "ratio_readd": c.ratio(med["dvc"]["readd"], med[mloop_side]["readd"]),
            "readd_breakdown_median": {
                k: c.median(r["readd_breakdown"].get(k, 0.0) for r in sdk)
                for k in sorted({k for r in sdk for k in r["readd_breakdown"]})
            },
            "runs": runs,
        }
        case["bar_readd_under_1s"] = (med[mloop_side]["readd"] or 0.0) < 1.0
        out["cases"][label] = case
    return out


def cpu(first: dict[str, Any], second: dict[str, Any]) -> dict[str, float]:
    """User + sys CPU seconds of the first add and the re-add (the tool's process, or the SDK worker's call)."""
    return {f"{k}_cpu": r["cpu_user"] + r["cpu_sys"] for k, r in (("first", first), ("readd", second))}
