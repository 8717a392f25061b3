"""Dataset versioning: ``mloop data add DIR`` vs ``dvc add DIR``, beside the machine's physical limits.

    python bench/bench_datasets.py                         # all: add-2gb limits readd kill9
    python bench/bench_datasets.py add-2gb limits --repeat 3 --cache both
    python bench/bench_datasets.py readd --small-files 10000 --json
    python bench/bench_datasets.py kill9 --kill-after 0.7,1.0

DVC runs from its own venv (``bench/.venv-dvc``, see ``bench/requirements-dvc.txt``; created on first use),
as a subprocess, in a throwaway git-free repo (``dvc init --no-scm``) with analytics and update checks off
and the default cache type. mloop runs from this interpreter: the ``mloop`` CLI next to it when it has
``data add``, plus an SDK worker (``mloop.Dataset.add``) that reports mloop's own timer and a per-phase
breakdown. Every add runs in a fresh subprocess and a fresh workspace / repo.

add-2gb   200 files x 10 MiB of seeded random bytes (generated once under --data-dir, reused), first add.
          Warm cache: the dataset is read once before each run. Cold cache (root only): ``sync; echo 3 >
          /proc/sys/vm/drop_caches``, then each tool does a tiny add elsewhere so its code is cached again and
          only the data is cold. ``os.sync()`` runs before every timed add, so one side never pays for the
          other's dirty pages, and is timed after it ("+sync after": the time until the data is on disk).
          Neither ``dvc add`` nor the default ``mloop data add`` flushes; ``mloop data add --fsync`` does.
          Sides also include ``--link`` vs DVC's ``cache.type hardlink``. On a reflink file system (run with
          ``MLOOP_BENCH_TMP`` and ``--data-dir`` on Btrfs/XFS) both tools' defaults clone instead of copying.
limits    sequential read of the dataset (1 and N threads, 8 MiB chunks), in-memory hashing (SHA-256, MD5 -
          DVC's hash -, BLAKE3 one thread and ``max_threads=AUTO``), read+BLAKE3 and read+MD5 of the dataset,
          copy (read + write to the same disk, then one sync, or fdatasync per file), mloop's store loop
          re-implemented plainly (read 8 MiB, BLAKE3, write, rename; variants), an alternative store loop
          (``os.copy_file_range`` then BLAKE3 ``update_mmap`` of the copy), and copying the small-file tree.
          N = --threads (default 2 x CPUs, mloop's pool size).
readd     re-adding the unchanged 2 GB directory into the same workspace / DVC repo, and a directory of
          10,000 x 1 KiB files (first add and re-add). Bar: mloop re-adds in < 1 s.
kill9     SIGKILL ``mloop data add`` while it stores blobs (0.7 s and 1.0 s in by default); no version may be
          visible, the next add must create version 1,
          whose digests match the source files and whose blobs verify. PASS/FAIL.

DVC needs the data inside its repo: the dataset folder is moved in with ``os.rename`` (same file system, no
bytes copied, nothing timed) and moved back afterwards. Hard links would be cheaper to set up but make DVC
re-copy every file on checkout (it treats ``nlink > 1`` as a link to re-create), which would be unfair to it.

Every tool subprocess runs with cached bytecode (``PYTHONDONTWRITEBYTECODE`` dropped, ``PYTHONPYCACHEPREFIX``
under the temp dir), as users run them. ``--snapshot-src`` runs mloop from a copy of ``src/mloop`` taken at
start, for long runs while the tree is being edited.

Benchmarks are not tests: medians and ratios are printed, nothing gates on a time.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPT = Path(__file__).resolve()
BENCH_DIR = SCRIPT.parent
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


def _files_of(root: Path) -> list[Path]:
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
            files = _files_of(root)
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
    return sum(f.stat().st_size for f in _files_of(root))


def warm(root: Path) -> None:
    buf = bytearray(CHUNK)
    for f in _files_of(root):
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
    for f in _files_of(root):
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


# ============================================================================================ workers


def _client(workdir: str) -> Any:
    import mloop

    ws = mloop.init_workspace(workdir)
    return mloop.Client(workspace=ws)


def w_init(spec: dict[str, Any]) -> dict[str, Any]:
    cl = _client(spec["workdir"])
    cl.close()
    return {"ok": True}


class Breakdown:
    """Wall time of add's phases (main thread) and summed time of the per-file work (pool threads)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def add(self, key: str, dt: float) -> None:
        with self.lock:
            self.t[key] += dt
            self.n[key] += 1

    def wrap(self, owner: Any, name: str, key: str) -> None:
        orig = getattr(owner, name, None)
        if orig is None or getattr(orig, "_bench_wrapped", False):
            return

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                self.add(key, time.perf_counter() - started)

        wrapper._bench_wrapped = True  # type: ignore[attr-defined]
        setattr(owner, name, wrapper)

    def wrap_iter(self, owner: Any, name: str, key: str) -> None:
        orig = getattr(owner, name, None)
        if orig is None:
            return
        bd = self

        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            it = iter(orig(*args, **kwargs))
            while True:
                started = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    bd.add(key, time.perf_counter() - started)
                    return
                bd.add(key, time.perf_counter() - started)
                yield item

        setattr(owner, name, wrapper)

    def wrap_hasher(self, owner: Any, name: str, key: str) -> None:
        orig = getattr(owner, name, None)
        if orig is None:
            return
        bd = self

        class Timed:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def update(self, data: Any) -> Any:
                started = time.perf_counter()
                try:
                    return self.inner.update(data)
                finally:
                    bd.add(key, time.perf_counter() - started)

            def hexdigest(self) -> str:
                return str(self.inner.hexdigest())

        def factory(*args: Any, **kwargs: Any) -> Any:
            return Timed(orig(*args, **kwargs))

        setattr(owner, name, factory)


def _instrument(bd: Breakdown) -> None:
    """Patch timers around mloop's add phases; any name that has moved is simply not timed."""
    import importlib

    def mod(name: str) -> Any:
        try:
            return importlib.import_module(name)
        except ImportError:
            return None

    ds = mod("mloop.datasets.dataset")
    snap = mod("mloop.datasets.snapshot")
    sc = mod("mloop.datasets.statcache")
    st = mod("mloop.artifacts.store")
    loc = mod("mloop.artifacts.local")
    tables = mod("mloop.datasets.tables")
    prof = mod("mloop.datasets.profile")
    if ds is not None:
        bd.wrap(ds, "scan", "scan (walk + stat)")
        bd.wrap(ds, "snapshot_files", "snapshot_files (total)")
        bd.wrap(ds, "manifest_bytes", "manifest encode")
    if sc is not None:
        bd.wrap(sc.StatCache, "__init__", "stat cache open")
        bd.wrap(sc.StatCache, "lookup", "stat cache lookup")
        bd.wrap(sc.StatCache, "store", "stat cache store")
        bd.wrap(sc.StatCache, "close", "stat cache close")
    if st is not None:
        bd.wrap(st.ArtifactStore, "sync", "sync (os.sync)")
        bd.wrap(st.ArtifactStore, "put_bytes", "manifest put_bytes")
        bd.wrap(st.ArtifactStore, "exists", "blob exists checks")
        bd.wrap(st.ArtifactStore, "put_file", "threads: put_file")
        bd.wrap_iter(st, "iter_chunks", "threads: read")
        bd.wrap_hasher(st, "new_hasher", "threads: hash")
    if loc is not None:
        bd.wrap(loc.LocalUpload, "__init__", "threads: tmp create")
        bd.wrap(loc.LocalUpload, "write", "threads: write")
        bd.wrap(loc.LocalUpload, "publish", "threads: publish (chmod+rename)")
    if tables is not None:
        bd.wrap(tables, "is_table_dataset", "table detection")
    if prof is not None:
        bd.wrap(prof, "profile_table", "table profile")
    del snap


def w_add(spec: dict[str, Any]) -> dict[str, Any]:
    import mloop

    cl = _client(spec["workdir"])
    _ = cl.store, cl.artifacts  # open both stores untimed (the CLI opens them too, before adding)
    bd = Breakdown()
    _instrument(bd)
    bd.wrap(cl.store, "create_dataset_version", "metadata commit (create_dataset_version)")
    bd.wrap(cl.store, "add_lineage", "lineage")
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = mloop.Dataset.add(spec["path"], name=spec["name"], client=cl)
    seconds = time.perf_counter() - started
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {
        "seconds": seconds,
        "internal_seconds": result.seconds,
        "created": result.created,
        "version": result.dataset.version,
        "stats": vars(result.stats) if hasattr(result.stats, "__dict__") else str(result.stats),
        "cpu_user": ru1.ru_utime - ru0.ru_utime,
        "cpu_sys": ru1.ru_stime - ru0.ru_stime,
        "breakdown": dict(bd.t),
        "calls": dict(bd.n),
    }
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(30)
        out["profile"] = buf.getvalue()
    cl.close()
    return out


def w_inspect(spec: dict[str, Any]) -> dict[str, Any]:
    """Versions of the dataset (NotFound = none), blobs and leftover temporary uploads in the store."""
    from mloop.errors import NotFound

    cl = _client(spec["workdir"])
    try:
        page = cl.store.list_dataset_versions(spec["name"])
        items = list(getattr(page, "items", page))
        versions = [int(v.version) for v in items]
        how = "listed"
    except NotFound as exc:
        versions, how = [], f"NotFound: {exc}"
    root = Path(cl.artifacts.uri)
    blobs = sum(1 for _ in cl.artifacts.iter_blobs())
    parts = len(list((root / "tmp").glob("*"))) if (root / "tmp").is_dir() else 0
    cl.close()
    return {"versions": versions, "how": how, "blobs": blobs, "tmp_files": parts, "artifact_root": str(root)}


def w_verify(spec: dict[str, Any]) -> dict[str, Any]:
    """Version ``version`` lists exactly the source files, with their BLAKE3 digests, and every blob verifies."""
    import blake3

    import mloop

    cl = _client(spec["workdir"])
    ds = mloop.get_dataset(f"data:{spec['name']}/{spec['version']}", client=cl)
    entries = {e.path: e for e in ds.files()}
    src = Path(spec["path"])
    problems: list[str] = []
    source = {f.relative_to(src).as_posix(): f for f in _files_of(src)}
    if set(source) != set(entries):
        problems.append(f"file sets differ: {len(source)} source files, {len(entries)} in the version")
    buf = bytearray(CHUNK)
    for rel, f in source.items():
        e = entries.get(rel)
        if e is None:
            continue
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        with open(f, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                h.update(memoryview(buf)[:n])
        algo, _, hexd = e.digest.partition(":")
        if algo == "blake3" and hexd != h.hexdigest():
            problems.append(f"{rel}: digest {e.digest} != source blake3:{h.hexdigest()}")
        if e.size != f.stat().st_size:
            problems.append(f"{rel}: size {e.size} != {f.stat().st_size}")
        with cl.artifacts.open(e.digest, name=rel) as fh:  # reading to the end verifies the blob
            while fh.read(CHUNK):
                pass
    cl.close()
    return {"ok": not problems, "problems": problems[:10], "files": len(entries)}


# -- physical limits -----------------------------------------------------------------------------------


def _read_file(path: Path) -> int:
    buf = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            total += n
    return total


def _hash_file(path: Path, make: Callable[[], Any]) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    h = make()
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
            total += n
    h.hexdigest()
    return total


def _copy_file(src: Path, dest: Path, fsync: bool = False) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    with open(src, "rb", buffering=0) as fi, open(dest, "wb", buffering=0) as fo:
        while n := fi.readinto(buf):
            mv = view[:n]
            while mv:
                mv = mv[fo.write(mv) :]
            total += n
        if fsync:
            os.fdatasync(fo.fileno())
    return total


def _store_like_mloop(src: Path, dest: Path, fsync: bool = False, hash_threads: str = "auto") -> int:
    """mloop's put_file loop in its plainest form: read 8 MiB, BLAKE3 update, write; rename by digest."""
    import blake3

    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    tmp = dest / f".{src.name}.part"
    h = blake3.blake3(max_threads=blake3.blake3.AUTO if hash_threads == "auto" else 1)
    with open(src, "rb", buffering=0) as fi, open(tmp, "wb", buffering=0) as fo:
        while n := fi.readinto(buf):
            mv = view[:n]
            h.update(mv)
            while mv:
                mv = mv[fo.write(mv) :]
            total += n
        if fsync:
            os.fdatasync(fo.fileno())
    os.replace(tmp, dest / h.hexdigest())
    return total


def _store_cfr_mmap(src: Path, dest: Path, fsync: bool = False) -> int:
    """An alternative: copy in the kernel (copy_file_range), then BLAKE3 the *copy* through mmap (update_mmap),
    so the digest is of the stored bytes even if the source changes meanwhile; one memory copy instead of two."""
    import blake3

    tmp = dest / f".{src.name}.part"
    with open(src, "rb", buffering=0) as fi, open(tmp, "wb", buffering=0) as fo:
        size = os.fstat(fi.fileno()).st_size
        done = 0
        while done < size:
            n = os.copy_file_range(fi.fileno(), fo.fileno(), size - done)
            if n == 0:
                break
            done += n
        if fsync:
            os.fdatasync(fo.fileno())
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(str(tmp))
    os.replace(tmp, dest / h.hexdigest())
    return done


def _over_files(files: list[Path], fn: Callable[[Path], int], threads: int) -> int:
    if threads <= 1:
        return sum(fn(f) for f in files)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(fn, files))


def _hasher(name: str) -> Callable[[], Any]:
    import hashlib

    import blake3

    return {
        "sha256": hashlib.sha256,
        "md5": hashlib.md5,
        "blake3-1t": lambda: blake3.blake3(max_threads=1),
        "blake3-auto": lambda: blake3.blake3(max_threads=blake3.blake3.AUTO),
    }[name]


def w_limit(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec["kind"]
    threads = int(spec.get("threads", 1))
    files = _files_of(Path(spec["path"])) if spec.get("path") else []
    if kind == "mem-hash":
        rng = random.Random(1)
        data = memoryview(b"".join(rng.randbytes(MIB) for _ in range(spec["mem_mb"])))
        make = _hasher(spec["algo"])
        started = time.perf_counter()
        h = make()
        for i in range(0, len(data), CHUNK):
            h.update(data[i : i + CHUNK])
        h.hexdigest()
        return {"seconds": time.perf_counter() - started, "bytes": len(data)}
    started = time.perf_counter()
    if kind == "read":
        total = _over_files(files, _read_file, threads)
    elif kind == "read-hash":
        make = _hasher(spec["algo"])
        total = _over_files(files, lambda f: _hash_file(f, make), threads)
    elif kind in ("copy", "store-loop", "store-cfr"):
        dest = Path(spec["dest"])
        dest.mkdir(parents=True, exist_ok=True)
        fsync = bool(spec.get("fsync_each"))
        if kind == "copy":
            root = Path(spec["path"])

            def flat(f: Path) -> Path:  # small-file trees repeat names across folders
                return dest / "_".join(f.relative_to(root).parts)

            total = _over_files(files, lambda f: _copy_file(f, flat(f), fsync), threads)
        elif kind == "store-loop":
            ht = spec.get("hash_threads", "auto")
            total = _over_files(files, lambda f: _store_like_mloop(f, dest, fsync, ht), threads)
        else:
            total = _over_files(files, lambda f: _store_cfr_mmap(f, dest, fsync), threads)
        copied = time.perf_counter() - started
        os.sync()
        return {"seconds": time.perf_counter() - started, "seconds_before_sync": copied, "bytes": total}
    else:
        raise ValueError(kind)
    return {"seconds": time.perf_counter() - started, "bytes": total}


def w_noop(spec: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


TASKS = {"init": w_init, "add": w_add, "inspect": w_inspect, "verify": w_verify, "limit": w_limit, "noop": w_noop}


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


def _mbps(nbytes: int, seconds: float | None) -> float | None:
    return None if not seconds else nbytes / MB / seconds


def _cleanup(path: Path) -> None:
    c.remove_workdir(path)
    os.sync()


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
                        _cleanup(work)
                elif side in ("dvc", DVC_LINK):
                    repo = dvc_new_repo("ds-dvc", cache_type="hardlink" if side == DVC_LINK else None)
                    try:
                        with Moved(data, repo / "data"):
                            ctx.prepare(mode, repo / "data")
                            res = dvc_add(repo, "data")
                            res["sync_after"] = timed_sync()
                    finally:
                        _cleanup(repo)
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
                        _cleanup(ws)
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
        "dvc": _mbps(nbytes, med["dvc"]),
        "dvc+sync": _mbps(nbytes, s["dvc_with_sync"]),
        "mloop (wall)": _mbps(nbytes, mloop_wall),
        "mloop (SDK internal)": _mbps(nbytes, s["mloop_sdk_internal"]),
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


def run_limits(ctx: Ctx) -> dict[str, Any]:
    data = ctx.big
    n = ctx.threads
    mem_mb = ctx.args.mem_mib
    cpus = os.cpu_count() or 1
    specs: list[tuple[str, dict[str, Any], bool]] = [  # (label, spec, depends on cache mode)
        ("read, 1 thread", {"kind": "read", "threads": 1}, True),
        (f"read, {n} threads", {"kind": "read", "threads": n}, True),
        ("read + BLAKE3 auto, 1 file at a time", {"kind": "read-hash", "algo": "blake3-auto", "threads": 1}, True),
        (f"read + BLAKE3 auto, {n} threads", {"kind": "read-hash", "algo": "blake3-auto", "threads": n}, True),
        (f"read + MD5, {n} threads", {"kind": "read-hash", "algo": "md5", "threads": n}, True),
        ("copy + sync, 1 thread", {"kind": "copy", "threads": 1}, True),
        (f"copy + sync, {n} threads", {"kind": "copy", "threads": n}, True),
        (f"copy + fdatasync each file, {n} threads", {"kind": "copy", "threads": n, "fsync_each": True}, True),
        (f"mloop's loop (read+BLAKE3 auto+write) + sync, {n} thr", {"kind": "store-loop", "threads": n}, True),
        (
            f"mloop's loop, BLAKE3 1 thread + sync, {n} thr",
            {"kind": "store-loop", "threads": n, "hash_threads": "1"},
            True,
        ),
        (f"mloop's loop + sync, {cpus} thr", {"kind": "store-loop", "threads": cpus}, True),
        (f"copy_file_range + BLAKE3 mmap + sync, {n} thr", {"kind": "store-cfr", "threads": n}, True),
        (
            f"copy_file_range + BLAKE3 mmap + fdatasync each, {n} thr",
            {"kind": "store-cfr", "threads": n, "fsync_each": True},
            True,
        ),
        ("small files: copy + sync, 1 thread", {"kind": "copy", "threads": 1, "data": "small"}, True),
        (f"small files: copy + sync, {cpus} threads", {"kind": "copy", "threads": cpus, "data": "small"}, True),
        (f"small files: copy + sync, {n} threads", {"kind": "copy", "threads": n, "data": "small"}, True),
        ("SHA-256 in memory, 1 thread", {"kind": "mem-hash", "algo": "sha256", "mem_mb": mem_mb}, False),
        ("MD5 in memory, 1 thread (DVC)", {"kind": "mem-hash", "algo": "md5", "mem_mb": mem_mb}, False),
        ("BLAKE3 in memory, 1 thread", {"kind": "mem-hash", "algo": "blake3-1t", "mem_mb": mem_mb}, False),
        ("BLAKE3 in memory, AUTO threads", {"kind": "mem-hash", "algo": "blake3-auto", "mem_mb": mem_mb}, False),
    ]
    out: dict[str, Any] = {"threads": n, "modes": {}}
    for mode in ctx.modes:
        rows: dict[str, Any] = {}
        for label, spec, io_bound in specs:
            if mode != "warm" and not io_bound:
                continue
            times, before_sync = [], []
            nbytes = 0
            src = ctx.small if spec.get("data") == "small" else data
            for _rep in range(ctx.args.repeat):
                work = c.new_workdir("ds-limit")
                try:
                    full = {"task": "limit", "path": str(src), "dest": str(work / "copy"), **spec}
                    ctx.prepare(mode, src)
                    res = c.run_worker(SCRIPT, full, tool_env(), work)
                finally:
                    _cleanup(work)
                times.append(res["seconds"])
                nbytes = res["bytes"]
                if "seconds_before_sync" in res:
                    before_sync.append(res["seconds_before_sync"])
            med = c.median(times)
            row = {"median_seconds": med, "mbps": _mbps(nbytes, med), "bytes": nbytes, "runs": times}
            if before_sync:
                row["mbps_before_sync"] = _mbps(nbytes, c.median(before_sync))
            if spec.get("data") == "small" and med:
                row["ms_per_file"] = med * 1000 / ctx.args.small_files
            rows[label] = row
            c.log(f"[limits/{mode}] {label}: {row['mbps']:.0f} MB/s")
        out["modes"][mode] = rows
    return out


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
                        _cleanup(repo)
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
                        _cleanup(ws)
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
            _cleanup(ws)
        c.log(f"[kill9] kill after {after} s: {row['status']}")
        results.append(row)
    return {"runs": results, "pass": all(r["pass"] for r in results)}


# ============================================================================================ output


def _f(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


MARKDOWN: list[bool] = [False]  # set by --markdown


def _table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> None:
    if not MARKDOWN[0]:
        c.print_table(title, columns, rows, note=note)
        return
    print(f"\n**{title}**\n")
    print("| " + " | ".join(str(x) for x in columns) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|")
    for r in rows:
        print("| " + " | ".join(str(x).replace("|", "/") for x in r) + " |")
    if note:
        print(f"\n{note}")


def print_report(doc: dict[str, Any]) -> None:
    meta = doc["meta"]
    print(
        f"\nmloop {meta['versions'].get('mloop')} vs {meta['dvc']} | python {meta['versions']['python']} | "
        f"{meta['cpus']} CPUs | repeat {meta['repeat']} | mloop timed via {meta['mloop_via']}"
    )
    if meta.get("cold_note"):
        print(f"note: {meta['cold_note']}")
    res = doc["results"]
    if "add-2gb" in res:
        a = res["add-2gb"]
        gb = a["bytes"] / 1e9
        for mode, s in a["modes"].items():
            med = s["median_seconds"]
            rows = [
                ["dvc add data", c.fmt_s(med["dvc"]), _f(s["mbps"]["dvc"]), "1.0x"],
                ["dvc add data; sync", c.fmt_s(s["dvc_with_sync"]), _f(s["mbps"]["dvc+sync"]), "-"],
            ]
            if "mloop-cli" in med:
                rows.append(
                    [
                        "mloop data add data --name x",
                        c.fmt_s(med["mloop-cli"]),
                        _f(_mbps(a["bytes"], med["mloop-cli"])),
                        c.fmt_x(c.ratio(med["dvc"], med["mloop-cli"])),
                    ]
                )
            rows.append(
                [
                    "mloop SDK worker (process wall)",
                    c.fmt_s(s["mloop_sdk_process_wall"]),
                    _f(_mbps(a["bytes"], s["mloop_sdk_process_wall"])),
                    c.fmt_x(c.ratio(med["dvc"], s["mloop_sdk_process_wall"])),
                ]
            )
            rows.append(
                [
                    "mloop Dataset.add (SDK timer)",
                    c.fmt_s(s["mloop_sdk_internal"]),
                    _f(s["mbps"]["mloop (SDK internal)"]),
                    c.fmt_x(c.ratio(med["dvc"], s["mloop_sdk_internal"])),
                ]
            )
            if s.get("mloop_cli_internal") is not None:
                rows.append(
                    [
                        "mloop data add, its own timer (--json seconds)",
                        c.fmt_s(s["mloop_cli_internal"]),
                        _f(_mbps(a["bytes"], s["mloop_cli_internal"])),
                        c.fmt_x(c.ratio(med["dvc"], s["mloop_cli_internal"])),
                    ]
                )
            for ref in [side for side in med if side.startswith("ref:")]:
                if med[ref] is not None:
                    rows.append(
                        [
                            f"{ref}, {a.get('threads', '?')} threads",
                            c.fmt_s(med[ref]),
                            _f(_mbps(a["bytes"], med[ref])),
                            c.fmt_x(c.ratio(med["dvc"], med[ref])),
                        ]
                    )
            if med.get(MLOOP_FSYNC) is not None:
                rows.append(
                    [
                        "mloop data add data --name x --fsync (durable on return)",
                        c.fmt_s(med[MLOOP_FSYNC]),
                        _f(_mbps(a["bytes"], med[MLOOP_FSYNC])),
                        c.fmt_x(c.ratio(s["dvc_with_sync"], med[MLOOP_FSYNC])) + " vs dvc+sync",
                    ]
                )
            link = s.get("link")
            link_note = ""
            if link:
                rows.append(
                    [
                        "dvc add data (cache.type hardlink)",
                        c.fmt_s(link["dvc_hardlink"]),
                        _f(_mbps(a["bytes"], link["dvc_hardlink"])),
                        c.fmt_x(c.ratio(med["dvc"], link["dvc_hardlink"])),
                    ]
                )
                rows.append(
                    [
                        "mloop data add data --name x --link",
                        c.fmt_s(link["mloop_link"]),
                        _f(_mbps(a["bytes"], link["mloop_link"])),
                        c.fmt_x(link["ratio_dvc_copy_over_mloop_link"]),
                    ]
                )
                lr = link["ratio_dvc_hardlink_over_mloop_link"]
                link_note = f"; link modes: mloop --link vs dvc hardlink cache {c.fmt_x(lr)}"
            bar = s["ratio_dvc_over_mloop"]
            _table(
                f"add-2gb ({mode} cache): first add of {a['files']} files, {gb:.2f} GB (medians)",
                ["command", "median", "MB/s", "speed-up vs dvc (copy)"],
                rows,
                note=f"bar mloop >= 5x faster than dvc ({s['mloop_wall_source']}): {c.fmt_x(bar)} -> "
                f"{'MET' if bar and bar >= 5 else 'MISSED'}; vs dvc+sync: {c.fmt_x(s['ratio_dvc_sync_over_mloop'])}"
                + link_note,
            )
            bd = s["breakdown_median"]
            if bd:
                _table(
                    f"mloop Dataset.add breakdown ({mode} cache, median s; threads: = summed over the pool's threads)",
                    ["phase", "seconds"],
                    [[k, f"{v:.3f}"] for k, v in bd.items()],
                )
            for side, cpu in s["cpu"].items():
                print(f"  cpu {side}: user {_f(cpu['user'], '.2f')} s, sys {_f(cpu['sys'], '.2f')} s")
            prof = next((r.get("profile") for r in s["runs"].get("mloop-sdk", []) if r.get("profile")), None)
            if prof:
                print(prof)
    if "limits" in res:
        lim = res["limits"]
        for mode, rows in lim["modes"].items():
            table = [
                [
                    label,
                    c.fmt_s(r["median_seconds"]),
                    _f(r["mbps"]),
                    _f(r.get("mbps_before_sync")),
                    _f(r.get("ms_per_file"), ".2f"),
                ]
                for label, r in rows.items()
            ]
            if "add-2gb" in res and mode in res["add-2gb"]["modes"]:
                s = res["add-2gb"]["modes"][mode]
                table.append(
                    ["= mloop data add (wall)", c.fmt_s(s["mloop_wall"]), _f(s["mbps"]["mloop (wall)"]), "", ""]
                )
                table.append(
                    [
                        "= mloop Dataset.add (SDK timer)",
                        c.fmt_s(s["mloop_sdk_internal"]),
                        _f(s["mbps"]["mloop (SDK internal)"]),
                        "",
                        "",
                    ]
                )
                table.append(["= dvc add (wall)", c.fmt_s(s["median_seconds"]["dvc"]), _f(s["mbps"]["dvc"]), "", ""])
            _table(
                f"physical limits ({mode} cache; MB = 10^6 bytes)",
                ["operation", "median", "MB/s", "MB/s before sync", "ms/file"],
                table,
            )
    if "readd" in res:
        rows = []
        for label, case in res["readd"]["cases"].items():
            med = case["median"]
            ms = case["mloop_side"]
            if case["time_first"]:
                rows.append(
                    [
                        f"{label}: first add",
                        c.fmt_s(med["dvc"]["first"]),
                        c.fmt_s(med[ms]["first"]),
                        c.fmt_s(med["mloop-sdk"]["first_internal"]),
                        c.fmt_x(case["ratio_first"]),
                        "",
                    ]
                )
            rows.append(
                [
                    f"{label}: re-add",
                    c.fmt_s(med["dvc"]["readd"]),
                    c.fmt_s(med[ms]["readd"]),
                    c.fmt_s(med["mloop-sdk"]["readd_internal"]),
                    c.fmt_x(case["ratio_readd"]),
                    "MET" if case["bar_readd_under_1s"] else "MISSED",
                ]
            )
        _table(
            "readd (warm cache, medians)",
            ["case", "dvc", f"mloop ({ms})", "mloop SDK timer", "dvc/mloop", "bar < 1 s"],
            rows,
        )
        for label, case in res["readd"]["cases"].items():
            bd = case["readd_breakdown_median"]
            if bd:
                print(f"  re-add breakdown, {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in bd.items()))
    if "kill9" in res:
        rows = []
        for r in res["kill9"]["runs"]:
            ak = r.get("after_kill", {})
            na = r.get("next_add", {})
            rows.append(
                [
                    f"{r['kill_after']} s",
                    _f(r.get("killed_at"), ".2f"),
                    str(ak.get("versions", "-")),
                    str(ak.get("blobs", "-")),
                    str(ak.get("tmp_files", "-")),
                    f"v{na.get('version')} created={na.get('created')}" if na else "-",
                    str(r.get("verify", {}).get("ok", "-")),
                    r["status"] + (f" {r['error']}" if r.get("error") else ""),
                ]
            )
        _table(
            "kill9: SIGKILL during mloop data add",
            [
                "kill after",
                "killed at",
                "versions after kill",
                "blobs",
                "tmp files",
                "next add",
                "v1 verifies",
                "result",
            ],
            rows,
        )


# ============================================================================================ main


def main() -> None:
    if c.is_worker():
        c.worker_main(TASKS)
        return
    parser = argparse.ArgumentParser(description="mloop data add vs dvc add (medians and ratios)")
    parser.add_argument(
        "benches", nargs="*", default=[], metavar="BENCH", help=f"which to run (default all): {', '.join(BENCHES)}"
    )
    parser.add_argument("--repeat", type=int, default=3, help="fresh-subprocess repeats per side (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--from-json", metavar="PATH", help="only print the report of a saved --save document")
    parser.add_argument("--save", metavar="PATH", help="also write the JSON document to PATH")
    parser.add_argument(
        "--data-dir",
        default=str(Path(tempfile.gettempdir()) / "mloop-bench-datasets"),
        help="where the generated datasets live (reused across runs)",
    )
    parser.add_argument("--files", type=int, default=200, help="files in the big dataset (default 200)")
    parser.add_argument("--file-mib", type=int, default=10, help="MiB per big file (default 10)")
    parser.add_argument("--small-files", type=int, default=10_000, help="files in the small-file dataset")
    parser.add_argument("--small-bytes", type=int, default=1024, help="bytes per small file (default 1024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="N for the N-thread limits (default 2 x CPUs)")
    parser.add_argument("--mem-mib", type=int, default=512, help="buffer for in-memory hashing (MiB)")
    parser.add_argument(
        "--cache",
        choices=["warm", "cold", "both"],
        default="both",
        help="page-cache state for add-2gb and limits (cold needs root; default both)",
    )
    parser.add_argument(
        "--mloop-via",
        choices=["auto", "cli", "sdk"],
        default="auto",
        help="time `mloop data add` (cli) or an SDK worker process (sdk); auto = cli if present",
    )
    parser.add_argument("--kill-after", default="0.7,1.0", help="kill9: seconds after start, comma-separated")
    parser.add_argument("--profile", action="store_true", help="cProfile the first SDK add (main thread)")
    parser.add_argument(
        "--no-refs", action="store_true", help="add-2gb: skip the interleaved reference runs (plain loop, copy)"
    )
    parser.add_argument(
        "--no-link", action="store_true", help="add-2gb: skip the link modes (mloop --link vs DVC hardlink cache)"
    )
    parser.add_argument("--sides", help="add-2gb: subset of sides, separated by ';' (names as in the JSON)")
    parser.add_argument(
        "--snapshot-src",
        action="store_true",
        help="run mloop from a copy of src/mloop taken at start (for long runs while the tree is being edited)",
    )
    args = parser.parse_args()
    MARKDOWN[0] = args.markdown
    if args.from_json:
        print_report(json.loads(Path(args.from_json).read_text()))
        return
    benches = args.benches or list(BENCHES)
    unknown = [b for b in benches if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}")
    ctx = Ctx(args)
    doc: dict[str, Any] = {
        "meta": {
            "versions": c.versions(),
            "dvc": ctx.dvc_version if ctx.dvc_version.startswith("dvc") else f"dvc {ctx.dvc_version}",
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "cache_modes": ctx.modes,
            "cold_note": ctx.cold_reason,
            "mloop_via": "mloop CLI (`mloop data add`) + SDK worker"
            if ctx.use_cli
            else f"SDK worker process only ({ctx.cli_reason})",
            "data_dir": args.data_dir,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "loadavg_at_start": os.getloadavg(),
            "mloop_source_snapshot": ctx.snapshot,
        },
        "results": {},
    }
    runners = {"add-2gb": run_add, "limits": run_limits, "readd": run_readd, "kill9": run_kill9}
    for name in BENCHES:
        if name in benches:
            c.log(f"== {name}")
            try:
                doc["results"][name] = runners[name](ctx)
            except Exception as exc:  # keep the other benchmarks' results; report this one's failure
                import traceback

                doc.setdefault("errors", {})[name] = traceback.format_exc()
                c.log(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
            c.save_json(doc, args.save)  # partial results survive a later failure
    doc["meta"]["loadavg_at_end"] = os.getloadavg()
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
    else:
        print_report(doc)
        for name, tb in doc.get("errors", {}).items():
            print(f"\n{name} FAILED:\n{tb}")
    if doc.get("errors"):
        sys.exit(1)


if __name__ == "__main__":
    main()
