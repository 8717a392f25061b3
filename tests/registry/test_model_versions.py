"""``mloop.registry.versions``: listing models and versions (across pages), describing and archiving a version."""

from __future__ import annotations

import pytest

from mloop.entities import ModelFile, ModelVersion
from mloop.errors import Conflict, NotFound
from mloop.registry.versions import (
    alias_history,
    archive_version,
    describe_version,
    list_model_versions,
    list_models,
)
from mloop.tracking.client import Client


def _register(client: Client, name: str) -> ModelVersion:
    return client.store.create_model_version(name, flavor="python", files=(ModelFile("model.pkl", 1, "blake3:x"),),
                                             actor="bob")  # fmt: skip


def test_listings_walk_every_page(client: Client) -> None:
    names = [f"m{i:03d}" for i in range(101)]
    for name in names:
        _register(client, name)
    for _ in range(101):
        _register(client, "churn")
    assert [m.name for m in list_models(client)] == ["churn", *names]
    assert [v.version for v in list_model_versions(client, "churn")] == list(range(101, 0, -1))
    with pytest.raises(NotFound):
        list_model_versions(client, "nope")


def test_archive_refuses_an_alias_holder_and_records_the_change(client: Client) -> None:
    for _ in range(2):
        _register(client, "churn")
    client.store.move_model_alias("churn", "production", 1, expected=None, actor="bob")
    with pytest.raises(Conflict):
        archive_version(client, "churn", 1)
    archived = archive_version(client, "churn", 2)
    assert archived.status == "archived" and client.store.get_model_version("churn", 2).status == "archived"
    events = client.events(types=["model.version_archived"])
    assert [(e.subject, e.actor) for e in events] == [("model:churn/2", client.actor)]
    with pytest.raises(NotFound):
        archive_version(client, "churn", 7)


def test_describe_version_and_its_alias_history(client: Client) -> None:
    for _ in range(3):
        _register(client, "churn")
    client.store.move_model_alias("churn", "production", 1, expected=None, actor="bob")
    client.store.move_model_alias("churn", "production", 2, expected=1, actor="bob")
    client.store.move_model_alias("churn", "staging", 3, expected=None, actor="bob")
    client.store.add_approval("churn", 2, alias="production", actor="carol", comment="ok")
    moves = alias_history(client, "churn", 1)
    assert [(m["alias"], m["previous"], m["version"]) for m in moves] == [("production", None, 1), ("production", 1, 2)]
    assert list(moves[0]) == ["alias", "version", "previous", "actor", "at", "reason"]
    assert [(m["alias"], m["version"]) for m in alias_history(client, "churn", 3)] == [("staging", 3)]

    details = describe_version(client, "churn@production")
    assert details.version.version == 2 and [a.actor for a in details.approvals] == ["carol"]
    assert details.evaluations == [] and [m["previous"] for m in details.alias_history] == [1]
    shape = details.to_dict()
    assert list(shape)[-3:] == ["evaluations", "approvals", "alias_history"]
    assert shape["ref"] == "model:churn/2" and shape["approvals"][0]["comment"] == "ok"
    assert describe_version(client, "model:churn").version.version == 3  # no version: the newest
