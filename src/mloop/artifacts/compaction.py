"""Compacting collected traffic: the parts of a closed hour merged into one Parquet file.

The collector publishes one part a second per process (a kill -9 loses at most that second), so an hour of a
busy endpoint is thousands of small files, and opening them is most of the cost of reading the hour back
(bench/RESULTS.md §22). Once an hour is closed (no part written to it for ``settle`` seconds), its parts are
merged into one, crash-safely and without readers ever seeing a row twice or missing one:

1. a hidden marker ``_compaction-<id>.json`` is published in the hour's folder, naming the parts and the file
   they go into;
2. the merged file is published whole under that name (the rows of every part, schemas unified);
3. the parts are deleted, then the marker.

The merged file's footer names its parts and their row counts in order (:func:`compacted_sources`), so a reader
that already summarised some of the parts (monitoring) reads only the rows of the others
(:func:`uncovered_rows`) and never counts a row twice.

Readers (:func:`visible_parts`) leave out the parts a marker names once its merged file exists, and the merged
file while it does not; a crash at any step leaves a folder they read correctly, and the next compaction
finishes the job (deleting parts a finished merge names). The supervisor of an endpoint compacts its closed
hours in the background; ``mloop monitors run`` does it before reading too.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from mloop.artifacts.collected import COLLECTED_DIR, FEEDBACK, REQUESTS, CollectedRoot, concat_unified
from mloop.entities.ids import new_id

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["compact_endpoint", "compact_hour", "compacted_sources", "uncovered_rows", "visible_parts"]

_log = logging.getLogger("mloop.artifacts")
MARKER_PREFIX = "_compaction-"
SOURCES_KEY = b"mloop.compacted"  # the merged file's parts in row order: [{"part", "rows", "parts"}, ...]


def _sources(schema: Any) -> list[dict[str, Any]] | None:
    raw = (schema.metadata or {}).get(SOURCES_KEY)
    return None if raw is None else list(json.loads(raw))


def compacted_sources(schema: Any) -> list[dict[str, Any]] | None:
    """The parts a merged file holds, in row order (each ``{"part", "rows", "parts"}``, ``parts`` being the
    sources of a part that was itself merged), from its Arrow schema's metadata (the footer); None for a file
    the collector wrote."""
    return _sources(schema)


def uncovered_rows(sources: list[dict[str, Any]], covered: set[str], offset: int = 0) -> list[tuple[int, int]]:
    """The row ranges ``(offset, length)`` of a merged file whose parts are not in ``covered`` (a part is
    covered when its name is, or when all of its own sources are)."""
    out: list[tuple[int, int]] = []
    for source in sources:
        rows = int(source["rows"])
        if source["part"] not in covered:
            if source.get("parts"):
                out.extend(uncovered_rows(source["parts"], covered, offset))
            else:
                out.append((offset, rows))
        offset += rows
    return out


def _names(fs: AbstractFileSystem, folder: str) -> list[str]:
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):  # a plain listing: fsspec's costs ~20 µs a name (3,600 parts an hour)
        try:
            return sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
    fs.invalidate_cache(folder)
    try:
        return sorted(str(n).rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(folder, detail=False))
    except FileNotFoundError:
        return []


def _markers(fs: AbstractFileSystem, folder: str, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        if name.startswith(MARKER_PREFIX) and name.endswith(".json"):
            try:
                with fs.open(f"{folder}/{name}", "rb") as f:
                    out.append({**json.loads(f.read()), "marker": name})
            except (FileNotFoundError, ValueError):  # removed meanwhile, or never whole: nothing to honour
                continue
    return out


def visible_parts(fs: AbstractFileSystem, folder: str) -> list[str]:
    """The parts of one hour folder a reader should read (full paths), honouring compaction markers."""
    names = _names(fs, folder)
    present = set(names)
    hidden: set[str] = set()
    for marker in _markers(fs, folder, names):
        if marker["into"] in present:
            hidden.update(marker["parts"])  # merged: read the merged file instead
        else:
            hidden.add(marker["into"])  # not merged (yet): read the parts
    return [f"{folder}/{n}" for n in names
            if n.endswith(".parquet") and not n.startswith((".", "_")) and n not in hidden]  # fmt: skip


def compact_hour(root: CollectedRoot, folder_key: str) -> int:
    """Merge the parts of the hour folder ``folder_key`` (store-relative); returns the parts merged."""
    import pyarrow.parquet as pq

    fs, base = root.filesystem()
    folder = f"{base}/{folder_key}"
    names = _names(fs, folder)
    present = set(names)
    for marker in _markers(fs, folder, names):  # finish what a crashed compaction left
        if marker["into"] in present:
            for part in marker["parts"]:
                if part in present:
                    fs.rm(f"{folder}/{part}")
        fs.rm(f"{folder}/{marker['marker']}")
    parts = [p.rsplit("/", 1)[-1] for p in visible_parts(fs, folder)]
    if len(parts) < 2:
        return 0
    into = f"part-{new_id()}.parquet"
    root.write(f"{folder_key}/{MARKER_PREFIX}{new_id()}.json", json.dumps({"parts": parts, "into": into}).encode())
    tables = [pq.read_table(f"{folder}/{p}", filesystem=fs) for p in parts]
    sources = [{"part": p, "rows": t.num_rows, "parts": _sources(t.schema)} for p, t in zip(parts, tables, strict=True)]
    merged = concat_unified([t.replace_schema_metadata(None) for t in tables])
    merged = merged.replace_schema_metadata({SOURCES_KEY: json.dumps(sources, separators=(",", ":"))})
    import io

    sink = io.BytesIO()
    dictionary = [c for c in ("endpoint", "model", "role") if c in merged.column_names]
    pq.write_table(merged, sink, compression="snappy", use_dictionary=dictionary)
    root.write(f"{folder_key}/{into}", sink.getvalue())
    for part in parts:
        fs.rm(f"{folder}/{part}")
    for name in _names(fs, folder):
        if name.startswith(MARKER_PREFIX):
            fs.rm(f"{folder}/{name}")
    return len(parts)


def compact_endpoint(root_uri: str, endpoint: str, *, settle: float = 120.0, now: float | None = None) -> int:
    """Compact every closed hour of ``endpoint``'s requests and feedback (an hour is closed ``settle`` seconds
    after it ended); returns the parts merged."""
    root = CollectedRoot(root_uri)
    fs, base = root.filesystem()
    current = (now if now is not None else time.time()) - settle
    merged = 0
    for kind in (REQUESTS, FEEDBACK):
        prefix = f"{COLLECTED_DIR}/{kind}/endpoint={endpoint}"
        for name in _names(fs, f"{base}/{prefix}"):
            if not name.startswith("hour="):
                continue
            from datetime import UTC, datetime

            start = datetime.strptime(name[len("hour=") :], "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp()
            if start + 3600 <= current:
                merged += compact_hour(root, f"{prefix}/{name}")
    return merged
