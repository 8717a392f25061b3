"""Test support for mloop and for authors of store plugins: the Store contract suite and database fixtures.

Importing this package needs pytest (``pip install 'mloop[test]'``).
"""

from mloop.testing.automation_contract import AutomationStoreContract
from mloop.testing.dataset_contract import DatasetStoreContract
from mloop.testing.endpoint_contract import EndpointStoreContract
from mloop.testing.event_contract import EventStoreContract
from mloop.testing.model_contract import ModelStoreContract
from mloop.testing.monitor_contract import MonitorStoreContract
from mloop.testing.pipeline_contract import PipelineEventsContract, PipelineStoreContract, ScheduleStoreContract
from mloop.testing.postgres import POSTGRES_ADMIN_URI, postgres_available, temporary_postgres_database
from mloop.testing.store_contract import (
    ArtifactRefStoreContract,
    ExperimentStoreContract,
    RunStoreContract,
    SettingsStoreContract,
    StoreContract,
)

__all__ = [
    "POSTGRES_ADMIN_URI",
    "ArtifactRefStoreContract",
    "AutomationStoreContract",
    "DatasetStoreContract",
    "EndpointStoreContract",
    "EventStoreContract",
    "ExperimentStoreContract",
    "ModelStoreContract",
    "MonitorStoreContract",
    "PipelineEventsContract",
    "PipelineStoreContract",
    "RunStoreContract",
    "ScheduleStoreContract",
    "SettingsStoreContract",
    "StoreContract",
    "postgres_available",
    "temporary_postgres_database",
]
