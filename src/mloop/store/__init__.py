"""Metadata store: the :class:`Store` protocol and its implementations."""

from __future__ import annotations

from mloop.store.base import (
    ArtifactRefStore,
    DatasetStore,
    EnvironmentStore,
    EventStore,
    ExperimentStore,
    LineageStore,
    ModelStore,
    RunStore,
    SettingsStore,
    Store,
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
    "open_store",
]


def open_store(uri: str) -> Store:
    """Open the metadata store at ``uri`` (``sqlite:///…`` or ``postgresql://…``), migrating its schema."""
    from mloop.store.sql import SqlStore

    return SqlStore(uri)
