"""Published pipelines: immutable, numbered versions of a pipeline definition (a code snapshot), with aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mloop.entities import ManifestEntry, Page, PipelineParam, PipelineVersion, PublishedPipeline

__all__ = ["WRITES", "PipelineEvents", "PipelineStore"]


class PipelineEvents:
    VERSION_PUBLISHED = "pipeline.version_published"
    ALIAS_MOVED = "pipeline.alias_moved"


WRITES: dict[str, str | None] = {
    "create_pipeline_version": PipelineEvents.VERSION_PUBLISHED,
    "set_pipeline_alias": PipelineEvents.ALIAS_MOVED,
}


class PipelineStore(Protocol):
    def create_pipeline_version(
        self,
        name: str,
        *,
        digest: str,
        code_digest: str,
        file: str,
        variable: str,
        files: Sequence[ManifestEntry],
        actor: str,
        source: str = "",
        params: Sequence[PipelineParam] = (),
        steps: Sequence[str] = (),
        description: str = "",
    ) -> tuple[PipelineVersion, bool]:
        """Publish the next version of ``name``, or return the existing one with the same ``digest``
        (``created`` False, no event). Numbering is race-free; identical concurrent publishes yield one version."""
        ...

    def get_pipeline_version(self, name: str, version: int | None = None, alias: str | None = None) -> PipelineVersion:
        """A version by number, by alias, or the newest one when neither is given."""
        ...

    def list_pipelines(self, *, cursor: str | None = None, limit: int = 100) -> Page[PublishedPipeline]: ...

    def list_pipeline_versions(
        self, name: str, *, cursor: str | None = None, limit: int = 100
    ) -> Page[PipelineVersion]:
        """Newest first."""
        ...

    def set_pipeline_alias(self, name: str, alias: str, version: int, *, actor: str) -> PipelineVersion: ...
