"""Actions inside the loop: promotion through the gate (promoted, refused with its reasons, waiting for an
approval until `mloop models approve`), notifications to a real local webhook and a command, rollback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.automation import create_automation, list_actions
from mloop.automation.engine import Engine
from mloop.store.protocols import ModelEvents
from mloop.tracking.client import Client


@pytest.fixture
def split(client: Client, tmp_path: Path) -> Any:
    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=(n, 4))
    y = (2.5 * x[:, 0] - 1.5 * x[:, 1] + 0.3 * x[:, 2] + rng.logistic(size=n) > 0).astype(int)
    path = tmp_path / "churn.parquet"
    pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(label=y).to_parquet(path)
    mloop.Dataset.add(path, "churn", client=client)
    return mloop.split_dataset("data:churn/1", holdout=0.3, seed=0, stratify="label", client=client)


def _fit(split: Any, columns: list[str]) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = split.train.to_pandas()
    model = make_pipeline(make_column_transformer(("passthrough", columns), remainder="drop"), LogisticRegression())
    return model.fit(train.drop(columns=["label"]), train["label"])


def test_promotion_inside_the_loop_goes_through_the_gate(client: Client, split: Any) -> None:
    first = mloop.register_model(_fit(split, ["c", "d"]), "churn")
    client.store.move_model_alias("churn", "production", first.version, expected=None, actor="me")
    create_automation(client, "promote-better", {
        "on": "model.version_registered", "where": "subject matches 'model:churn/*'",
        "do": {"action": "promote", "alias": "production", "evaluate_on": split.holdout.ref,
               "policy": "beats('production', metric='roc_auc', margin=0.01)"},
        "max_per_hour": 0})  # fmt: skip
    strong = mloop.register_model(_fit(split, ["a", "b", "c", "d"]), "churn")
    engine = Engine(client)
    engine.tick()
    (promoted,) = list_actions(client)
    assert promoted.status == "succeeded", promoted.error
    assert promoted.outcome["model"] == strong.ref and promoted.outcome["previous"] == first.version
    assert client.store.get_model_version("churn", alias="production").version == strong.version
    moved = client.store.list_events(types=[ModelEvents.ALIAS_MOVED]).items[-1]
    assert moved.actor == promoted.actor  # the store records the automation (and its action) as the actor
    worse = mloop.register_model(_fit(split, ["d"]), "churn")
    engine.tick()
    refused = list_actions(client)[0]
    assert refused.status == "refused" and refused.outcome["model"] == worse.ref
    assert any("beats" in r and "measured" in r for r in refused.outcome["reasons"])
    assert client.store.get_model_version("churn", alias="production").version == strong.version  # never promoted


def test_an_approval_policy_waits_for_mloop_models_approve(client: Client, split: Any) -> None:
    create_automation(client, "to-staging", {
        "on": "model.version_registered",
        "do": {"action": "promote", "alias": "staging", "policy": "approvals(1)",
               "evaluate_on": split.holdout.ref}})  # fmt: skip
    version = mloop.register_model(_fit(split, ["a", "b"]), "churn")
    engine = Engine(client)
    engine.tick()
    (waiting,) = list_actions(client)
    assert waiting.status == "waiting_approval", waiting.outcome
    assert "approvals" in waiting.outcome["reasons"][0]
    engine.tick()
    assert list_actions(client)[0].status == "waiting_approval"  # nothing happens without an approval
    mloop.approve("churn", version.version, to="staging", comment="looks good", client=client)
    Engine(client).tick()  # also after a restart: the approval event resumes it
    (done,) = list_actions(client)
    assert done.status == "succeeded" and done.attempts == 2
    assert client.store.get_model_version("churn", alias="staging").version == version.version


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type("Receiver", (_Receiver,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.bodies
    server.shutdown()
    server.server_close()


def test_notify_a_webhook_and_a_command(client: Client, webhook: tuple[str, list[dict[str, Any]]],
                                        tmp_path: Path) -> None:  # fmt: skip
    url, bodies = webhook
    out = tmp_path / "hook.json"
    create_automation(client, "page", {"on": "monitor.alert", "do": {
        "action": "notify", "webhook": url, "message": "drift on ${subject}: ${payload.figures.value}"}})  # fmt: skip
    create_automation(client, "script", {"on": "monitor.alert", "do": {
        "action": "notify", "command": ["sh", "-c", f"cat > {out}"]}})  # fmt: skip
    create_automation(client, "down", {"on": "monitor.alert", "do": {
        "action": "notify", "webhook": "http://127.0.0.1:9/nobody", "retries": 2, "timeout": 0.5}})  # fmt: skip
    client.store.append_event("monitor.alert", "monitor:sensors", actor="m", payload={"figures": {"value": 0.4}})
    Engine(client).tick()
    assert [b["message"] for b in bodies] == ["drift on monitor:sensors: 0.4"]
    assert bodies[0]["event"]["payload"]["figures"] == {"value": 0.4} and bodies[0]["automation"] == "page"
    assert json.loads(out.read_text())["automation"] == "script"
    statuses = {a.automation: (a.status, a.error) for a in list_actions(client)}
    assert statuses["page"][0] == statuses["script"][0] == "succeeded"
    assert statuses["down"][0] == "failed" and "did not accept the notification after 2 attempt" in statuses["down"][1]


def test_rollback_a_model_alias(client: Client, split: Any) -> None:
    a = mloop.register_model(_fit(split, ["a"]), "churn")
    b = mloop.register_model(_fit(split, ["a", "b"]), "churn")
    client.store.move_model_alias("churn", "production", a.version, expected=None, actor="me")
    client.store.move_model_alias("churn", "production", b.version, expected=a.version, actor="me")
    undo = {"action": "rollback", "model": "churn", "alias": "production"}
    create_automation(client, "undo", {"on": "custom.bad_release", "do": undo})
    client.store.append_event("custom.bad_release", "model:churn/2", actor="me")
    Engine(client).tick()
    (done,) = list_actions(client)
    assert done.status == "succeeded", done.error
    assert client.store.get_model_version("churn", alias="production").version == a.version


def test_a_refusal_in_a_chain_started_by_an_alert_is_noted_on_the_alert(client: Client, split: Any) -> None:
    champion = mloop.register_model(_fit(split, ["a", "b", "c", "d"]), "churn")
    client.store.move_model_alias("churn", "production", champion.version, expected=None, actor="me")
    worse = mloop.register_model(_fit(split, ["d"]), "churn")
    create_automation(client, "retry-on-alert", {"on": "monitor.alert", "do": {
        "action": "promote", "model": worse.ref, "evaluate_on": split.holdout.ref,
        "policy": "beats('production', metric='roc_auc')"}})  # fmt: skip
    client.store.append_event("monitor.alert", "monitor:churn", actor="mloop-monitor",
                              payload={"alert": "a" * 32, "state": "opened", "signal": "data_drift"})  # fmt: skip
    Engine(client).tick()
    (refused,) = list_actions(client)
    assert refused.status == "refused"
    (note,) = client.store.list_events(types=["monitor.alert_noted"]).items
    assert note.subject == "monitor:churn" and note.payload["alert"] == "a" * 32
    assert note.payload["status"] == "refused" and "beats" in note.payload["why"] and note.actor == refused.actor


def test_deploy_rolls_a_version_out_as_a_canary_and_rollback_stops_it(client: Client, split: Any) -> None:
    from mloop.deployments import endpoints

    stable = mloop.register_model(_fit(split, ["a", "b"]), "churn")
    endpoints.create(client, "churn-api", [stable.ref.removeprefix("model:")], steps="20,100", start_now=False)
    create_automation(client, "ship", {"on": "model.version_registered", "where": f"subject != '{stable.ref}'",
                                       "do": {"action": "deploy", "endpoint": "churn-api"}})  # fmt: skip
    undo = {"action": "rollback", "endpoint": "churn-api"}
    create_automation(client, "undo", {"on": "custom.canary_bad", "do": undo})
    new = mloop.register_model(_fit(split, ["a", "b", "c"]), "churn")
    engine = Engine(client)
    engine.tick()
    (shipped,) = list_actions(client, automation="ship")
    assert shipped.status == "succeeded" and shipped.outcome["rollout"] == "canary", shipped.error
    spec = client.store.get_endpoint("churn-api").spec
    assert spec["canary"]["model"] == new.ref and {t["model"]: t["weight"] for t in spec["traffic"]} == {
        stable.ref: 80.0, new.ref: 20.0}  # fmt: skip
    started = client.store.list_events(subject="deployment:churn-api", types=["deployment.rollout_started"]).items
    assert started[-1].actor == shipped.actor and "automation ship" in started[-1].payload.get("cause", "")
    client.store.append_event("custom.canary_bad", "deployment:churn-api", actor="me")
    engine.tick()
    (undone,) = list_actions(client, automation="undo")
    assert undone.status == "succeeded", undone.error
    after = client.store.get_endpoint("churn-api").spec
    assert after["canary"] is None and [t["model"] for t in after["traffic"]] == [stable.ref]
