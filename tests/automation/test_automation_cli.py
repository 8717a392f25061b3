"""``mloop automations``: create (options or a JSON file), list, show, history (also a chain), pause, resume,
delete, apply; --json everywhere; bad input exits non-zero naming the value; ``mloop scheduler --once`` acts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mloop.cli.app import app
from mloop.workspace import init_workspace


def mloop(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def test_automations_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    made = json.loads(mloop("automations", "create", "page", "--on", "monitor.alert", "--where",
                            "payload.state == 'opened'", "--do", '{"action": "notify", "log": true, "message": "x"}',
                            "--cooldown", "5m", "--max-per-hour", "2", "--json").stdout)  # fmt: skip
    assert made[0]["spec"]["cooldown_s"] == 300 and made[0]["spec"]["on"] == {"event": "monitor.alert"}
    spec = tmp_path / "nightly.json"
    spec.write_text(json.dumps({"on": {"cron": "0 2 * * *"}, "do": {"action": "notify", "log": "ops"}}))
    mloop("automations", "create", "nightly", "--file", str(spec))
    listed = mloop("automations", "list").stdout
    assert "page" in listed and "cron 0 2 * * *" in listed
    assert "--do / --file must hold valid JSON" in mloop("automations", "create", "x", "--on", "a.b", "--do", "{",
                                                         code=2).stderr  # fmt: skip
    assert "unexpected" in mloop("automations", "create", "x", "--on", "a.b", "--where", "payload.x >> 1", "--do",
                                 '{"action": "notify", "log": true}', code=2).stderr  # fmt: skip
    mloop("events", "list")  # the store is shared with the commands below
    from mloop.tracking.client import Client

    with Client() as c:
        c.store.append_event("monitor.alert", "monitor:m", actor="me", payload={"state": "opened"})
    assert "automation page" in mloop("scheduler", "--once", "--no-monitors").stderr
    (action,) = json.loads(mloop("automations", "history", "page", "--json").stdout)
    assert action["status"] == "succeeded" and action["cause"].startswith("event:")
    chained = json.loads(mloop("automations", "history", "--chain", action["id"][-8:], "--json").stdout)
    assert [a["id"] for a in chained] == [action["id"]]
    shown = json.loads(mloop("automations", "show", "page", "--json").stdout)
    assert shown["name"] == "page" and len(shown["actions"]) == 1
    assert json.loads(mloop("automations", "pause", "page", "--json").stdout)[0]["paused"] is True
    assert json.loads(mloop("automations", "resume", "page", "--json").stdout)[0]["paused"] is False
    mloop("automations", "delete", "page")
    assert "No automation named 'page'" in mloop("automations", "delete", "page", code=3).stderr
    assert json.loads(mloop("automations", "history", "page", "--json").stdout)[0]["id"] == action["id"]  # kept
    assert json.loads(mloop("automations", "apply", "--json").stdout)["created"] == []
