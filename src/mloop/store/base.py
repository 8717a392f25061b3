"""The metadata ``Store`` protocol: every per-noun protocol of :mod:`mloop.store.protocols` together.

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

from typing import Protocol, runtime_checkable

from mloop.store.protocols import (
    ArtifactRefStore,
    AutomationStore,
    DatasetStore,
    EndpointStore,
    EnvironmentStore,
    EventStore,
    ExperimentStore,
    LineageStore,
    ModelStore,
    MonitorStore,
    PipelineStore,
    RunStore,
    ScheduleStore,
    SettingsStore,
)

__all__ = ["Store"]


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
    PipelineStore,
    ScheduleStore,
    EndpointStore,
    MonitorStore,
    AutomationStore,
    Protocol,
):
    """The whole metadata store."""

    @property
    def uri(self) -> str: ...

    def close(self) -> None: ...
