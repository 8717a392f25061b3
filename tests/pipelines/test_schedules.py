"""Schedules of published pipelines: create / list / pause / resume / delete, bad cron and parameter errors."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mloop.cli.app import app
from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.pipelines import publish
from mloop.pipelines.schedules import (
    create_schedule,
    delete_schedule,
    due_times,
    list_schedules,
    next_fire,
    pause_schedule,
    resume_schedule,
)
from mloop.store.protocols.schedules import ScheduleEvents
from mloop.tracking.client import Client
from mloop.workspace import init_workspace


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def published(client: Client, project: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    for module in ("helpers", "deep"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    publish(client, f"{project / 'flow.py'}:flow")
    return client


def test_cron_is_utc_and_strictly_after() -> None:
    assert next_fire("0 3 * * *", ms("2026-01-01T02:59:59")) == ms("2026-01-01T03:00:00")
    assert next_fire("0 3 * * *", ms("2026-01-01T03:00:00")) == ms("2026-01-02T03:00:00")
    times, cut = due_times("*/5 * * * *", ms("2026-01-01T00:00:00"), ms("2026-01-01T00:17:00"))
    assert times == [ms("2026-01-01T00:05:00"), ms("2026-01-01T00:10:00"), ms("2026-01-01T00:15:00")] and not cut
    times, cut = due_times("* * * * *", 0, ms("2026-01-01T00:00:00"), limit=3)
    assert len(times) == 3 and cut


def test_create_list_pause_resume_delete(published: Client) -> None:
    c = published
    start = ms("2026-01-01T00:00:00")
    s = create_schedule(c, "nightly", pipeline="flow", cron=" 0 3 * * * ", params={"n": 2}, start_ms=start)
    assert (s.pipeline, s.version, s.cron, s.params, s.missed) == ("flow", None, "0 3 * * *", {"n": 2}, "skip")
    assert s.next_fire_at == ms("2026-01-01T03:00:00")
    pinned = create_schedule(c, "pinned", pipeline="flow/1", cron="*/15 * * * *", missed="run-once")
    assert pinned.target == "flow/1" and pinned.missed == "run-once"
    assert [x.name for x in list_schedules(c)] == ["nightly", "pinned"]
    paused = pause_schedule(c, "nightly")
    assert paused.paused and paused.next_fire_at is None
    resumed = resume_schedule(c, "nightly")
    assert not resumed.paused and resumed.anchor_at > start  # times passed while paused never fire
    delete_schedule(c, "pinned")
    assert [x.name for x in list_schedules(c)] == ["nightly"]
    types = [e.type for e in c.store.list_events(types=[t for t in vars(ScheduleEvents).values()
                                                         if isinstance(t, str) and "." in t]).items]  # fmt: skip
    assert types == ["schedule.created", "schedule.created", "schedule.paused", "schedule.resumed", "schedule.deleted"]


def test_bad_schedules_are_refused(published: Client) -> None:
    c = published
    with pytest.raises(InvalidInput, match=r"Cron expression '61 \* \* \* \*' is not valid.*'0 3 \* \* \*'"):
        create_schedule(c, "s", pipeline="flow", cron="61 * * * *")
    with pytest.raises(InvalidInput, match="five fields"):
        create_schedule(c, "s", pipeline="flow", cron="0 3 * * * *")
    with pytest.raises(InvalidInput, match=r"Unknown parameter 'nn'.*Did you mean 'n'"):
        create_schedule(c, "s", pipeline="flow", cron="0 3 * * *", params={"nn": 1})
    with pytest.raises(InvalidInput, match="is int"):
        create_schedule(c, "s", pipeline="flow", cron="0 3 * * *", params={"a.n": "three"})
    with pytest.raises(InvalidInput, match="run-once"):
        create_schedule(c, "s", pipeline="flow", cron="0 3 * * *", missed="sometimes")
    with pytest.raises(NotFound, match="mloop pipelines publish"):
        create_schedule(c, "s", pipeline="ghost", cron="0 3 * * *")
    with pytest.raises(NotFound, match="latest is 1"):
        create_schedule(c, "s", pipeline="flow/4", cron="0 3 * * *")
    with pytest.raises(InvalidInput, match="NAME/VERSION"):
        create_schedule(c, "s", pipeline="flow@prod", cron="0 3 * * *")
    create_schedule(c, "s", pipeline="flow", cron="0 3 * * *")
    with pytest.raises(AlreadyExists, match="mloop schedules delete s"):
        create_schedule(c, "s", pipeline="flow", cron="0 4 * * *")
    with pytest.raises(NotFound, match="mloop schedules list"):
        pause_schedule(c, "nope")
    assert [x.name for x in list_schedules(c)] == ["s"]


def mloop(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="mloop")
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def test_cli_publish_trigger_and_schedules(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(project)
    monkeypatch.chdir(project)
    for module in ("helpers", "deep"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    assert "published pipeline:flow/1" in mloop("pipelines", "publish", "flow.py:flow").stdout
    assert "no new version" in mloop("pipelines", "publish", "flow.py:flow").stdout
    again = json.loads(mloop("pipelines", "publish", "flow.py", "--json").stdout)
    assert again["created"] is False and again["ref"] == "pipeline:flow/1"
    assert json.loads(mloop("pipelines", "published", "--json").stdout)[0]["latest_version"] == 1
    (v,) = json.loads(mloop("pipelines", "versions", "flow", "--json").stdout)
    assert {p["name"]: p["default"] for p in v["params"]} == {"a.n": 3, "d.k": 1}
    mloop("pipelines", "alias", "flow", "1", "prod")
    run = json.loads(mloop("pipelines", "trigger", "flow@prod", "-p", "n=2", "--json").stdout)
    assert run["status"] == "FINISHED"
    assert "Unknown parameter 'x'" in mloop("pipelines", "trigger", "flow/1", "-p", "x=1", code=2).stderr
    made = json.loads(mloop("schedules", "create", "nightly", "--pipeline", "flow/1", "--cron", "0 3 * * *",
                            "-p", "d.k=2", "--missed", "run-once", "--json").stdout)  # fmt: skip
    assert made[0]["params"] == {"d.k": 2} and made[0]["timezone"] == "UTC" and made[0]["next_fire_at"]
    assert "not valid" in mloop("schedules", "create", "bad", "--pipeline", "flow", "--cron", "* *", code=2).stderr
    assert "nightly" in mloop("schedules", "list").stdout
    shown = json.loads(mloop("schedules", "show", "nightly", "--json").stdout)
    assert shown["name"] == "nightly" and shown["fires"] == [] and shown["missed"] == "run-once"
    assert json.loads(mloop("schedules", "pause", "nightly", "--json").stdout)[0]["paused"] is True
    assert json.loads(mloop("schedules", "resume", "nightly", "--json").stdout)[0]["paused"] is False
    mloop("schedules", "delete", "nightly")
    assert json.loads(mloop("schedules", "list", "--json").stdout) == []
    assert "No schedule named 'nightly'" in mloop("schedules", "delete", "nightly", code=3).stderr
