"""Worker tasks run in fresh subprocesses: init, add (with a per-phase breakdown), inspect and verify."""

from __future__ import annotations

import resource
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _datasets.data import CHUNK, files_of

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
    source = {f.relative_to(src).as_posix(): f for f in files_of(src)}
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
