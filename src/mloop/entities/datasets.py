"""Datasets, their immutable versions, manifest entries and lineage edges. Frozen values, no I/O."""

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


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    created_at: int
    latest_version: int | None = None
    version_count: int = 0


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


@dataclass(frozen=True)
class LineageEdge:
    """``source`` was used to make ``target`` (e.g. ``data:x/1`` → ``run:…`` as ``input``)."""

    source: str
    target: str
    relation: str
    actor: str
    created_at: int
