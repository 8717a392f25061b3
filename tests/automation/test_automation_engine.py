"""The engine: each event handled once (also across a restart), conditions and templates, storms (rate limit,
cool-down), chains bounded, cron fires once, paused rules, spec errors, the workspace file's [automations]."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.automation import apply_config, create_automation, list_actions, set_paused
from mloop.automation.engine import Engine
from mloop.automation.spec import check_spec, render
from mloop.errors import InvalidInput
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

MIN = 60_000


def _log(message: str = "level ${payload.level} on ${subject}") -> dict[str, object]:
    return {"action": "notify", "log": True, "message": message}


def _alerts(c: Client, n: int, **payload: object) -> None:
    for i in range(n):
        c.store.append_event("monitor.alert", "monitor:sensors", actor="mloop-monitor",
                             payload={"state": "opened", "signal": "data_drift", "i": i, **payload})  # fmt: skip


def test_each_matching_event_is_handled_once(client: Client) -> None:
    create_automation(client, "loud", {"on": "custom.*", "where": "payload.level >= 3", "do": _log(),
                                       "max_per_hour": 0})  # fmt: skip
    for level in (1, 3, 5):
        client.store.append_event("custom.alarm", "x:1", actor="me", payload={"level": level})
    client.store.append_event("other.alarm", "x:1", actor="me", payload={"level": 9})
    engine = Engine(client)
    engine.tick()
    actions = list_actions(client)
    assert [(a.status, a.outcome["message"]) for a in reversed(actions)] == [
        ("succeeded", "level 3 on x:1"), ("succeeded", "level 5 on x:1")]  # fmt: skip
    assert all(a.attempts == 1 and a.depth == 1 and a.duration_ms is not None for a in actions)
    assert engine.tick() == [] and Engine(client).tick() == []  # nothing twice, not even after a restart
    client.store.append_event("custom.alarm", "x:2", actor="me", payload={"level": 4})
    (made, _) = Engine(client).tick()  # a new engine starts from the stored cursor
    assert made.cause.startswith("event:") and len(list_actions(client)) == 3


def test_a_storm_of_1000_alerts_triggers_at_most_the_limit(client: Client) -> None:
    create_automation(client, "limited", {"on": "monitor.alert", "where": "payload.state == 'opened'",
                                          "do": _log("drift"), "max_per_hour": 3})  # fmt: skip
    create_automation(client, "cooled", {"on": "monitor.alert", "do": _log("drift ${payload.i}"), "cooldown": "10m"})
    _alerts(client, 1000)
    Engine(client, batch=300).tick()
    for name, allowed, reason in (("limited", 3, "rate limit"), ("cooled", 1, "cool-down")):
        actions = list_actions(client, automation=name, limit=5000)
        assert len(actions) == 1000  # every alert handled (and recorded) once ...
        done = [a for a in actions if a.status == "succeeded"]
        assert len(done) == allowed  # ... but only this many acted on
        skipped = [a for a in actions if a.status == "skipped"]
        assert len(skipped) == 1000 - allowed and all(reason in a.outcome["reason"] for a in skipped)
    _alerts(client, 5)
    Engine(client).tick()  # a restarted engine counts the hour's actions from the store
    assert len([a for a in list_actions(client, automation="limited", limit=5000) if a.status == "succeeded"]) == 3


def test_chains_of_automations_are_bounded(client: Client) -> None:
    # an automation that reacts to its own actions' events would loop forever without the chain bound
    create_automation(client, "echo", {"on": "automation.action_finished", "do": _log("again"), "max_chain": 3,
                                       "max_per_hour": 0})  # fmt: skip
    create_automation(client, "start", {"on": "custom.go", "do": _log("go"), "max_per_hour": 0})
    client.store.append_event("custom.go", "x:1", actor="me")
    engine = Engine(client)
    for _ in range(10):
        engine.tick()
    echo = list_actions(client, automation="echo")
    assert sorted(a.depth for a in echo) == [2, 3, 4]  # start is 1; echo runs at 2 and 3, and 4 is refused
    (refused,) = [a for a in echo if a.status == "skipped"]
    assert "chain too long" in refused.outcome["reason"] and refused.depth == 4


def test_cron_fires_once_and_paused_rules_ignore_events(client: Client) -> None:
    made = create_automation(client, "nightly", {"on": {"cron": "0 2 * * *"}, "do": _log("nightly")})
    assert made.anchor_at is not None
    engine = Engine(client)
    assert engine.tick(now=made.anchor_at + MIN) == []
    day = 24 * 60 * MIN
    first = engine.tick(now=made.anchor_at + 3 * day)  # down for three days: the newest fire runs once
    assert [a.cause for a in first if a.status == "pending"] == [a.cause for a in first][:1]
    assert len([a for a in list_actions(client) if a.status == "succeeded"]) == 1
    assert engine.tick(now=made.anchor_at + 3 * day) == []
    create_automation(client, "quiet", {"on": "custom.x", "do": _log("x")})
    set_paused(client, "quiet", True)
    client.store.append_event("custom.x", "x:1", actor="me")
    engine.tick()
    assert list_actions(client, automation="quiet") == []  # paused: the event passed unacted on
    set_paused(client, "quiet", False)
    engine.tick()
    assert list_actions(client, automation="quiet") == []  # and it is not replayed after resuming


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"on": "monitor.alert", "do": {"action": "retrain"}}, "not one of"),
        ({"on": "monitor.alert", "do": {"action": "run_pipeline"}}, "needs 'pipeline'"),
        ({"on": "monitor.alert", "do": {"action": "deploy", "endpoint": "e", "size": 3}}, "has no field 'size'"),
        ({"on": "monitor.alert", "where": "payload.x >> 3", "do": _log()}, "column"),
        ({"on": {"cron": "0 2 * * *"}, "where": "payload.x == 1", "do": _log()}, "drop 'where'"),
        ({"on": {"cron": "every day"}, "do": _log()}, "Cron expression .every day. is not valid"),
        ({"on": "monitor.alert", "do": _log(), "cooldown": "soon"}, "duration like"),
        ({"on": "monitor.alert", "do": _log(), "max_chain": 0}, "max_chain"),
        ({"on": "monitor.alert", "do": {"action": "notify", "webhook": "ftp://x"}}, r"http\(s\) URL, got .ftp://x."),
        ({"do": _log()}, "needs 'on'"),
        ({"on": "monitor.alert", "do": _log(), "colour": "red"}, "no field 'colour'"),
    ],
)
def test_bad_specs_are_refused_naming_the_value(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_spec(spec)


def test_templates_fill_from_the_event() -> None:
    event = {"id": 7, "type": "model.version_registered", "subject": "model:churn/3", "actor": "a", "time": 1,
             "payload": {"metrics": {"auc": 0.9}}}  # fmt: skip
    assert render({"model": "${subject}", "n": "${payload.metrics.auc}", "t": "v${id}"}, event) == {
        "model": "model:churn/3", "n": 0.9, "t": "v7"}  # fmt: skip
    with pytest.raises(InvalidInput, match=r"\$\{payload.nope\} names nothing"):
        render("${payload.nope}", event)


def test_the_workspace_file_declares_automations(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    init_workspace(root)
    config = root / ".mloop" / "config.toml"
    table = (
        '\n[automations.retrain]\non = "monitor.alert"\nwhere = "payload.signal == \'data_drift\'"\ncooldown = "30m"\n'
        'do = { action = "run_pipeline", pipeline = "train", params = { data = "sensors@latest" } }\n'
    )
    config.write_text(config.read_text() + table)
    c = Client(workspace=init_workspace(root))
    try:
        create_automation(c, "by-hand", {"on": "x.y", "do": _log()})
        first = apply_config(c)
        assert first.created == ["retrain"] and apply_config(c).unchanged == ["retrain"]
        made = c.store.get_automation("retrain")
        assert made.spec["cooldown_s"] == 1800 and made.spec["do"]["params"] == {"data": "sensors@latest"}
        assert apply_config(c, {}).deleted == ["retrain"]  # gone from the file: deleted; by-hand stays
        assert [a.name for a in c.store.list_automations().items] == ["by-hand"]
        with pytest.raises(InvalidInput, match=r"\[automations.by-hand\].*made by hand"):
            apply_config(c, {"by-hand": {"on": "x.y", "do": _log()}})
        with pytest.raises(InvalidInput, match=r"\[automations.bad\]"):
            apply_config(c, {"bad": {"on": "x.y"}})
    finally:
        c.close()
