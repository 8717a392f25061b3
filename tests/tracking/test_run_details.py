"""``mloop.tracking.details``: a run with its experiment's name, artifacts and environment summary (``runs show``)."""

from __future__ import annotations

import pytest

from mloop.errors import NotFound
from mloop.tracking.client import Client
from mloop.tracking.details import EnvironmentSummary, RunDetails, describe_run


def test_describe_run_gathers_experiment_artifacts_and_environment(client: Client) -> None:
    with client.start_run("iris", "alpha", params={"lr": 0.1}, tags={"team": "ml"}) as run:
        run.log_metric("acc", 0.9)
        run.log_text("card\n", "model/card.txt")
        run.log_bytes(b"x" * 100, "data/a.bin")
    details = describe_run(client, run.id[-8:])  # a unique end of the id is enough, as on the command line
    assert isinstance(details, RunDetails)
    assert details.run.id == run.id and details.experiment == "iris"
    assert [a.path for a in details.artifacts] == ["data/a.bin", "model/card.txt"]
    env = details.environment
    assert env is not None and env.python and env.implementation and env.packages > 0 and env.platform
    assert describe_run(client, f"run:{run.id}") == details == describe_run(client, details.run)


def test_to_dict_is_the_record_with_the_experiment_after_the_name(client: Client) -> None:
    with client.start_run("iris", "alpha", params={"lr": 0.1}) as run:
        run.log_bytes(b"abc", "a.bin")
    details = describe_run(client, run.id)
    shape = details.to_dict()
    record = details.run.to_dict()
    assert list(shape) == ["run_id", "name", "experiment", *list(record)[2:], "artifacts", "environment"]
    assert {k: shape[k] for k in record} == record and shape["experiment"] == "iris"
    assert shape["artifacts"] == [a.to_dict() for a in details.artifacts]
    assert details.environment is not None
    assert shape["environment"] == details.environment.to_dict()
    assert list(shape["environment"]) == ["python", "implementation", "platform", "git_commit", "git_branch",
                                          "git_dirty", "packages", "command"]  # fmt: skip


def test_a_run_without_environment_capture(client: Client) -> None:
    with client.start_run("other", "delta", capture_environment=False) as run:
        pass
    details = describe_run(client, run.id)
    assert details.environment is None and details.artifacts == [] and details.experiment == "other"
    assert details.to_dict()["environment"] is None and details.to_dict()["artifacts"] == []


def test_environment_summary_of_a_record() -> None:
    env = {
        "python": {"version": "3.12.1", "implementation": "CPython"},
        "platform": {"system": "Linux", "release": "6.1", "machine": "x86_64"},
        "git": {"commit": "a" * 40, "branch": "main", "dirty": True},
        "packages": {"numpy": "2.0", "pandas": "2.2"},
        "command": ["train.py", "--fast"],
    }
    summary = EnvironmentSummary.of(env)
    assert summary == EnvironmentSummary("3.12.1", "CPython", "Linux 6.1 x86_64", "a" * 40, "main", True, 2,
                                         "train.py --fast")  # fmt: skip
    assert summary.to_dict()["packages"] == 2 and summary.to_dict()["command"] == "train.py --fast"
    empty = EnvironmentSummary.of({"git": None, "platform": {"system": "Linux"}})
    assert empty == EnvironmentSummary(None, None, "Linux", None, None, None, 0, "")


def test_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound):
        describe_run(client, "f" * 32)
