"""Constants, the generated datasets, page-cache control and moving a dataset into a DVC repo."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import _common as c

BENCH_DIR = Path(__file__).resolve().parent.parent
SCRIPT = BENCH_DIR / "bench_datasets.py"  # the entry point; workers run it with --worker
CHUNK = 8 * 1024 * 1024
MIB = 1024 * 1024
MB = 1_000_000
DVC_VENV = BENCH_DIR / ".venv-dvc"
DVC_BIN = DVC_VENV / "bin" / "dvc"
DVC_REQUIREMENTS = BENCH_DIR / "requirements-dvc.txt"
MLOOP_BIN = Path(sys.executable).parent / "mloop"
DATASET_NAME = "x"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
BENCHES = ("add-2gb", "limits", "readd", "kill9")


# ============================================================================================ data


def files_of(root: Path) -> list[Path]:
    out = []
    for folder, _dirs, names in os.walk(root):
        out.extend(Path(folder) / n for n in names)
    return sorted(out)


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, CHUNK)
            fh.write(rng.randbytes(n))
            left -= n


def ensure_dataset(base: Path, kind: str, count: int, size: int, seed: int) -> Path:
    """Generate (once) ``count`` files of ``size`` seeded random bytes; reuse them when the marker matches."""
    name = f"{kind}-{count}x{size}-seed{seed}"
    root = base / name
    marker = base / f"{name}.json"
    params = {"count": count, "size": size, "seed": seed, "version": 1}
    if marker.exists() and root.is_dir():
        try:
            ok = json.loads(marker.read_text()) == params
        except ValueError:
            ok = False
        if ok:
            files = files_of(root)
            if len(files) == count and all(f.stat().st_size == size for f in files):
                return root
    c.log(f"[data] generating {root} ({count} x {size} bytes, seed {seed}) ...")
    marker.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    per_dir = 100 if count > 1000 else count  # many small files: 100 per folder, like real trees
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        rel = f"d{i // per_dir:03d}/f{i % per_dir:03d}.bin" if per_dir != count else f"f{i:05d}.bin"
        _write_random(root / rel, size, rng)
    os.sync()
    marker.write_text(json.dumps(params))
    c.log(f"[data] generated in {time.perf_counter() - started:.1f} s")
    return root


def dataset_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in files_of(root))


def warm(root: Path) -> None:
    buf = bytearray(CHUNK)
    for f in files_of(root):
        with open(f, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


def can_drop_caches() -> str | None:
    """None when the page cache can be dropped, else why not."""
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
    except OSError as exc:
        return f"cannot drop the page cache ({type(exc).__name__}: {exc}); warm-cache numbers only"
    return None


def drop_caches() -> None:
    os.sync()
    DROP_CACHES.write_text("3\n")


def lock_data_dir(base: Path) -> Any:
    """One run at a time per data dir: DVC runs move the shared datasets into their repo while they run."""
    import fcntl

    fh = open(base / ".lock", "w")  # noqa: SIM115 - held (open) until the process exits
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        c.log(f"[data] another bench_datasets.py run is using {base}; waiting for it to finish ...")
        fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


class Moved:
    """Move ``src`` to ``dest`` (a rename on the same file system) and back on exit."""

    def __init__(self, src: Path, dest: Path) -> None:
        if os.stat(src).st_dev != os.stat(dest.parent).st_dev:
            raise RuntimeError(f"{src} and {dest.parent} are on different file systems; set MLOOP_BENCH_TMP")
        self.src, self.dest = src, dest

    def __enter__(self) -> Path:
        os.rename(self.src, self.dest)
        return self.dest

    def __exit__(self, *exc: object) -> None:
        os.rename(self.dest, self.src)
