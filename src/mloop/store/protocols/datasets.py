"""Dataset versions, their files and aliases, and which blobs only private versions hold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.entities import Dataset, DatasetVersion, ManifestEntry, Page

__all__ = ["WRITES", "DatasetEvents", "DatasetStore"]


class DatasetEvents:
    VERSION_CREATED = "dataset.version_created"
    VERSION_DELETED = "dataset.version_deleted"
    ALIAS_MOVED = "dataset.alias_moved"


WRITES: dict[str, str | None] = {
    "create_dataset_version": DatasetEvents.VERSION_CREATED,
    "set_dataset_alias": DatasetEvents.ALIAS_MOVED,
    "delete_dataset_version": DatasetEvents.VERSION_DELETED,
}


class DatasetStore(Protocol):
    def create_dataset_version(
        self,
        name: str,
        *,
        files: Sequence[ManifestEntry],
        manifest_digest: str,
        actor: str,
        message: str = "",
        kind: str = "files",
        format: str | None = None,
        rows: int | None = None,
        private: bool = False,
        source: str | None = None,
        role: str | None = None,
        meta: Mapping[str, Any] | None = None,
        profile: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Create the next version, or return the existing one with the same manifest (``created`` False).

        Safe under concurrent callers: versions are numbered without gaps or duplicates, and identical content
        added at the same time yields one version.
        """
        ...

    def get_dataset_version(self, name: str, version: int | None = None, alias: str | None = None) -> DatasetVersion:
        """A version by number, by alias, or the newest one when neither is given."""
        ...

    def get_dataset_profile(self, name: str, version: int) -> str | None: ...

    def list_datasets(self, *, cursor: str | None = None, limit: int = 100) -> Page[Dataset]: ...

    def list_dataset_versions(self, name: str, *, cursor: str | None = None, limit: int = 100) -> Page[DatasetVersion]:
        """Newest first."""
        ...

    def list_dataset_files(self, name: str, version: int) -> list[ManifestEntry]: ...

    def set_dataset_alias(self, name: str, alias: str, version: int, *, actor: str) -> DatasetVersion: ...

    def delete_dataset_version(self, name: str, version: int, *, actor: str) -> DatasetVersion: ...

    def private_blobs(self, digests: Sequence[str]) -> dict[str, list[str]]:
        """For each digest held only by private versions, their refs (public digests are left out)."""
        ...
