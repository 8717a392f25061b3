"""The Store contract on every implementation: SQLite (WAL) and the machine's real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mloop.store import Store, open_store
from mloop.testing import (
    AutomationStoreContract,
    DatasetStoreContract,
    EndpointStoreContract,
    ModelStoreContract,
    MonitorStoreContract,
    PipelineEventsContract,
    PipelineStoreContract,
    ScheduleStoreContract,
    StoreContract,
)


class TestStoreContract(
    StoreContract,
    DatasetStoreContract,
    ModelStoreContract,
    PipelineStoreContract,
    ScheduleStoreContract,
    PipelineEventsContract,
    EndpointStoreContract,
    MonitorStoreContract,
    AutomationStoreContract,
):
    @pytest.fixture
    def store(self, store_uri: str) -> Iterator[Store]:
        s = open_store(store_uri)
        assert isinstance(s, Store)
        yield s
        s.close()
