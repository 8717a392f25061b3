"""Running the tools: timed subprocesses, the DVC side and the mloop side (CLI and SDK workers)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

from _datasets.data import (
    DATASET_NAME,
    DVC_BIN,
    DVC_REQUIREMENTS,
    DVC_VENV,
    MB,
    MLOOP_BIN,
    SCRIPT,
    files_of,
)

# ============================================================================================ processes


def _diskstats_sectors_written() -> int:
    total = 0
    try:
        for line in Path("/proc/diskstats").read_text().splitlines():
            parts = line.split()
            # whole disks only (vda, sda, nvme0n1): skip partitions, loops, ram disks
            name = parts[2]
            if name.startswith(("loop", "ram", "dm-")) or (name[-1].isdigit() and not name.startswith("nvme")):
                continue
            if name.startswith("nvme") and "p" in name[4:]:
                continue
            total += int(parts[9])
    except (OSError, IndexError, ValueError):
        return 0
    return total


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 3600) -> dict[str, Any]:
    """Run ``cmd``; wall time, the child's CPU time (wait4 rusage), MB the disks wrote meanwhile."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        load1 = os.getloadavg()[0]
        w0 = _diskstats_sectors_written()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                raise TimeoutError(f"{cmd} took more than {timeout} s")
            time.sleep(0.002)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        w1 = _diskstats_sectors_written()
        out.seek(0)
        err.seek(0)
        return {
            "seconds": wall,
            "rc": proc.returncode,
            "load1_before": load1,
            "cpu_user": usage.ru_utime,
            "cpu_sys": usage.ru_stime,
            "max_rss_mib": usage.ru_maxrss / 1024,
            "disk_written_mb": (w1 - w0) * 512 / MB,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def check(res: dict[str, Any], what: str) -> dict[str, Any]:
    if res["rc"] != 0:
        raise RuntimeError(
            f"{what} failed (exit {res['rc']})\n--- stdout ---\n{res['stdout'][-3000:]}\n"
            f"--- stderr ---\n{res['stderr'][-6000:]}"
        )
    return res


def timed_sync() -> float:
    started = time.perf_counter()
    os.sync()
    return time.perf_counter() - started


# ============================================================================================ DVC side


PYCACHE = Path(tempfile.gettempdir()) / "mloop-bench-pycache"


def tool_env() -> dict[str, str]:
    """quiet_env() plus cached bytecode: PYTHONDONTWRITEBYTECODE (set on this machine) would make every CLI run
    recompile mloop's editable sources (~0.2 s) while DVC's site-packages ship compiled; a pycache prefix keeps
    src/ clean."""
    env = c.quiet_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def dvc_env() -> dict[str, str]:
    env = tool_env()
    env.update({"DVC_NO_ANALYTICS": "1", "DVC_IGNORE_ISATTY": "true"})
    env.pop("VIRTUAL_ENV", None)
    return env


def ensure_dvc() -> str:
    if not DVC_BIN.exists():
        c.log(f"[dvc] creating {DVC_VENV} from {DVC_REQUIREMENTS} ...")
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        subprocess.run([str(DVC_VENV / "bin" / "pip"), "install", "--quiet", "-r", str(DVC_REQUIREMENTS)], check=True)
    out = subprocess.run([str(DVC_BIN), "--version"], env=dvc_env(), capture_output=True, text=True, check=True)
    return out.stdout.strip()


def dvc(args: list[str], repo: Path) -> dict[str, Any]:
    return run_timed([str(DVC_BIN), *args], repo, dvc_env())


def dvc_new_repo(tag: str, *, cache_type: str | None = None) -> Path:
    repo = c.new_workdir(tag)
    check(dvc(["init", "--no-scm", "-q"], repo), "dvc init")
    check(dvc(["config", "core.analytics", "false"], repo), "dvc config")
    check(dvc(["config", "core.check_update", "false"], repo), "dvc config")
    if cache_type:
        check(dvc(["config", "cache.type", cache_type], repo), "dvc config cache.type")
    return repo


def restore_modes(root: Path) -> None:
    """Link modes (mloop --link, DVC's hardlink cache) make the source files read-only; undo it, untimed."""
    for f in files_of(root):
        os.chmod(f, 0o644)


def dvc_add(repo: Path, target: str) -> dict[str, Any]:
    res = check(dvc(["add", target], repo), "dvc add")
    if not (repo / f"{target}.dvc").exists():
        raise RuntimeError(f"dvc add left no {target}.dvc\n{res['stdout']}\n{res['stderr']}")
    return res


# ============================================================================================ mloop side


MLOOP_PYTHONPATH: list[str] = []  # set by --snapshot-src


def mloop_env() -> dict[str, str]:
    env = tool_env()  # MLOOP_* removed: the CLI finds the workspace from its cwd
    if MLOOP_PYTHONPATH:
        env["PYTHONPATH"] = os.pathsep.join(MLOOP_PYTHONPATH)
    return env


def snapshot_src() -> dict[str, str]:
    """Copy src/mloop to a temporary folder and run every mloop process from it (the tree may change under a long
    run while mloop is being developed). Returns where it is and a digest of the copied sources."""
    import hashlib

    src = c.REPO_ROOT / "src" / "mloop"
    dest_root = Path(tempfile.mkdtemp(prefix="mloop-bench-src-"))
    shutil.copytree(src, dest_root / "mloop", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    h = hashlib.sha256()
    for f in sorted((dest_root / "mloop").rglob("*.py")):
        h.update(f.relative_to(dest_root).as_posix().encode() + b"\0" + f.read_bytes())
    MLOOP_PYTHONPATH[:] = [str(dest_root)]
    atexit.register(shutil.rmtree, dest_root, True)
    return {"path": str(dest_root), "sha256_of_sources": h.hexdigest()[:16]}


def mloop_cli_has_data() -> str | None:
    """None when ``mloop data add`` exists, else why it can't be used."""
    if not MLOOP_BIN.exists():
        return f"no mloop executable at {MLOOP_BIN}"
    res = subprocess.run(
        [str(MLOOP_BIN), "data", "add", "--help"], env=mloop_env(), capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        return f"`mloop data add --help` exited {res.returncode}: {(res.stderr or res.stdout).strip()[-300:]}"
    return None


def mloop_worker(spec: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run an SDK worker; also return its wall time as seen from here (interpreter start-up included)."""
    load1 = os.getloadavg()[0]
    started = time.perf_counter()
    res = c.run_worker(SCRIPT, spec, mloop_env(), cwd)
    res["wall"] = time.perf_counter() - started
    res["load1_before"] = load1
    return res


def mloop_init(workdir: Path) -> None:
    mloop_worker({"task": "init", "workdir": str(workdir)}, workdir)


def mloop_cli_add(workdir: Path, path: Path, *extra: str) -> dict[str, Any]:
    cmd = [str(MLOOP_BIN), "data", "add", str(path), "--name", DATASET_NAME, "--json", *extra]
    res = check(run_timed(cmd, workdir, mloop_env()), "mloop data add")
    try:
        doc = json.loads(res["stdout"])
    except ValueError:
        doc = {}
    res["internal_seconds"] = doc.get("seconds")
    res["created"] = doc.get("created")
    res["version"] = doc.get("version")
    return res


def mloop_sdk_add(workdir: Path, path: Path, *, profile: bool = False) -> dict[str, Any]:
    return mloop_worker(
        {"task": "add", "workdir": str(workdir), "path": str(path), "name": DATASET_NAME, "profile": profile}, workdir
    )


def mloop_inspect(workdir: Path) -> dict[str, Any]:
    return mloop_worker({"task": "inspect", "workdir": str(workdir), "name": DATASET_NAME}, workdir)
