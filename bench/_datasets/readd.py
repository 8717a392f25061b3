"""readd: re-adding an unchanged dataset (the 2 GB folder and many small files), mloop vs DVC."""

from __future__ import annotations

import os
from typing import Any

import _common as c

from _datasets.ctx import Ctx, cleanup
from _datasets.data import Moved
from _datasets.tools import dvc_add, dvc_new_repo, mloop_cli_add, mloop_init, mloop_inspect, mloop_sdk_add


def run_readd(ctx: Ctx) -> dict[str, Any]:
    cases = [("2 GB dir, re-add", ctx.big, False), (f"{ctx.args.small_files} small files", ctx.small, True)]
    out: dict[str, Any] = {"cases": {}}
    sides = ["dvc", "mloop-sdk"] + (["mloop-cli"] if ctx.use_cli else [])
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
                    row = {"first": first["seconds"], "readd": second["seconds"]}
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
                            row = {"first": first["seconds"], "readd": second["seconds"]}
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
        sdk = runs["mloop-sdk"]
        med["mloop-sdk"]["first_internal"] = c.median(r["first_internal"] for r in sdk)
        med["mloop-sdk"]["readd_internal"] = c.median(r["readd_internal"] for r in sdk)
        mloop_side = "mloop-cli" if ctx.use_cli else "mloop-sdk"
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
        case["bar_readd_under_1s"] = med[mloop_side]["readd"] < 1.0
        out["cases"][label] = case
    return out
