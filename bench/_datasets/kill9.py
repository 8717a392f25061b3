"""kill9: SIGKILL ``mloop data add`` mid-way; no version may be visible and the next add must verify."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import _common as c

from _datasets.ctx import Ctx, cleanup
from _datasets.data import DATASET_NAME, MLOOP_BIN, SCRIPT
from _datasets.tools import mloop_env, mloop_init, mloop_inspect, mloop_sdk_add, mloop_worker, run_timed


def run_kill9(ctx: Ctx) -> dict[str, Any]:
    data = ctx.big
    results = []
    for after in [float(x) for x in ctx.args.kill_after.split(",") if x.strip()]:
        ws = c.new_workdir("ds-kill9")
        row: dict[str, Any] = {"kill_after": after, "via": "mloop-cli" if ctx.use_cli else "mloop-sdk worker"}
        try:
            mloop_init(ws)
            ctx.prepare("warm", data)
            if ctx.use_cli:
                cmd = [str(MLOOP_BIN), "data", "add", str(data), "--name", DATASET_NAME]
            else:
                spec = {"task": "add", "workdir": str(ws), "path": str(data), "name": DATASET_NAME}
                cmd = c.worker_command(SCRIPT, spec)
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=ws, env=mloop_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while proc.poll() is None and time.perf_counter() - started < after:
                time.sleep(0.005)
            finished_first = proc.poll() is not None
            if not finished_first:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            row["killed_at"] = time.perf_counter() - started
            row["finished_before_kill"] = finished_first
            after_kill = mloop_inspect(ws)
            row["after_kill"] = after_kill
            cli_versions = None
            if ctx.use_cli:
                res = run_timed([str(MLOOP_BIN), "data", "versions", DATASET_NAME, "--json"], ws, mloop_env())
                cli_versions = {"rc": res["rc"], "stdout": res["stdout"][-500:], "stderr": res["stderr"][-500:]}
            row["cli_versions_after_kill"] = cli_versions
            again = mloop_sdk_add(ws, data)
            row["next_add"] = {
                "version": again["version"],
                "created": again["created"],
                "seconds": again["seconds"],
                "stats": again["stats"],
            }
            verify = mloop_worker(
                {
                    "task": "verify",
                    "workdir": str(ws),
                    "name": DATASET_NAME,
                    "version": again["version"],
                    "path": str(data),
                },
                ws,
            )
            row["verify"] = verify
            final = mloop_inspect(ws)
            row["final"] = final
            checks = {
                "killed mid-add": not finished_first,
                "no version after kill": after_kill["versions"] == [],
                "next add creates version 1": again["version"] == 1 and again["created"] is True,
                "exactly one version after": final["versions"] == [1],
                "version 1 matches source and verifies": bool(verify["ok"]),
            }
            row["checks"] = checks
            if finished_first:  # nothing was interrupted: this point says nothing about crash safety
                row["pass"] = True
                row["status"] = "INCONCLUSIVE (the add finished before the kill; use a smaller --kill-after)"
            else:
                row["pass"] = all(v for k, v in checks.items() if k != "killed mid-add")
                row["status"] = "PASS" if row["pass"] else "FAIL"
        except Exception as exc:  # a crash of mloop is a FAIL with its traceback, not a crash of the bench
            row["status"] = "FAIL"
            row["pass"] = False
            row["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            cleanup(ws)
        c.log(f"[kill9] kill after {after} s: {row['status']}")
        results.append(row)
    return {"runs": results, "pass": all(r["pass"] for r in results)}
