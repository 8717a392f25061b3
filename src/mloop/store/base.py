"""The metadata ``Store`` protocol, one sub-protocol per noun.

Every implementation (SQLite and PostgreSQL through :mod:`mloop.store.sql`, later HTTP) passes the one
contract suite in ``tests/contract/``. Every method that changes state writes its event in the same
transaction, so the event log is the audit trail. Listings return a :class:`~mloop.entities.Page` with an
opaque cursor.

Every implementation refuses the same inputs with :class:`~mloop.errors.InvalidInput` (naming the argument, the
value truncated, and the fix) before touching its database: text holding a NUL byte or that is not UTF-8,
integers outside the signed 64-bit range, versions outside ``1 .. 2**63-1``, page sizes outside
``1 .. 2**31-1``, and text wider than its column (see :mod:`mloop.store.sql.inputs`). A version number no
version column can hold simply does not exist (:class:`~mloop.errors.NotFound`). Search filters follow the limits
of :mod:`mloop.store.query`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from mloop.entities import (
    Approval,
    ArtifactEntry,
    Dataset,
    DatasetVersion,
    Evaluation,
    Event,
    Experiment,
    LineageEdge,
    ManifestEntry,
    Metric,
    Model,
    ModelFile,
    ModelVersion,
    Page,
    RunRecord,
    RunStatus,
)

__all__ = [
    "ArtifactRefStore",
    "DatasetStore",
    "EnvironmentStore",
    "EventStore",
    "ExperimentStore",
    "LineageStore",
    "ModelStore",
    "RunStore",
    "SettingsStore",
    "Store",
]


class SettingsStore(Protocol):
    def get_setting(self, key: str) -> str | None: ...

    def set_setting(self, key: str, value: str) -> None: ...


class ExperimentStore(Protocol):
    def create_experiment(self, name: str, *, actor: str) -> Experiment:
        """Create; :class:`~mloop.errors.AlreadyExists` if the name is taken."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment: ...

    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        """Safe under concurrent callers: exactly one experiment of that name results."""
        ...

    def list_experiments(self, *, cursor: str | None = None, limit: int = 100) -> Page[Experiment]: ...


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


class ArtifactRefStore(Protocol):
    def record_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry], *, actor: str) -> None: ...

    def list_artifacts(self, run_id: str) -> list[ArtifactEntry]: ...

    def referenced_digests(self) -> set[str]:
        """Every digest some live or restorable object still points at (for ``mloop gc``)."""
        ...


class EnvironmentStore(Protocol):
    def put_environment(self, digest: str, body: Mapping[str, Any]) -> None:
        """Idempotent: storing the same digest twice keeps one row."""
        ...

    def get_environment(self, digest: str) -> dict[str, Any]: ...


class EventStore(Protocol):
    def append_event(
        self, type: str, subject: str, *, actor: str, payload: Mapping[str, Any] | None = None
    ) -> Event: ...

    def list_events(
        self,
        *,
        types: Sequence[str] | None = None,
        subject: str | None = None,
        after_id: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Event]:
        """Events in the order they were written (oldest first), after ``after_id`` when given."""
        ...


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


class LineageStore(Protocol):
    def add_lineage(self, source: str, target: str, relation: str, *, actor: str) -> None:
        """Record that ``source`` was used to make ``target`` (idempotent)."""
        ...

    def list_lineage(self, ref: str, *, direction: str = "both") -> list[LineageEdge]: ...


class ModelStore(Protocol):
    def create_model_version(
        self,
        name: str,
        *,
        flavor: str,
        files: Sequence[ModelFile],
        actor: str,
        run_id: str | None = None,
        source: str = "",
        signature: Mapping[str, Any] | None = None,
        input_example: str | None = None,
        environment: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[str] = (),
        code_commit: str | None = None,
        target: str | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Register the next version of ``name`` (created on first use); numbering is race-free."""
        ...

    def get_model_version(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion: ...

    def list_models(self, *, cursor: str | None = None, limit: int = 100) -> Page[Model]: ...

    def list_model_versions(self, name: str, *, cursor: str | None = None, limit: int = 100) -> Page[ModelVersion]: ...

    def move_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        expected: int | str | None = "any",
        actor: str,
        reason: str = "promote",
    ) -> ModelVersion | None:
        """Compare-and-swap: move only if the alias still points at ``expected``; else Conflict."""
        ...

    def model_alias_history(self, name: str, alias: str) -> list[dict[str, Any]]: ...

    def set_model_version_status(self, name: str, version: int, status: str, *, actor: str) -> ModelVersion: ...

    def add_evaluation(
        self,
        name: str,
        version: int,
        *,
        data_ref: str,
        task: str,
        metrics: Mapping[str, Any],
        actor: str,
        rows: int,
        importance: Sequence[tuple[str, float, float]] = (),
        latency_ms: Mapping[str, float] | None = None,
        report_digest: str | None = None,
        comparison: Mapping[str, Any] | None = None,
    ) -> Evaluation: ...

    def list_evaluations(self, name: str, version: int, *, data_ref: str | None = None) -> list[Evaluation]: ...

    def add_approval(
        self, name: str, version: int, *, alias: str, actor: str, roles: Sequence[str] = (), comment: str = ""
    ) -> Approval: ...

    def list_approvals(self, name: str, version: int, *, alias: str | None = None) -> list[Approval]: ...


@runtime_checkable
class Store(
    SettingsStore,
    ExperimentStore,
    RunStore,
    ArtifactRefStore,
    EnvironmentStore,
    EventStore,
    DatasetStore,
    LineageStore,
    ModelStore,
    Protocol,
):
    """The whole metadata store."""

    @property
    def uri(self) -> str: ...

    def close(self) -> None: ...
