"""The drift benchmark's tables: generated once from seeds, stored as raw float64 chunks, read chunk by chunk.

Numpy only: the Evidently worker (another venv, without mloop) imports this file too.

Each table (``ref``, ``cur``) is ``rows`` x 20 float64 features in chunks of up to 1,000,000 rows, one file per
chunk, column-major (``features x rows``: each column is contiguous, as in Parquet). Feature ``j`` follows
distribution ``j % 4``: normal(0, 1), lognormal(0, 0.5), uniform(0, 10), gamma(2, 1). The current table shifts
four features: f00 + 0.5 (0.5 sd), f05 x 1.5 (lognormal scale: ~0.9 sd), f10 + 0.05 sd (below the 0.1
threshold: a shift that should NOT be flagged) and f15 + 0.3 sd. Chunk ``i`` of a table is drawn from
``default_rng([SEED, table, i])``, so the first million rows of the 10M tables are the 1M tables.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SEED = 20261203
FEATURES = 20
CHUNK_ROWS = 1_000_000
DATA_VERSION = 1
NAMES = tuple(f"f{j:02d}" for j in range(FEATURES))
STD = (1.0, float(np.sqrt((np.e**0.25 - 1) * np.e**0.25)), 10 / np.sqrt(12), float(np.sqrt(2.0)))
SHIFTS = {"f00": ("add", 0.5), "f05": ("scale", 1.5), "f10": ("add", 0.05 * STD[2]), "f15": ("add", 0.3 * STD[3])}
EXPECTED_DRIFTED = ("f00", "f05", "f15")


def data_dir(rows: int) -> Path:
    base = Path(os.environ.get("MLOOP_BENCH_TMP", tempfile.gettempdir()))
    return base / f"mloop-bench-drift-v{DATA_VERSION}-{rows}x{FEATURES}"


def make_chunk(table: str, index: int, rows: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, 0 if table == "ref" else 1, index])
    out = np.empty((FEATURES, rows), dtype=np.float64)
    for j, name in enumerate(NAMES):
        kind = j % 4
        if kind == 0:
            col = rng.standard_normal(rows)
        elif kind == 1:
            col = rng.lognormal(0.0, 0.5, rows)
        elif kind == 2:
            col = rng.uniform(0.0, 10.0, rows)
        else:
            col = rng.gamma(2.0, 1.0, rows)
        if table == "cur" and name in SHIFTS:
            op, amount = SHIFTS[name]
            col = col + amount if op == "add" else col * amount
        out[j] = col
    return out


def ensure(rows: int) -> Path:
    """Write the tables for ``rows`` unless they are there already; the directory."""
    folder = data_dir(rows)
    marker = folder / "done.json"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for table in ("ref", "cur"):
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            make_chunk(table, index, min(CHUNK_ROWS, rows - start)).tofile(folder / f"{table}-{index:03d}.bin")
    marker.write_text(json.dumps({"rows": rows, "features": FEATURES, "seed": SEED}))
    return folder


def chunks(folder: Path, table: str) -> Iterator[dict[str, np.ndarray]]:
    """The table's chunks as {name: contiguous column}, read from disk one chunk at a time."""
    for path in sorted(folder.glob(f"{table}-*.bin")):
        block = np.fromfile(path, dtype=np.float64).reshape(FEATURES, -1)
        yield {name: block[j] for j, name in enumerate(NAMES)}


def whole(folder: Path, table: str) -> dict[str, np.ndarray]:
    """The whole table in memory as {name: column}."""
    parts = list(chunks(folder, table))
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in NAMES}


def peak_rss_mb() -> float:
    """This process's high-water resident set (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
