"""``mloop.Dataset``: add a folder or file as a new version, get a version by reference, read it.

>>> ds = mloop.Dataset.add("data/sensors", name="sensors", message="October dump")   # doctest: +SKIP
>>> ds = mloop.get_dataset("data:sensors@latest")                                   # doctest: +SKIP
>>> frame = ds.to_pandas()                                                          # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.artifacts import hash_bytes
from mloop.context import active_run_ref, current_context
from mloop.datasets.access import check_read
from mloop.datasets.formats import candidate_format
from mloop.datasets.materialise import materialise_private, materialise_shared
from mloop.datasets.snapshot import SnapshotStats, cached_manifest, manifest_bytes, scan, snapshot_files
from mloop.datasets.statcache import StatCache
from mloop.entities import DatasetVersion, ManifestEntry
from mloop.errors import InvalidInput, NotFound
from mloop.guard import EVALUATION, Grant, remove_tree
from mloop.refs import parse_ref

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mloop.context import Context
    from mloop.entities.profile import TableProfile

__all__ = ["AddResult", "Dataset", "get_dataset"]


@dataclass(frozen=True)
class AddResult:
    dataset: Dataset
    created: bool
    stats: SnapshotStats
    seconds: float


class Dataset:
    """One immutable dataset version and the ways to read it."""

    def __init__(self, client: Context, info: DatasetVersion) -> None:
        self.client = client
        self.info = info
        self._files: list[ManifestEntry] | None = None

    def __repr__(self) -> str:
        return f"<Dataset {self.ref} {self.info.file_count} files, {self.info.total_size} bytes>"

    @property
    def ref(self) -> str:
        return self.info.ref

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> int:
        return self.info.version

    # -- creating ------------------------------------------------------------------------------------------
    @classmethod
    def add(
        cls,
        path: str | os.PathLike[str],
        name: str,
        *,
        message: str = "",
        client: Context | None = None,
        progress: Callable[[int], None] | None = None,
        on_start: Callable[[int], None] | None = None,
        link: bool = False,
        fsync: bool | None = None,
        private: bool = False,
        source: str | None = None,
        role: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> AddResult:
        """Snapshot ``path`` as the next version of ``name`` (or find the identical existing version).

        ``on_start`` receives the total size in bytes once the files are known; ``progress`` then receives
        byte increments as files are stored (or found unchanged). ``link=True`` hard-links files into a local
        artifact store instead of copying them (one read, no write) and makes the sources read-only; see
        :meth:`~mloop.artifacts.ArtifactStore.ingest`. ``fsync=True`` (default: ``MLOOP_FSYNC``) flushes every new
        blob to disk before the version is recorded, so the version survives a power cut, at the disk's speed.
        """
        c = client or current_context()
        parse_ref(f"data:{name}")
        started = time.perf_counter()
        root, files = scan(path)
        if on_start is not None:
            on_start(sum(f.size for f in files))
        try:
            latest: DatasetVersion | None = c.store.get_dataset_version(name)
        except NotFound:
            latest = None
        with StatCache(c.workspace.settings.local_dir / "statcache.db", algorithm=c.artifacts.algorithm) as cache:
            if latest is not None:  # the common re-add: every file unchanged and identical to the newest version
                cached = cached_manifest(files, cache)
                if cached is not None and hash_bytes(manifest_bytes(cached), c.artifacts.algorithm) == (
                    latest.manifest_digest
                ):
                    stats = SnapshotStats(files=len(cached), bytes=sum(e.size for e in cached))
                    return AddResult(cls(c, latest), False, stats, time.perf_counter() - started)
            durable = c.workspace.settings.fsync if fsync is None else fsync
            entries, stats = snapshot_files(files, c.artifacts, cache, progress=progress, link=link, durable=durable)
        manifest = c.artifacts.put_bytes(manifest_bytes(entries))
        if latest is not None and latest.manifest_digest == manifest.digest:
            return AddResult(cls(c, latest), False, stats, time.perf_counter() - started)
        kind, rows, profile_json, table_format = "files", None, None, None
        if candidate_format(root, [e.path for e in entries]) is not None:  # pyarrow only for tables
            from mloop.datasets.tables import is_table_dataset, visible_files

            table_format = is_table_dataset(root, [e.path for e in entries])
            if table_format is not None:
                from mloop.datasets.profile import profile_table

                profile = profile_table(visible_files(root, [e.path for e in entries]), format=table_format)
                kind, rows, profile_json = "table", profile.rows, profile.to_json()
        info, created = c.store.create_dataset_version(
            name, files=entries, manifest_digest=manifest.digest, actor=c.actor, message=message, kind=kind,
            format=table_format, rows=rows, private=private, source=source, role=role, meta=meta,
            profile=profile_json,
        )  # fmt: skip
        if source is not None and created:
            c.store.add_lineage(source, info.ref, role or "derived", actor=c.actor)
        return AddResult(cls(c, info), created, stats, time.perf_counter() - started)

    # -- reading -------------------------------------------------------------------------------------------
    def files(self) -> list[ManifestEntry]:
        """Path, size and digest of every file (a version never changes, so this is read once)."""
        if self._files is None:
            self._files = self.client.store.list_dataset_files(self.name, self.version)
        return list(self._files)

    def profile(self) -> TableProfile | None:
        """The column profile of a table version (``None`` for plain files)."""
        from mloop.entities.profile import TableProfile

        text = self.client.store.get_dataset_profile(self.name, self.version)
        return None if text is None else TableProfile.from_json(text)

    def _reading(self) -> Grant | None:
        run_ref = active_run_ref()
        grant = check_read(self.client, self.info, run_ref=run_ref)
        if run_ref is not None and (grant is None or grant.kind != EVALUATION):  # evaluation reads are events
            self.client.store.add_lineage(self.ref, run_ref, "input", actor=self.client.actor)
        return grant

    def path(self, *, verify: bool = False) -> Path:
        """A local, verified, read-only copy of the version (the file itself for a one-file version).

        A reused copy is checked against what was written (size and modification time, re-hashing what
        differs; ``verify=True`` re-hashes every file). A private holdout's copy lives only until the
        evaluation or ``holdout_access`` block that read it ends.
        """
        grant = self._reading()
        root = self._materialise(grant, verify=verify)
        entries = self.files()
        return root / entries[0].path if len(entries) == 1 else root

    def _materialise(self, grant: Grant | None, *, verify: bool = False) -> Path:
        local_dir = self.client.workspace.settings.local_dir
        args = (self.client.artifacts, local_dir, self.ref, self.info.manifest_digest, self.files())
        if grant is not None:  # private: never a copy in the shared folder
            return materialise_private(*args, grant)
        return materialise_shared(*args, verify=verify)

    def to_arrow(self, *, verify: bool = False) -> pa.Table:
        """The version as one Arrow table (CSV, Parquet or JSON-lines versions)."""
        if self.info.kind != "table":
            raise InvalidInput(
                f"{self.ref} is not a table (it holds {self.info.file_count} files of no single table format). "
                "Use .path() to read its files."
            )
        from mloop.datasets.tables import read_table, visible_files

        grant = self._reading()
        root = self._materialise(grant, verify=verify)
        try:
            return read_table(visible_files(root, [e.path for e in self.files()]), format=self.info.format)
        finally:
            if grant is not None:
                remove_tree(root)  # the holdout is in memory now; its files go at once

    def to_pandas(self, *, verify: bool = False) -> pd.DataFrame:
        return self.to_arrow(verify=verify).to_pandas()


def get_dataset(ref: str, *, client: Context | None = None) -> Dataset:
    """A version from ``data:<name>/<version>``, ``data:<name>@<alias>`` (``@latest``) or ``data:<name>``."""
    r = parse_ref(ref, default_kind="data")
    if r.kind != "data":
        raise InvalidInput(f"{ref!r} is not a dataset reference; use data:<name>/<version> or data:<name>@<alias>.")
    c = client or current_context()
    return Dataset(c, c.store.get_dataset_version(r.name, r.version, r.alias))
