"""Snapshotting a file or folder into content-addressed blobs and a manifest.

Each file is read once: the artifact store's ingest hashes while it writes the blob (or clones or links it;
see :mod:`mloop.artifacts.ingest`). Files the stat cache knows (same device, inode, size and mtime) are not read
at all. Files are processed by a thread pool (hashing and
file I/O release the GIL), so all cores are used; a kill -9 at any point leaves only complete, unreferenced
blobs (collected by ``mloop gc``) and no version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mloop.artifacts import ArtifactStore, normalize_artifact_path
from mloop.config import check_local_path
from mloop.datasets.statcache import StatCache, StatKey, stat_key
from mloop.entities import ManifestEntry
from mloop.errors import InvalidInput, NotFound

__all__ = [
    "SKIPPED_DIRS",
    "ScannedFile",
    "SnapshotStats",
    "cached_manifest",
    "manifest_bytes",
    "scan",
    "snapshot_files",
]

SKIPPED_DIRS = frozenset({".mloop", ".git", ".dvc", "__pycache__"})
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ScannedFile:
    rel: str
    path: str
    key: StatKey

    @property
    def size(self) -> int:
        return self.key[2]


@dataclass
class SnapshotStats:
    files: int = 0
    bytes: int = 0
    hashed_files: int = 0
    hashed_bytes: int = 0
    stored_as: str = "unchanged"  # how new files went into the store: copied, cloned, linked, uploaded


def _walk(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Regular files under ``root``, and symlinks to files inside it (read as those files).

    Linked folders are not followed; a link to a file outside ``root`` (or to nothing) is refused, so a
    version never holds bytes from outside the folder that was added.
    """
    real_root = root.resolve()
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                rel = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        stack.append((rel + "/", Path(entry.path)))
                elif entry.is_symlink():
                    if not entry.is_dir():  # linked folders are not followed
                        _check_link(Path(entry.path), root, real_root)
                        yield rel, entry
                elif entry.is_file():
                    yield rel, entry


def _check_link(link: Path, root: Path, real_root: Path) -> None:
    target = Path(os.path.realpath(link))
    if not target.is_file():
        raise InvalidInput(
            f"Cannot add {str(root)!r}: the symbolic link {str(link)!r} points to {os.readlink(link)!r}, which is "
            "not a file. Remove the link or make it point to a file inside the folder."
        )
    if not target.is_relative_to(real_root):
        raise InvalidInput(
            f"Cannot add {str(root)!r}: the symbolic link {str(link)!r} points outside the folder, to "
            f"{str(target)!r}. A version holds only what is inside the folder: copy the file in instead of "
            f"linking it (cp --remove-destination {str(target)!r} {str(link)!r}), or remove the link."
        )


def scan(path: str | os.PathLike[str]) -> tuple[Path, list[ScannedFile]]:
    """The files to snapshot (sorted by relative path) and the root they are relative to."""
    check_local_path(path, "path to add")
    src = Path(path).expanduser()
    if not src.exists():
        raise NotFound(f"Cannot add {str(path)!r}: no such file or folder. Check the path.")
    if src.is_file():
        st = src.stat()
        return src.parent, [ScannedFile(normalize_artifact_path(src.name), str(src), stat_key(st))]
    if not src.is_dir():
        raise InvalidInput(f"Cannot add {str(path)!r}: it is neither a regular file nor a folder.")
    files = [ScannedFile(normalize_artifact_path(rel), entry.path, stat_key(entry.stat())) for rel, entry in _walk(src)]
    if not files:
        raise InvalidInput(f"Folder {str(path)!r} holds no files; there is nothing to version.")
    files.sort(key=lambda f: f.rel)
    return src, files


def snapshot_files(
    files: list[ScannedFile],
    artifacts: ArtifactStore,
    cache: StatCache,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    link: bool = False,
    durable: bool = False,
) -> tuple[list[ManifestEntry], SnapshotStats]:
    """Store every file (skipping the ones the stat cache and the store already have) and return the manifest."""
    stats = SnapshotStats(files=len(files), bytes=sum(f.size for f in files))
    known = cache.lookup([f.key for f in files])
    digests: dict[str, str] = {}
    todo: list[ScannedFile] = []
    for f in files:
        digest = known.get(f.key)
        if digest is not None and _stored(artifacts, digest, f.size):
            digests[f.rel] = digest
            if progress is not None:
                progress(f.size)
        else:
            todo.append(f)

    ingest = artifacts.ingest(link=link, durable=durable, parallel=len(todo) > 1)

    def put(f: ScannedFile) -> tuple[ScannedFile, str, int, bool]:
        digest, size = ingest.add(f.path, progress)
        try:
            unchanged = stat_key(os.stat(f.path)) == f.key  # it did not change while we read it
        except OSError:
            unchanged = False
        return f, digest, size, unchanged

    fresh: list[tuple[StatKey, str]] = []
    sizes: dict[str, int] = {f.rel: f.size for f in files}
    if todo:
        with ThreadPoolExecutor(max_workers=workers or min(32, 2 * (os.cpu_count() or 1))) as pool:
            for f, digest, size, unchanged in pool.map(put, todo):
                digests[f.rel] = digest
                sizes[f.rel] = size
                stats.hashed_files += 1
                stats.hashed_bytes += size
                if unchanged:
                    fresh.append((f.key, digest))
        stats.stored_as = ingest.method
        cache.store(fresh)
    stats.bytes = sum(sizes.values())
    return [ManifestEntry(f.rel, sizes[f.rel], digests[f.rel]) for f in files], stats


def _stored(artifacts: ArtifactStore, digest: str, size: int) -> bool:
    """The store holds this blob at the right size (a blob torn by a power cut is stored again)."""
    try:
        return artifacts.size(digest) == size
    except NotFound:
        return False


def cached_manifest(files: list[ScannedFile], cache: StatCache) -> list[ManifestEntry] | None:
    """The manifest straight from the stat cache when it knows every file (nothing is read); else ``None``."""
    known = cache.lookup([f.key for f in files])
    if len(known) != len(files):
        return None
    return [ManifestEntry(f.rel, f.size, known[f.key]) for f in files]


def manifest_bytes(entries: list[ManifestEntry]) -> bytes:
    """The canonical manifest document: its digest identifies the version's content."""
    doc = {"format": 1, "files": [[e.path, e.size, e.digest] for e in entries]}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
