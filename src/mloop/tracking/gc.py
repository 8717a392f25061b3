"""Garbage collection: purge deleted runs, then remove blobs nothing references any more.

A blob younger than ``grace_s`` is kept even when unreferenced: it may belong to an upload whose metadata
is about to be written by another process. Re-used blobs are freshened by the artifact store on dedup hits,
so the grace period protects them too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mloop.artifacts import CHUNK_SIZE, ArtifactStore
from mloop.errors import IntegrityError
from mloop.tracking.client import Client

__all__ = ["GcReport", "collect_garbage"]

ARTIFACTS_COLLECTED = "artifacts.collected"  # the event of `mloop gc` freeing unreferenced blobs


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    purged_runs: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    bytes_freed: int = 0
    temp_bytes_freed: int = 0
    blobs_kept: int = 0
    corrupt: list[str] = field(default_factory=list)


def collect_garbage(
    client: Client, *, dry_run: bool = False, grace_s: float = 3600.0, purge_runs: bool = True, verify: bool = False
) -> GcReport:
    """Purge runs in the deleted state (unless ``purge_runs=False``) and free unreferenced blobs.

    ``verify=True`` also re-hashes every kept blob and removes the corrupt ones (listed in the report), so the
    artifact can be logged again from its source.
    """
    store, artifacts = client.store, client.artifacts
    if not purge_runs:
        purged: list[str] = []
    elif dry_run:
        purged = client.search_runs(deleted_only=True, max_results=None).ids
    else:
        purged = store.purge_deleted_runs(actor=client.actor)
    referenced = store.referenced_digests()
    if dry_run and purged:
        still: set[str] = set()
        for run_id in purged:
            still.update(e.digest for e in store.list_artifacts(run_id))
        live = client.search_runs(max_results=None)
        keep = {e.digest for r in live for e in store.list_artifacts(r.id)}
        referenced = (referenced - still) | keep
    cutoff = time.time() - grace_s
    removed = freed = kept = 0
    corrupt: list[str] = []
    for blob in artifacts.iter_blobs():
        if blob.digest in referenced:
            if verify and not _intact(artifacts, blob.digest):
                corrupt.append(blob.digest)
                freed += blob.size if dry_run else artifacts.delete(blob.digest)
                continue
            kept += 1
            continue
        if blob.modified > cutoff:
            kept += 1
            continue
        removed += 1
        freed += blob.size if dry_run else artifacts.delete(blob.digest)
    temp = 0 if dry_run else artifacts.cleanup_temp(grace_s)
    temp += _clean_materialised(client, referenced, dry_run)
    if not dry_run and (removed or purged or corrupt):
        store.append_event(
            ARTIFACTS_COLLECTED,
            "workspace:artifacts",
            actor=client.actor,
            payload={
                "purged_runs": len(purged),
                "blobs_removed": removed,
                "bytes_freed": freed,
                "corrupt_removed": corrupt,
            },
        )
    return GcReport(dry_run, purged, removed, freed, temp, kept, corrupt)


def _clean_materialised(client: Client, referenced: set[str], dry_run: bool) -> int:
    """Remove local read-only copies of dataset versions whose manifest nothing references any more."""
    import shutil

    folder = client.workspace.settings.local_dir / "materialised"
    if not folder.is_dir():
        return 0
    live = {d.split(":", 1)[-1] for d in referenced}
    freed = 0
    for entry in folder.iterdir():
        if entry.name in live:
            continue
        freed += sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
        if not dry_run:
            shutil.rmtree(entry, ignore_errors=True)
    return freed


def _intact(artifacts: ArtifactStore, digest: str) -> bool:
    try:
        with artifacts.open(digest) as fh:
            while fh.read(CHUNK_SIZE):
                pass
    except IntegrityError:
        return False
    return True
