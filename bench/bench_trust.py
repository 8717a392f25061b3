"""What trust costs (issue 8): verified reuse of local dataset copies, the holdout read guard, the gate check.

    bash bench/run.sh trust                  # defaults: 5,000 x 4 KiB files + one 256 MiB file, 5 repeats
    bash bench/run.sh trust --small 2000 --big-mb 64 --repeat 3

1. **Reusing a local copy, verified.** mloop checks its materialised copy of a version on every read: one
   ``stat`` a file against the stamp written at materialisation, re-hashing what changed; ``verify=True``
   re-hashes everything. The peer is DVC's ``dvc status`` on the same folder (its check of a workspace against
   its cache, also by size/mtime from its state database). Physical limits: ``os.stat`` of every file (the
   cheap check cannot be faster), and BLAKE3 over every byte from the page cache (a full verify cannot be).
2. **The holdout read guard**: every blob read asks the metadata store whether the blob belongs only to
   private versions (one query per blob, or per chunk of blobs when a whole version or model is read; public
   answers are remembered for 30 s). Reported per 1 KiB blob beside the cost of the read itself.
3. **The contamination check**: the built-in ``uncontaminated()`` gate check on a model whose run read three
   dataset versions, in milliseconds per promotion check.

Repeats are interleaved (mloop, DVC, mloop, DVC, ...); medians and ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DVC = BENCH_DIR / ".venv-dvc" / "bin" / "dvc"


def _make_folder(root: Path, small: int, big_mb: int) -> Path:
    folder = root / "data"
    (folder / "small").mkdir(parents=True)
    rng = os.urandom
    for i in range(small):
        (folder / "small" / f"f{i:05d}.bin").write_bytes(rng(4096))
    with (folder / "big.bin").open("wb") as fh:
        block = rng(1 << 20)
        for i in range(big_mb):
            fh.write(block[:-8] + i.to_bytes(8, "little"))
    return folder


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _limits(folder: Path) -> dict[str, float]:
    import blake3

    files = [p for p in folder.rglob("*") if p.is_file()]
    stat_s = _timed(lambda: [p.stat() for p in files])

    def hash_all() -> None:
        for p in files:
            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            h.digest()

    hash_all()  # warm the page cache
    return {"stat_all_s": stat_s, "blake3_all_s": _timed(hash_all)}


def _dvc_setup(root: Path, folder: Path) -> Path | None:
    if not DVC.exists():
        return None
    repo = root / "dvc-repo"
    repo.mkdir()
    shutil.copytree(folder, repo / "data")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for args in (["init", "--no-scm", "-q"], ["add", "data", "-q"]):
        subprocess.run([str(DVC), *args], cwd=repo, check=True, env=env, capture_output=True)
    return repo


def _dvc_status(repo: Path) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    started = time.perf_counter()
    proc = subprocess.run([str(DVC), "status", "-q"], cwd=repo, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr.decode())
    return elapsed


def _dvc_status_in_process(repo: Path) -> float:
    """``dvc status`` through DVC's Python API in its own interpreter, start-up excluded (fair to DVC)."""
    code = (
        f"import time, os; os.chdir({str(repo)!r}); from dvc.repo import Repo; r = Repo('.'); t = time.perf_counter(); "
        "r.status(); print(time.perf_counter() - t)"
    )
    py = DVC.parent / "python"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_reuse(root: Path, small: int, big_mb: int, repeat: int) -> dict[str, Any]:
    import mloop
    from mloop.tracking.client import Client

    folder = _make_folder(root, small, big_mb)
    client = Client(workspace=mloop.init_workspace(root / "ws"))
    ds = mloop.Dataset.add(folder, "data", client=client).dataset
    ds.path()  # materialise once
    repo = _dvc_setup(root, folder)
    rows: dict[str, list[float]] = {"mloop_reuse_s": [], "mloop_verify_s": [], "dvc_status_s": [], "dvc_api_s": []}
    for _ in range(repeat):
        rows["mloop_reuse_s"].append(_timed(ds.path))
        if repo is not None:
            rows["dvc_status_s"].append(_dvc_status(repo))
            rows["dvc_api_s"].append(_dvc_status_in_process(repo))
        rows["mloop_verify_s"].append(_timed(lambda: ds.path(verify=True)))
    client.close()
    out: dict[str, Any] = {k: statistics.median(v) for k, v in rows.items() if v}
    out.update(_limits(folder))
    out["files"] = small + 1
    out["bytes"] = small * 4096 + big_mb * (1 << 20)
    return out


def bench_guard(root: Path, blobs: int, repeat: int) -> dict[str, Any]:
    import mloop
    from mloop.guard import BlobReadGuard
    from mloop.tracking.client import Client

    client = Client(workspace=mloop.init_workspace(root / "guard-ws"))
    digests = [client.artifacts.put_bytes(os.urandom(1024)).digest for _ in range(blobs)]
    single, batch, cached, read = [], [], [], []
    for _ in range(repeat):
        guard = BlobReadGuard(client.store, client.actor)  # a fresh cache: every digest asks the store
        single.append(_timed(lambda g=guard: [g(d, None) for d in digests]) / blobs)
        guard = BlobReadGuard(client.store, client.actor)
        batch.append(_timed(lambda g=guard: g.check_many(digests)) / blobs)
        cached.append(_timed(lambda g=guard: [g(d, None) for d in digests]) / blobs)
        client.artifacts.read_guard = None
        read.append(_timed(lambda: [client.artifacts.get_bytes(d) for d in digests]) / blobs)
    client.close()
    med = statistics.median
    return {"guard_single_us": med(single) * 1e6, "guard_batch_us": med(batch) * 1e6,
            "guard_cached_us": med(cached) * 1e6, "get_bytes_unguarded_us": med(read) * 1e6}  # fmt: skip


def bench_gate(root: Path, repeat: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.registry.contamination import contamination
    from mloop.tracking.client import Client

    client = Client(workspace=mloop.init_workspace(root / "gate-ws"))
    mloop.use_client(client)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 3)), columns=["a", "b", "c"]).assign(label=rng.integers(0, 2, 2000))
    frame.to_parquet(root / "t.parquet")
    mloop.Dataset.add(root / "t.parquet", "t", client=client)
    split = mloop.split_dataset("data:t/1", holdout=0.2, seed=0, client=client)
    with mloop.start_run("train") as run:
        train = split.train.to_pandas()
        mloop.get_dataset("data:t-train/1").path()
        mloop.Dataset.add(root / "t.parquet", "other", client=client).dataset.to_pandas()
        version = run.log_model(LogisticRegression().fit(train[["a", "b", "c"]], train["label"]), "m")
    assert version is not None
    times = [_timed(lambda: contamination(client, version, split.holdout.ref)) for _ in range(repeat * 4)]
    client.close()
    return {"contamination_check_ms": statistics.median(times) * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=5000, help="number of 4 KiB files")
    parser.add_argument("--big-mb", type=int, default=256, help="size of the one large file (MiB)")
    parser.add_argument("--blobs", type=int, default=2000, help="blobs read for the guard overhead")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mloop-bench-trust-") as tmp:
        root = Path(tmp)
        result = {
            "reuse": bench_reuse(root, args.small, args.big_mb, args.repeat),
            "guard": bench_guard(root, args.blobs, args.repeat),
            "gate": bench_gate(root, args.repeat),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    r, g = result["reuse"], result["guard"]
    print(f"Reusing a local copy of {r['files']} files, {r['bytes'] / 2**20:.0f} MiB (median of {args.repeat}):")
    print(
        f"  mloop path() (stat check)       {r['mloop_reuse_s'] * 1e3:8.1f} ms   limit: stat every file "
        f"{r['stat_all_s'] * 1e3:.1f} ms"
    )
    if "dvc_status_s" in r:
        print(
            f"  dvc status (CLI)                {r['dvc_status_s'] * 1e3:8.1f} ms   ratio "
            f"{r['dvc_status_s'] / r['mloop_reuse_s']:.1f}x"
        )
        print(
            f"  dvc status (API, no start-up)   {r['dvc_api_s'] * 1e3:8.1f} ms   ratio "
            f"{r['dvc_api_s'] / r['mloop_reuse_s']:.1f}x"
        )
    print(
        f"  mloop path(verify=True)         {r['mloop_verify_s'] * 1e3:8.1f} ms   limit: BLAKE3 of every byte "
        f"{r['blake3_all_s'] * 1e3:.1f} ms ({r['blake3_all_s'] / r['mloop_verify_s']:.0%} of the limit)"
    )
    print(
        f"Holdout read guard, per 1 KiB blob: {g['guard_single_us']:.0f} us asked one by one, "
        f"{g['guard_batch_us']:.1f} us asked in a batch (dataset and model reads), {g['guard_cached_us']:.2f} us "
        f"when known public; the unguarded read itself takes {g['get_bytes_unguarded_us']:.0f} us"
    )
    print(f"Contamination check per promotion: {result['gate']['contamination_check_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
