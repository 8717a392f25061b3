"""Runs: their lifecycle, params, metrics and tags, and search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from mloop.entities import Metric, Page, RunRecord, RunStatus

__all__ = ["WRITES", "RunEvents", "RunStore"]


class RunEvents:
    STARTED = "run.started"
    FINISHED = "run.finished"
    DELETED = "run.deleted"
    RESTORED = "run.restored"
    PURGED = "run.purged"


WRITES: dict[str, str | None] = {
    "create_run": RunEvents.STARTED,
    "log_batch": None,
    "end_run": RunEvents.FINISHED,
    "delete_run": RunEvents.DELETED,
    "restore_run": RunEvents.RESTORED,
    "purge_deleted_runs": RunEvents.PURGED,
}


class RunStore(Protocol):
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        actor: str,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        parent_id: str | None = None,
        environment_digest: str | None = None,
        start_time: int | None = None,
    ) -> RunRecord: ...

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write all in one transaction. Changing a logged param raises :class:`~mloop.errors.Conflict`."""
        ...

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        actor: str,
        end_time: int | None = None,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write the last batch (if any) and the final status in one transaction."""
        ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    def search_runs(
        self,
        *,
        experiment_ids: Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        cursor: str | None = None,
        include_deleted: bool = False,
        deleted_only: bool = False,
    ) -> Page[RunRecord]: ...

    def delete_run(self, run_id: str, *, actor: str) -> None: ...

    def restore_run(self, run_id: str, *, actor: str) -> None: ...

    def purge_deleted_runs(self, *, actor: str, older_than_ms: int = 0) -> list[str]:
        """Remove runs deleted at least ``older_than_ms`` ago, with everything logged to them."""
        ...
