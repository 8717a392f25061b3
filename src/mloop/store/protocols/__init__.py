"""One ``Protocol`` per stored noun, each in its own module with the events its writes record (``WRITES``).

``WRITES`` names the event each state-changing method writes in its own transaction (``None``: a data write
that records no event; ``"*"``: the event the caller gives; a tuple: a batch of changes, each with its own event,
listed in the order the contract suite's call records them). The contract suite checks every implementation
against it: each such write emits exactly that one event, and none when it changes nothing.

Consumers type against the protocol they use (``DatasetStore``, ``EventStore`` ...); :class:`mloop.store.Store`
is all of them together, which every implementation provides. Adding a noun: see docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from mloop.store.protocols import (
    artifacts,
    automations,
    datasets,
    endpoints,
    environments,
    events,
    experiments,
    lineage,
    models,
    monitors,
    pipelines,
    runs,
    schedules,
    settings,
)
from mloop.store.protocols.artifacts import ArtifactEvents, ArtifactRefStore
from mloop.store.protocols.automations import AutomationEvents, AutomationStore
from mloop.store.protocols.datasets import DatasetEvents, DatasetStore
from mloop.store.protocols.endpoints import DeploymentEvents, EndpointStore
from mloop.store.protocols.environments import EnvironmentStore
from mloop.store.protocols.events import EventStore
from mloop.store.protocols.experiments import ExperimentEvents, ExperimentStore
from mloop.store.protocols.lineage import LineageEvents, LineageStore
from mloop.store.protocols.models import ModelEvents, ModelStore
from mloop.store.protocols.monitors import MonitorEvents, MonitorStore
from mloop.store.protocols.pipelines import PipelineEvents, PipelineStore
from mloop.store.protocols.runs import RunEvents, RunStore
from mloop.store.protocols.schedules import ScheduleEvents, ScheduleStore
from mloop.store.protocols.settings import SettingEvents, SettingsStore

__all__ = [
    "NOUNS",
    "ArtifactEvents",
    "ArtifactRefStore",
    "AutomationEvents",
    "AutomationStore",
    "DatasetEvents",
    "DatasetStore",
    "DeploymentEvents",
    "EndpointStore",
    "EnvironmentStore",
    "EventStore",
    "ExperimentEvents",
    "ExperimentStore",
    "LineageEvents",
    "LineageStore",
    "ModelEvents",
    "ModelStore",
    "MonitorEvents",
    "MonitorStore",
    "PipelineEvents",
    "PipelineStore",
    "RunEvents",
    "RunStore",
    "ScheduleEvents",
    "ScheduleStore",
    "SettingEvents",
    "SettingsStore",
    "all_writes",
]

# noun -> (protocol, its WRITES); the contract suite and the docs read this.
NOUNS: dict[str, tuple[type, Mapping[str, str | tuple[str, ...] | None]]] = {
    "settings": (SettingsStore, settings.WRITES),
    "experiments": (ExperimentStore, experiments.WRITES),
    "runs": (RunStore, runs.WRITES),
    "artifacts": (ArtifactRefStore, artifacts.WRITES),
    "environments": (EnvironmentStore, environments.WRITES),
    "events": (EventStore, events.WRITES),
    "datasets": (DatasetStore, datasets.WRITES),
    "lineage": (LineageStore, lineage.WRITES),
    "models": (ModelStore, models.WRITES),
    "pipelines": (PipelineStore, pipelines.WRITES),
    "schedules": (ScheduleStore, schedules.WRITES),
    "endpoints": (EndpointStore, endpoints.WRITES),
    "monitors": (MonitorStore, monitors.WRITES),
    "automations": (AutomationStore, automations.WRITES),
}


def all_writes() -> Mapping[str, str | tuple[str, ...] | None]:
    """Every state-changing store method and the event it records (see each module's ``WRITES``)."""
    return {name: event for _, writes in NOUNS.values() for name, event in writes.items()}
