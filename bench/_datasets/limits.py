"""Physical limits: plain read / hash / copy / store loops (the ``limit`` worker task) and their driver."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _common as c

from _datasets.ctx import Ctx, cleanup, mbps
from _datasets.data import CHUNK, MIB, SCRIPT, files_of
from _datasets.tools import tool_env

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
    files = files_of(Path(spec["path"])) if spec.get("path") else []
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
                    cleanup(work)
                times.append(res["seconds"])
                nbytes = res["bytes"]
                if "seconds_before_sync" in res:
                    before_sync.append(res["seconds_before_sync"])
            med = c.median(times)
            row = {"median_seconds": med, "mbps": mbps(nbytes, med), "bytes": nbytes, "runs": times}
            if before_sync:
                row["mbps_before_sync"] = mbps(nbytes, c.median(before_sync))
            if spec.get("data") == "small" and med:
                row["ms_per_file"] = med * 1000 / ctx.args.small_files
            rows[label] = row
            c.log(f"[limits/{mode}] {label}: {row['mbps']:.0f} MB/s")
        out["modes"][mode] = rows
    return out
