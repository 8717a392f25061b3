"""``mloop.registry.promote``: the policy of an alias with its source (``mloop models policy``) and a dry-run
promotion check by name and version (``mloop models check``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.entities import ModelFile
from mloop.errors import InvalidInput, NotFound
from mloop.registry.gates import approvals
from mloop.registry.promote import DEFAULT_POLICIES, PolicyInfo, check_policy, check_promotion, policy_info
from mloop.tracking.client import Client
from mloop.workspace import open_workspace


def _register(client: Client, name: str = "churn") -> None:
    client.store.create_model_version(name, flavor="python", files=(ModelFile("model.pkl", 1, "blake3:x"),),
                                      actor="bob")  # fmt: skip


def test_default_and_no_policy(client: Client) -> None:
    info = policy_info(client, "churn", "production")
    assert isinstance(info, PolicyInfo) and not info.was_set and info.source == "default"
    assert info.to_dict() == {
        "model": "churn", "alias": "production", "policy": repr(info.policy), "set": False, "source": "default",
        "checks": [repr(c) for c in info.policy.checks],
    }  # fmt: skip
    assert len(info.policy.checks) == DEFAULT_POLICIES["production"].count("&") + 1
    none = policy_info(client, "churn", "custom")
    assert none.source == "none" and none.policy.checks == () and none.to_dict()["policy"] == "policy()"


def test_set_to_stores_the_team_policy_and_records_one_event(client: Client) -> None:
    info = policy_info(client, "churn", "production", set_to="approvals(1, role='approver')")
    assert info.was_set and info.source == "metadata store (mloop models policy)"
    assert info.to_dict()["checks"] == ["approvals(count=1, role='approver')"]
    shown = policy_info(client, "churn", "production")
    assert not shown.was_set and shown.to_dict()["policy"] == info.to_dict()["policy"] and shown.source == info.source
    events = client.events(types=["model.policy_set"])
    assert [(e.subject, e.payload["policy"]) for e in events] == [
        ("model:churn@production", "approvals(1, role='approver')")]  # fmt: skip


def test_a_bad_policy_is_refused_and_nothing_is_stored(client: Client) -> None:
    for bad in ("rm -rf /", "", "__import__('os')"):
        with pytest.raises(InvalidInput):
            policy_info(client, "churn", "staging", set_to=bad)
    assert policy_info(client, "churn", "staging").source == "default"
    assert client.events(types=["model.policy_set"]) == []


def test_the_workspace_file_is_a_source(client: Client, tmp_path: Path) -> None:
    config = tmp_path / "ws" / ".mloop" / "config.toml"
    config.write_text(config.read_text() + '\n[policies.churn]\nstaging = "approvals(2)"\n')
    with Client(workspace=open_workspace(cwd=tmp_path / "ws")) as other:
        info = policy_info(other, "churn", "staging")
    assert info.source == "workspace file [policies]" and info.to_dict()["checks"] == ["approvals(count=2, role=None)"]


def test_check_promotion_is_check_policy_by_name_and_version(client: Client) -> None:
    _register(client)
    report = check_promotion(client, "churn", 1, to="staging")
    version = client.store.get_model_version("churn", 1)
    assert report == check_policy(client, version, "staging")
    assert not report.passed and report.model_ref == "model:churn/1" and report.previous is None
    assert report.checks[0].check == "uncontaminated()"  # built in, whatever the policy

    added = check_promotion(client, "churn", 1, to="custom", policy="approvals(1)")
    assert [c.check for c in added.checks] == ["uncontaminated()", "approvals(count=1, role=None)"]
    assert check_promotion(client, "churn", 1, to="custom", policy=approvals(1)) == added
    assert check_promotion(client, "churn", 1, to="custom").passed  # no policy: only the built-in check
    assert client.store.get_model_version("churn", 1).aliases == ()  # a check never moves anything


def test_check_promotion_errors(client: Client) -> None:
    _register(client)
    with pytest.raises(NotFound):
        check_promotion(client, "churn", 9, to="latest")  # the version is looked up first
    with pytest.raises(NotFound):
        check_promotion(client, "nope", 1, to="staging")
    with pytest.raises(InvalidInput, match="'latest' always means the newest version"):
        check_promotion(client, "churn", 1, to="latest")
    with pytest.raises(InvalidInput):
        check_promotion(client, "churn", 1, to="staging", policy="rm -rf /")
