"""What changed between two dataset versions: files, and for tables rows and schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mloop.datasets.dataset import Dataset
from mloop.entities import ManifestEntry
from mloop.entities.profile import SchemaDiff

__all__ = ["DatasetDiff", "diff_versions"]


@dataclass(frozen=True)
class DatasetDiff:
    a: str
    b: str
    added: list[ManifestEntry] = field(default_factory=list)
    removed: list[ManifestEntry] = field(default_factory=list)
    changed: list[tuple[ManifestEntry, ManifestEntry]] = field(default_factory=list)
    unchanged: int = 0
    rows: tuple[int | None, int | None] = (None, None)
    schema: SchemaDiff | None = None

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        def entry(e: ManifestEntry) -> dict[str, Any]:
            return {"path": e.path, "size": e.size, "digest": e.digest}

        return {
            "a": self.a,
            "b": self.b,
            "added": [entry(e) for e in self.added],
            "removed": [entry(e) for e in self.removed],
            "changed": [{"path": x.path, "size": [x.size, y.size], "digest": [x.digest, y.digest]}
                        for x, y in self.changed],
            "unchanged": self.unchanged,
            "rows": list(self.rows),
            "schema": None if self.schema is None else self.schema.to_dict(),
        }  # fmt: skip


def diff_versions(a: Dataset, b: Dataset) -> DatasetDiff:
    """Compare manifests (no data is read); tables also compare row counts and schemas from their profiles."""
    fa = {e.path: e for e in a.files()}
    fb = {e.path: e for e in b.files()}
    added = [fb[p] for p in sorted(fb.keys() - fa.keys())]
    removed = [fa[p] for p in sorted(fa.keys() - fb.keys())]
    common = sorted(fa.keys() & fb.keys())
    changed = [(fa[p], fb[p]) for p in common if fa[p].digest != fb[p].digest]
    schema = None
    pa_, pb = a.profile(), b.profile()
    if pa_ is not None and pb is not None:
        from mloop.datasets.profile import compare_schemas

        schema = compare_schemas(pa_, pb)
    return DatasetDiff(
        a.ref, b.ref, added, removed, changed, len(common) - len(changed), (a.info.rows, b.info.rows), schema
    )
