"""add-2gb: the first add of the big dataset, mloop (CLI, SDK, --link, --fsync) vs DVC, with reference loops."""

from __future__ import annotations

from typing import Any

import _common as c

from _datasets.ctx import Ctx, cleanup, mbps
from _datasets.data import SCRIPT, Moved, dataset_bytes
from _datasets.tools import (
    dvc_add,
    dvc_new_repo,
    mloop_cli_add,
    mloop_init,
    mloop_inspect,
    mloop_sdk_add,
    restore_modes,
    timed_sync,
    tool_env,
)


def run_add(ctx: Ctx) -> dict[str, Any]:
    data = ctx.big
    nbytes = dataset_bytes(data)
    sides = ["dvc", "mloop-sdk"] + (["mloop-cli"] if ctx.use_cli else [])
    if not ctx.args.no_refs:
        sides += list(ADD_REFS)
    if ctx.use_cli:
        sides += [MLOOP_FSYNC]
    if ctx.cli_link and not ctx.args.no_link:
        sides += [DVC_LINK, MLOOP_LINK]
    if ctx.args.sides:
        wanted = [x.strip() for x in ctx.args.sides.split(";")]
        sides = [x for x in sides if x in wanted]
    out: dict[str, Any] = {"bytes": nbytes, "files": ctx.args.files, "threads": ctx.threads, "modes": {}}
    for mode in ctx.modes:
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
        for rep in range(ctx.args.repeat):
            for side in c.rotated(sides, rep):
                if side in ADD_REFS:  # the same work without a tool, interleaved with the tools' runs
                    work = c.new_workdir("ds-ref")
                    try:
                        spec = {"task": "limit", "path": str(data), "dest": str(work / "copy"), **ADD_REFS[side]}
                        spec["threads"] = ctx.threads
                        ctx.prepare(mode, data)
                        res = c.run_worker(SCRIPT, spec, tool_env(), work)
                        res["sync_after"] = timed_sync()
                    finally:
                        cleanup(work)
                elif side in ("dvc", DVC_LINK):
                    repo = dvc_new_repo("ds-dvc", cache_type="hardlink" if side == DVC_LINK else None)
                    try:
                        with Moved(data, repo / "data"):
                            ctx.prepare(mode, repo / "data")
                            res = dvc_add(repo, "data")
                            res["sync_after"] = timed_sync()
                    finally:
                        cleanup(repo)
                        if side == DVC_LINK:
                            restore_modes(data)
                    res["seconds_with_sync"] = res["seconds"] + res["sync_after"]
                else:
                    ws = c.new_workdir("ds-mloop")
                    try:
                        mloop_init(ws)
                        ctx.prepare(mode, data)
                        if side == "mloop-cli":
                            res = mloop_cli_add(ws, data)
                        elif side == MLOOP_LINK:
                            res = mloop_cli_add(ws, data, "--link")
                        elif side == MLOOP_FSYNC:
                            res = mloop_cli_add(ws, data, "--fsync")
                        else:
                            res = mloop_sdk_add(ws, data, profile=ctx.args.profile and rep == 0)
                        res["sync_after"] = timed_sync()
                        if side in ("mloop-cli", MLOOP_LINK, MLOOP_FSYNC):
                            info = mloop_inspect(ws)
                            if info["versions"] != [1]:
                                raise RuntimeError(f"mloop data add left versions {info['versions']}, expected [1]")
                    finally:
                        cleanup(ws)
                        if side == MLOOP_LINK:
                            restore_modes(data)
                    if side == "mloop-sdk":
                        res["sdk_wall"] = res.pop("wall")
                        if res.get("version") != 1 or not res.get("created"):
                            raise RuntimeError(
                                f"first add gave version {res.get('version')} created={res.get('created')}"
                            )
                for k in ("stdout", "stderr"):
                    res.pop(k, None)
                runs[side].append(res)
                c.log(
                    f"[add-2gb/{mode}] rep {rep + 1} {side}: {res['seconds']:.2f} s "
                    f"(+sync after {res['sync_after']:.2f} s)"
                )
        out["modes"][mode] = summarise_add(runs, nbytes)
    return out


DVC_LINK = "dvc (cache.type hardlink)"
MLOOP_LINK = "mloop-cli --link"
MLOOP_FSYNC = "mloop-cli --fsync"
ADD_REFS: dict[str, dict[str, Any]] = {
    # mloop's algorithm (read 8 MiB, BLAKE3 AUTO, write, rename by digest; one sync at the end) in plain Python
    "ref: mloop's loop (plain Python)": {"kind": "store-loop"},
    # the floor for any tool that copies the bytes and makes them durable
    "ref: copy + fdatasync each": {"kind": "copy", "fsync_each": True},
}


def summarise_add(runs: dict[str, list[dict[str, Any]]], nbytes: int) -> dict[str, Any]:
    med = {side: c.median(r["seconds"] for r in rs) for side, rs in runs.items()}
    med.setdefault("dvc", None)
    s: dict[str, Any] = {"runs": runs, "median_seconds": med}
    s["dvc_with_sync"] = c.median(r["seconds_with_sync"] for r in runs.get("dvc", []))
    sdk = runs.get("mloop-sdk", [])
    s["mloop_sdk_internal"] = c.median(r["internal_seconds"] for r in sdk)
    s["mloop_sdk_process_wall"] = c.median(r["sdk_wall"] for r in sdk)
    if runs.get(MLOOP_LINK):
        link_dvc = med.get(DVC_LINK)
        s["link"] = {
            "dvc_hardlink": link_dvc,
            "dvc_hardlink_with_sync": c.median(r["seconds_with_sync"] for r in runs.get(DVC_LINK, [])),
            "mloop_link": med[MLOOP_LINK],
            "mloop_link_internal": c.median(r.get("internal_seconds") for r in runs[MLOOP_LINK]),
            "ratio_dvc_hardlink_over_mloop_link": c.ratio(link_dvc, med[MLOOP_LINK]),
            "ratio_dvc_copy_over_mloop_link": c.ratio(med["dvc"], med[MLOOP_LINK]),
        }
    mloop_wall = med.get("mloop-cli") or s["mloop_sdk_process_wall"]
    s["mloop_wall"] = mloop_wall
    s["mloop_wall_source"] = "mloop-cli" if med.get("mloop-cli") else "mloop-sdk worker process"
    s["ratio_dvc_over_mloop"] = c.ratio(med["dvc"], mloop_wall)
    s["ratio_dvc_sync_over_mloop"] = c.ratio(s["dvc_with_sync"], mloop_wall)
    s["mbps"] = {
        "dvc": mbps(nbytes, med["dvc"]),
        "dvc+sync": mbps(nbytes, s["dvc_with_sync"]),
        "mloop (wall)": mbps(nbytes, mloop_wall),
        "mloop (SDK internal)": mbps(nbytes, s["mloop_sdk_internal"]),
    }
    keys = sorted({k for r in sdk for k in r.get("breakdown", {})})
    s["breakdown_median"] = {k: c.median(r["breakdown"].get(k, 0.0) for r in sdk) for k in keys}
    cli = runs.get("mloop-cli") or []
    s["mloop_cli_internal"] = c.median(r.get("internal_seconds") for r in cli) if cli else None
    s["cpu"] = {
        side: {"user": c.median(r.get("cpu_user") for r in rs), "sys": c.median(r.get("cpu_sys") for r in rs)}
        for side, rs in runs.items()
        if not side.startswith("ref:")
    }
    return s
