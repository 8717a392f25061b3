"""Artifact transfer: mloop's content-addressed store vs MLflow's artifact store, on one big local file.

    python bench/bench_artifacts.py [--size-mb 2048] [--repeat 3] [--json]
    bash bench/run.sh artifacts --size-mb 256        # in bench/.venv, where MLflow is installed

upload
    mloop: ``open_artifact_store(folder).put_file(file)`` (hash while writing, fsync, atomic publish).
    MLflow: ``mlflow.log_artifact(file)`` in an open run on a local file store (a plain copy).
download
    mloop: ``store.get_file(digest, dest)`` (streamed, digest verified, atomic replace).
    MLflow: ``mlflow.artifacts.download_artifacts(run_id=..., artifact_path=..., dst_path=...)``.

Each (side, operation, repeat) runs in a fresh subprocess; imports, opening the store and starting the run
are untimed. Peak RSS is the worker's ``ru_maxrss`` (whole process, imports included). ``os.sync()`` runs
before every timed worker so that one side's dirty pages are not flushed on the other side's clock.

Physical limits, measured the same way: sequential read of the file (it is in the page cache, like it is for
both sides), sequential write + fsync of the same amount (an upload cannot beat it on this disk), and
in-memory hashing throughput of BLAKE3 (one thread and all cores) and SHA-256.

MLflow is imported only inside its own workers. When it is not installed the mloop numbers are still
reported; ``bash bench/run.sh artifacts`` installs MLflow into bench/.venv.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPT = Path(__file__).resolve()
CHUNK = 8 * 1024 * 1024
MIB = 1024 * 1024
RSS_LIMIT_MIB = 200
MLOOP = "mloop"
MLFLOW = c.MLFLOW_FILE
SOURCE_NAME = "artifact.bin"


# ============================================================================================ workers


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _result(seconds: float, base_rss: float, **extra: Any) -> dict[str, Any]:
    return {"seconds": seconds, "peak_rss_mib": _rss_mib(), "base_rss_mib": base_rss, **extra}


def w_mloop_put(spec: dict[str, Any]) -> dict[str, Any]:
    from mloop.artifacts import open_artifact_store

    store = open_artifact_store(spec["store"])
    base = _rss_mib()
    start = c.now()
    blob = store.put_file(spec["source"])
    seconds = c.now() - start
    if blob.size != os.path.getsize(spec["source"]):
        raise AssertionError(f"stored {blob.size} bytes, the file has {os.path.getsize(spec['source'])}")
    return _result(seconds, base, digest=blob.digest)


def w_mloop_get(spec: dict[str, Any]) -> dict[str, Any]:
    from mloop.artifacts import open_artifact_store

    store = open_artifact_store(spec["store"])
    base = _rss_mib()
    start = c.now()
    dest = store.get_file(spec["digest"], spec["dest"])
    seconds = c.now() - start
    if dest.stat().st_size != spec["size"]:
        raise AssertionError(f"downloaded {dest.stat().st_size} bytes, expected {spec['size']}")
    return _result(seconds, base)


def w_mlflow_put(spec: dict[str, Any]) -> dict[str, Any]:
    c.mlflow_setup_logging()
    import mlflow

    mlflow.set_experiment("bench-artifacts")
    with mlflow.start_run() as run:
        base = _rss_mib()
        start = c.now()
        mlflow.log_artifact(spec["source"])
        seconds = c.now() - start
    return _result(seconds, base, run_id=run.info.run_id)


def w_mlflow_get(spec: dict[str, Any]) -> dict[str, Any]:
    c.mlflow_setup_logging()
    import mlflow.artifacts

    base = _rss_mib()
    start = c.now()
    local = mlflow.artifacts.download_artifacts(
        run_id=spec["run_id"], artifact_path=SOURCE_NAME, dst_path=spec["dest_dir"]
    )
    seconds = c.now() - start
    if os.path.getsize(local) != spec["size"]:
        raise AssertionError(f"downloaded {os.path.getsize(local)} bytes, expected {spec['size']}")
    return _result(seconds, base)


def w_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """Raw read, raw write + fsync, and hashing throughput (seconds for ``size`` bytes each)."""
    import hashlib

    import blake3

    size = int(spec["size"])
    buffer = bytearray(CHUNK)
    out: dict[str, Any] = {}
    start = c.now()
    with open(spec["source"], "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    out["read"] = c.now() - start

    block = os.urandom(CHUNK)
    start = c.now()
    fd = os.open(spec["scratch_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size // CHUNK):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    out["write_fsync"] = c.now() - start
    os.unlink(spec["scratch_file"])

    hashers = {
        "blake3_1_thread": lambda: blake3.blake3(max_threads=1),
        "blake3_all_cores": lambda: blake3.blake3(max_threads=blake3.blake3.AUTO),
        "sha256": hashlib.sha256,
    }
    for name, factory in hashers.items():
        hasher = factory()
        start = c.now()
        for _ in range(size // CHUNK):
            hasher.update(block)
        out[name] = c.now() - start
    return {"seconds": out["read"], "limits": out}


WORKERS = {
    "mloop_put": w_mloop_put,
    "mloop_get": w_mloop_get,
    "mlflow_put": w_mlflow_put,
    "mlflow_get": w_mlflow_get,
    "limits": w_limits,
}


# ============================================================================================ driver


def mlflow_python() -> tuple[str | None, str]:
    """The interpreter that has MLflow (this one, else bench/.venv's), or None and why not."""
    if importlib.util.find_spec("mlflow") is not None:
        return sys.executable, "this interpreter"
    venv_python = c.BENCH_DIR / ".venv" / "bin" / "python"
    if venv_python.exists():
        probe = subprocess.run([str(venv_python), "-c", "import mlflow"], capture_output=True, check=False)
        if probe.returncode == 0:
            return str(venv_python), str(venv_python)
    return None, (
        "MLflow is not installed in this interpreter nor in bench/.venv; run `bash bench/run.sh artifacts` "
        "(it installs MLflow into bench/.venv) to compare with MLflow. Reporting mloop only."
    )


def run(python: str, spec: dict[str, Any], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    os.sync()
    proc = subprocess.run(
        [python, str(SCRIPT), "--worker", c.json.dumps(spec)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    return c.parse_result(proc.returncode, proc.stdout, proc.stderr, spec)


def make_source(path: Path, size: int) -> None:
    block = bytearray(os.urandom(CHUNK))
    with open(path, "wb", buffering=0) as handle:
        for i in range(size // CHUNK):
            block[:8] = i.to_bytes(8, "little")  # every chunk differs
            handle.write(block)
        rest = size % CHUNK
        if rest:
            handle.write(block[:rest])


def one_side(side: str, python: str, source: Path, size: int, rep: int) -> dict[str, dict[str, Any]]:
    """Upload then download once on ``side``, in a fresh folder that is removed afterwards."""
    work = c.new_workdir(f"artifacts-{side}")
    try:
        if side == MLOOP:
            env = c.quiet_env()
            put = run(
                python,
                {"task": "mloop_put", "side": side, "source": str(source), "store": str(work / "store")},
                env,
                work,
            )
            get_spec = {
                "task": "mloop_get",
                "side": side,
                "store": str(work / "store"),
                "digest": put["digest"],
            }
            get = run(python, {**get_spec, "dest": str(work / "out" / SOURCE_NAME), "size": size}, env, work)
        else:
            env = c.side_env(MLFLOW, work)
            put = run(python, {"task": "mlflow_put", "side": side, "source": str(source)}, env, work)
            get_spec = {"task": "mlflow_get", "side": side, "run_id": put["run_id"], "size": size}
            get = run(python, {**get_spec, "dest_dir": str(work / "out")}, env, work)
        for op, res in (("upload", put), ("download", get)):
            c.log(
                f"  rep {rep + 1} {side:<12} {op:<9} {c.fmt_s(res['seconds']):>9}  "
                f"peak RSS {res['peak_rss_mib']:.0f} MiB"
            )
        return {"upload": put, "download": get}
    finally:
        c.remove_workdir(work)


def summarise(samples: dict[str, dict[str, list[dict[str, Any]]]], size: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ("upload", "download"):
        row: dict[str, Any] = {}
        for side, ops in samples.items():
            runs = ops[op]
            med = c.median(r["seconds"] for r in runs)
            row[side] = {
                "median_s": med,
                "mib_per_s": None if not med else size / MIB / med,
                "peak_rss_mib": c.median(r["peak_rss_mib"] for r in runs),
                "base_rss_mib": c.median(r["base_rss_mib"] for r in runs),
                "samples_s": [r["seconds"] for r in runs],
            }
        if MLOOP in row and MLFLOW in row:
            row["ratio_mloop_over_mlflow"] = c.ratio(row[MLOOP]["median_s"], row[MLFLOW]["median_s"])
        out[op] = row
    return out


def show(doc: dict[str, Any]) -> None:
    size_mib = doc["size_mib"]
    limit_rows = []
    for name, label in (
        ("read", "sequential read of the file (page cache)"),
        ("write_fsync", "sequential write + fsync"),
        ("blake3_1_thread", "BLAKE3, 1 thread (in memory)"),
        ("blake3_all_cores", "BLAKE3, all cores (in memory)"),
        ("sha256", "SHA-256 (in memory)"),
    ):
        seconds = doc["limits"].get(name)
        limit_rows.append([label, c.fmt_s(seconds), f"{size_mib / seconds:,.0f}" if seconds else "-"])
    c.print_table(
        f"physical limits for {size_mib:,} MiB (median of {doc['repeat']})",
        ["what", "time", "MiB/s"],
        limit_rows,
    )

    rows = []
    for op in ("upload", "download"):
        row = doc["results"][op]
        for side in (MLOOP, MLFLOW):
            if side not in row:
                continue
            r = row[side]
            ratio = row.get("ratio_mloop_over_mlflow") if side == MLOOP else None
            rows.append(
                [
                    op,
                    side,
                    c.fmt_s(r["median_s"]),
                    f"{r['mib_per_s']:,.0f}" if r["mib_per_s"] else "-",
                    f"{r['peak_rss_mib']:.0f} (base {r['base_rss_mib']:.0f})",
                    "-" if ratio is None else f"{ratio:.2f}x",
                ]
            )
    verdict = "OK" if doc["mloop_rss_ok"] else "OVER"
    note = (
        "mloop/MLflow = median time ratio (below 1 means mloop is faster). mloop hashes every byte, fsyncs "
        "uploads and verifies downloads; MLflow copies without hashing.\n"
        f"mloop peak RSS < {RSS_LIMIT_MIB} MiB: {verdict}. {doc['mlflow_note']}"
    )
    c.print_table(
        f"artifact transfer of a {size_mib:,} MiB file (median of {doc['repeat']} runs)",
        ["operation", "side", "median", "MiB/s", "peak RSS MiB", "mloop/MLflow"],
        rows,
        note,
    )


def main() -> None:
    parser = c.base_parser(__doc__.split("\n\n")[0])
    parser.set_defaults(repeat=3)
    parser.add_argument("--size-mb", type=int, default=2048, help="size of the file in MiB (default 2048)")
    args = parser.parse_args()
    size = args.size_mb * MIB
    mlflow_py, mlflow_note = mlflow_python()
    sides = [MLOOP] + ([MLFLOW] if mlflow_py else [])
    if not mlflow_py:
        c.log(mlflow_note)
    pythons = {MLOOP: sys.executable, MLFLOW: mlflow_py or ""}
    scratch = c.new_workdir("artifacts")
    try:
        source = scratch / SOURCE_NAME
        c.log(f"writing a {args.size_mb} MiB source file in {scratch} ...")
        make_source(source, size)
        limits: list[dict[str, Any]] = []
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"upload": [], "download": []} for s in sides}
        for rep in range(args.repeat):
            spec = {"task": "limits", "side": "limits", "source": str(source), "size": size}
            limits.append(
                run(
                    sys.executable,
                    {**spec, "scratch_file": str(scratch / "write.bin")},
                    c.quiet_env(),
                    scratch,
                )["limits"]
            )
            for side in c.rotated(sides, rep):
                result = one_side(side, pythons[side], source, size, rep)
                for op, res in result.items():
                    samples[side][op].append(res)
    finally:
        c.remove_workdir(scratch)
    results = summarise(samples, size)
    doc = {
        "benchmark": "artifacts",
        "size_mib": args.size_mb,
        "repeat": args.repeat,
        "versions": c.versions(),
        "cpus": os.cpu_count(),
        "limits": {k: c.median(lim[k] for lim in limits) for k in limits[0]},
        "results": results,
        "mloop_rss_ok": all(results[op][MLOOP]["peak_rss_mib"] < RSS_LIMIT_MIB for op in results),
        "mlflow_note": "MLflow from " + mlflow_note if mlflow_py else mlflow_note,
    }
    if args.json:
        c.emit_json(doc)
    else:
        show(doc)


if __name__ == "__main__":
    if c.is_worker():
        c.worker_main(WORKERS)
    else:
        main()
