"""Published pipelines: immutable, numbered versions of a pipeline definition (a code snapshot), with aliases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from mloop.entities import (
    LineageEdge,
    ManifestEntry,
    Page,
    PipelineParam,
    PipelineVersion,
    PublishedPipeline,
    RunRecord,
)
from mloop.store.protocols.lineage import LineageEvents
from mloop.store.protocols.runs import RunEvents

__all__ = ["WRITES", "PipelineEvents", "PipelineStore"]


class PipelineEvents:
    VERSION_PUBLISHED = "pipeline.version_published"
    ALIAS_MOVED = "pipeline.alias_moved"


WRITES: dict[str, str | tuple[str, ...] | None] = {
    "create_pipeline_version": PipelineEvents.VERSION_PUBLISHED,
    "set_pipeline_alias": PipelineEvents.ALIAS_MOVED,
    # several changes in one transaction, each with its own event: per run started, its new edges, finished
    "record_finished_runs": (RunEvents.STARTED, LineageEvents.RECORDED, RunEvents.FINISHED),
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

    def recent_tagged_runs(self, experiment_id: str, tags: Mapping[str, str], *, limit: int) -> list[RunRecord]:
        """The newest ``limit`` FINISHED, not deleted runs of ``experiment_id`` carrying every tag value in ``tags``
        (newest start first, then the larger id): exactly ``search_runs(experiment_ids=[experiment_id],
        filter="tags.`K` = 'V' and ... and status = 'FINISHED'", order_by=["start_time DESC"],
        max_results=limit).items``. What the pipeline cache reads (one query per pipeline run)."""
        ...

    def record_finished_runs(
        self, runs: Sequence[RunRecord], *, lineage: Sequence[LineageEdge] = (), actor: str
    ) -> None:
        """Runs that start and finish at once (cached pipeline steps), with lineage edges, in ONE transaction.

        The same rows and events as ``create_run`` + ``add_lineage`` + ``end_run`` for each run, in that order:
        ``run.started``, ``lineage.recorded`` for each new edge whose target is the run, ``run.finished``. Each run
        gives its id, name, experiment, parent, times, final status, params and tags; edges whose target is not
        one of ``runs`` are refused. Nothing is written if any part is refused (e.g. an unknown parent:
        :class:`NotFound`)."""
        ...
