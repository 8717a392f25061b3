"""Local copies of dataset versions: written verified, re-checked on every reuse, never left for holdouts.

A public version is materialised once into ``.mloop/materialised/<manifest digest>/`` (read-only files), with a
stamp beside it recording each file's size and modification time. Every later read compares the files with
the stamp (one ``stat`` a file) and re-hashes any that differ, any without a stamp, or all of them with
``verify=True``; a file whose bytes no longer match its digest raises :class:`~mloop.errors.IntegrityError`
naming the file and the fix. A private version is written only into a private temporary folder of the
active grant (:mod:`mloop.guard`), removed when the read or the grant ends, so no readable copy stays behind.
"""

from __future__ import annotations

import contextvars
import json
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.artifacts import hash_file, normalize_artifact_path, parse_digest
from mloop.entities import ManifestEntry
from mloop.errors import IntegrityError
from mloop.guard import Grant, remove_tree

if TYPE_CHECKING:
    from mloop.artifacts import ArtifactStore

__all__ = ["materialise_private", "materialise_shared", "shared_folder"]

_Stamp = dict[str, list[int]]


def shared_folder(local_dir: Path, manifest_digest: str) -> Path:
    return local_dir / "materialised" / manifest_digest.split(":", 1)[-1]


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".stamp.json")


def _fetch_all(artifacts: ArtifactStore, ref: str, entries: Sequence[ManifestEntry], folder: Path) -> None:
    def fetch(entry: ManifestEntry) -> None:
        dest = folder / normalize_artifact_path(entry.path)  # a tampered manifest cannot escape
        dest.parent.mkdir(parents=True, exist_ok=True)
        artifacts.get_file(entry.digest, dest, name=f"{ref}/{entry.path}")  # verified (or cloned)
        dest.chmod(0o444)

    artifacts.check_reads([e.digest for e in entries])  # one query for the holdout guard, not one per file
    with ThreadPoolExecutor(max_workers=min(32, 2 * (os.cpu_count() or 1))) as pool:  # threads see our grant
        for future in [pool.submit(contextvars.copy_context().run, fetch, e) for e in entries]:
            future.result()


def _read_stamp(target: Path) -> _Stamp:
    try:
        data = json.loads(_stamp_path(target).read_text())
        return {str(k): [int(x) for x in v] for k, v in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no (readable) stamp: every file is re-hashed


def _write_stamp(target: Path, stamp: _Stamp) -> None:
    path = _stamp_path(target)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}")
    temp.write_text(json.dumps({"files": stamp}, sort_keys=True))
    temp.replace(path)


def _stat(file: Path) -> list[int]:
    st = file.stat()
    return [st.st_size, st.st_mtime_ns]


def _verify(target: Path, ref: str, entries: Sequence[ManifestEntry], *, full: bool) -> None:
    stamp = _read_stamp(target)
    fix = (
        f"mloop will not serve it. Delete {target} (the next read writes a fresh, verified copy from the store); "
        "for a copy you may edit, use `mloop data get`."
    )
    fresh: _Stamp = {}
    suspects: list[tuple[ManifestEntry, Path]] = []
    for entry in entries:
        file = target / normalize_artifact_path(entry.path)
        try:
            fresh[entry.path] = seen = _stat(file)
        except OSError:
            raise IntegrityError(f"The local copy of {ref}/{entry.path} is missing ({file}); {fix}") from None
        if full or stamp.get(entry.path) != seen:
            suspects.append((entry, file))

    def intact(item: tuple[ManifestEntry, Path]) -> bool:
        entry, file = item
        return fresh[entry.path][0] == entry.size and hash_file(file, parse_digest(entry.digest)[0]) == entry.digest

    if len(suspects) > 4:  # hash in parallel: BLAKE3 and file reads release the GIL
        with ThreadPoolExecutor(max_workers=min(16, 2 * (os.cpu_count() or 1))) as pool:
            results = list(pool.map(intact, suspects))
    else:
        results = [intact(item) for item in suspects]
    for (entry, file), ok in zip(suspects, results, strict=True):
        if not ok:
            raise IntegrityError(
                f"The local copy {file} of {ref}/{entry.path} was changed after mloop wrote it: its bytes no longer "
                f"match {entry.digest}. {fix}"
            )
    if suspects or len(stamp) != len(fresh):
        _write_stamp(target, fresh)


def materialise_shared(
    artifacts: ArtifactStore, local_dir: Path, ref: str, manifest_digest: str, entries: Sequence[ManifestEntry],
    *, verify: bool = False,
) -> Path:  # fmt: skip
    """The verified, read-only local copy of a public version (written once, checked on every reuse)."""
    target = shared_folder(local_dir, manifest_digest)
    if target.is_dir():
        _verify(target, ref, entries, full=verify)
        return target
    staging = target.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        _fetch_all(artifacts, ref, entries, staging)
        stamp = {e.path: _stat(staging / normalize_artifact_path(e.path)) for e in entries}
        try:
            staging.rename(target)
        except OSError:  # another process finished first: use theirs, checked
            if not target.is_dir():
                raise
            _verify(target, ref, entries, full=verify)
            return target
        _write_stamp(target, stamp)  # a crash before this leaves no stamp: the next read re-hashes everything
    finally:
        if staging.exists():
            remove_tree(staging)
    return target


def materialise_private(
    artifacts: ArtifactStore, local_dir: Path, ref: str, manifest_digest: str, entries: Sequence[ManifestEntry],
    grant: Grant,
) -> Path:  # fmt: skip
    """A holdout's files in a private temporary folder of ``grant`` (removed when the grant ends)."""
    leftover = shared_folder(local_dir, manifest_digest)
    if leftover.exists():  # written by an older mloop: a readable holdout copy must not stay
        remove_tree(leftover)
        _stamp_path(leftover).unlink(missing_ok=True)
    folder = grant.temporary_folder(local_dir / "private")
    _fetch_all(artifacts, ref, entries, folder)
    return folder
