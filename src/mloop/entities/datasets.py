"""Datasets, their immutable versions, manifest entries and lineage edges. Frozen values, no I/O.

``to_dict()`` gives each value's JSON shape (plain dicts, lists and scalars, keys in a fixed order): the CLI's
``--json`` prints it and the REST server will return it, so both stay the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Dataset", "DatasetVersion", "LineageEdge", "ManifestEntry"]


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a dataset version: its path relative to the version's root, size and content digest."""

    path: str
    size: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    created_at: int
    latest_version: int | None = None
    version_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "latest_version": self.latest_version, "version_count": self.version_count,
            "created_at": self.created_at, "id": self.id,
        }  # fmt: skip


@dataclass(frozen=True)
class DatasetVersion:
    """An immutable snapshot. ``private`` versions (holdouts) are readable only through evaluation."""

    id: str
    dataset_id: str
    name: str
    version: int
    manifest_digest: str
    file_count: int
    total_size: int
    created_at: int
    actor: str
    message: str = ""
    kind: str = "files"  # files | table
    format: str | None = None  # csv | parquet | jsonl for tables
    rows: int | None = None
    private: bool = False
    source: str | None = None  # the reference this version was derived from (e.g. split from)
    role: str | None = None  # train | holdout for split outputs
    meta: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"data:{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "name": self.name, "version": self.version, "id": self.id,
            "dataset_id": self.dataset_id, "created_at": self.created_at, "actor": self.actor,
            "message": self.message, "kind": self.kind, "format": self.format, "rows": self.rows,
            "file_count": self.file_count, "total_size": self.total_size, "private": self.private,
            "aliases": list(self.aliases), "source": self.source, "role": self.role, "meta": dict(self.meta),
            "manifest_digest": self.manifest_digest,
        }  # fmt: skip


@dataclass(frozen=True)
class LineageEdge:
    """``source`` was used to make ``target`` (e.g. ``data:x/1`` → ``run:…`` as ``input``)."""

    source: str
    target: str
    relation: str
    actor: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "relation": self.relation, "actor": self.actor,
                "created_at": self.created_at}  # fmt: skip
