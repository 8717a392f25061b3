"""``mloop.datasets.versions``: listing every dataset and version (across pages) and moving aliases."""

from __future__ import annotations

import pytest

from mloop.datasets.versions import list_dataset_versions, list_datasets, set_dataset_alias
from mloop.entities import DatasetVersion, ManifestEntry
from mloop.errors import InvalidInput, NotFound
from mloop.tracking.client import Client


def _version(client: Client, name: str, content: str) -> DatasetVersion:
    entry = ManifestEntry("a.txt", len(content), f"blake3:{content}")
    version, _ = client.store.create_dataset_version(name, files=[entry], manifest_digest=f"blake3:m-{content}",
                                                     actor="bob")  # fmt: skip
    return version


def test_listings_walk_every_page(client: Client) -> None:
    names = [f"d{i:03d}" for i in range(103)]  # more than one page of the store's listing (100)
    for name in names:
        _version(client, name, name)
    for i in range(102):
        _version(client, "many", f"many-{i}")
    assert [d.name for d in list_datasets(client)] == [*names, "many"]
    versions = list_dataset_versions(client, "many")
    assert [v.version for v in versions] == list(range(102, 0, -1))  # newest first, none twice
    with pytest.raises(NotFound):
        list_dataset_versions(client, "nope")


def test_set_alias_moves_it_and_records_the_move(client: Client) -> None:
    _version(client, "sensors", "one")
    _version(client, "sensors", "two")
    assert set_dataset_alias(client, "sensors", 1, "prod").aliases == ("prod",)
    moved = set_dataset_alias(client, "sensors", 2, "prod")
    assert moved.ref == "data:sensors/2" and moved.aliases == ("prod",)
    assert client.store.get_dataset_version("sensors", alias="prod").version == 2
    events = client.events(types=["dataset.alias_moved"])
    assert [(e.subject, e.payload["version"], e.actor) for e in events] == [
        ("data:sensors@prod", 1, client.actor), ("data:sensors@prod", 2, client.actor)]  # fmt: skip
    with pytest.raises(InvalidInput):
        set_dataset_alias(client, "sensors", 1, "latest")  # computed, never set
    with pytest.raises(NotFound):
        set_dataset_alias(client, "sensors", 9, "prod")
