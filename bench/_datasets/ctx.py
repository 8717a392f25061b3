"""The driver's context: options, tool availability, the datasets and the page-cache state before a run."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import _common as c

from _datasets.data import MB, MIB, MLOOP_BIN, Moved, can_drop_caches, drop_caches, ensure_dataset, lock_data_dir, warm
from _datasets.tools import (
    dvc_add,
    dvc_new_repo,
    ensure_dvc,
    mloop_cli_add,
    mloop_cli_has_data,
    mloop_env,
    mloop_init,
    mloop_sdk_add,
    snapshot_src,
)

# ============================================================================================ driver


class Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.snapshot = snapshot_src() if args.snapshot_src else None
        base = Path(args.data_dir)
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self._lock = lock_data_dir(base)
        self._big: Path | None = None
        self._small: Path | None = None
        self.cli_reason = mloop_cli_has_data() if args.mloop_via != "sdk" else "--mloop-via sdk"
        if args.mloop_via == "cli" and self.cli_reason:
            raise SystemExit(f"--mloop-via cli: {self.cli_reason}")
        self.use_cli = self.cli_reason is None
        self.cli_link = (
            self.use_cli
            and "--link"
            in subprocess.run(
                [str(MLOOP_BIN), "data", "add", "--help"], env=mloop_env(), capture_output=True, text=True, check=False
            ).stdout
        )
        self.dvc_version = ensure_dvc()
        self.threads = args.threads or min(32, 2 * (os.cpu_count() or 1))
        modes = {"warm": ["warm"], "cold": ["cold"], "both": ["warm", "cold"]}[args.cache]
        self.cold_reason = can_drop_caches() if "cold" in modes else None
        if self.cold_reason:
            modes = [m for m in modes if m != "cold"] or ["warm"]
        self.modes = modes

    @property
    def big(self) -> Path:
        if self._big is None:
            a = self.args
            self._big = ensure_dataset(self.base, "big", a.files, a.file_mib * MIB, a.seed)
        return self._big

    @property
    def small(self) -> Path:
        if self._small is None:
            a = self.args
            self._small = ensure_dataset(self.base, "small", a.small_files, a.small_bytes, a.seed)
        return self._small

    def prepare(self, mode: str, data: Path) -> None:
        """Before a timed run: nothing dirty, and the data in (warm) or out of (cold) the page cache."""
        os.sync()
        if mode == "warm":
            warm(data)
            return
        drop_caches()
        self.prime_code()

    def prime_code(self) -> None:
        """After dropping caches, run each tool once on a tiny folder so its code (not the data) is cached."""
        tiny = c.new_workdir("ds-prime")
        try:
            (tiny / "d").mkdir()
            (tiny / "d" / "a.txt").write_text("prime\n")
            repo = dvc_new_repo("ds-prime-dvc")
            try:
                with Moved(tiny / "d", repo / "d"):
                    dvc_add(repo, "d")
            finally:
                c.remove_workdir(repo)
            ws = tiny / "ws"
            ws.mkdir()
            mloop_sdk_add(ws, tiny / "d")
            if self.use_cli:
                ws2 = tiny / "ws2"
                ws2.mkdir()
                mloop_init(ws2)
                mloop_cli_add(ws2, tiny / "d")
        finally:
            c.remove_workdir(tiny)
        os.sync()


def mbps(nbytes: int, seconds: float | None) -> float | None:
    return None if not seconds else nbytes / MB / seconds


def cleanup(path: Path) -> None:
    c.remove_workdir(path)
    os.sync()
