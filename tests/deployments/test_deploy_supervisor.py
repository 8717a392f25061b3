"""Endpoints on the local target, for real: the supervisor runs the server process, restarts it after kill -9,
rolls a healthy canary forward to 100%, rolls a failing one back by itself, follows an alias; the CLI drives it."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from deploy_models import Constant, Crashing
from typer.testing import CliRunner

import mloop
from mloop.deployments import endpoints
from mloop.store.protocols.endpoints import DeploymentEvents
from mloop.tracking.client import Client

# fast steps; a wide p99 slack: on a loaded 2-core CI machine 30-request p99s are noise (the rule is unit-tested)
FAST = {"min_requests": 30, "dwell_seconds": 0.5, "p99_min_requests": 30, "fail_fast_errors": 5, "p99_slack_ms": 500}


@pytest.fixture
def ws(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """model:c/1 -> 1.0, model:c/2 -> 2.0, model:bad/1 fails; the endpoint processes can import the models."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    for name, model in (("c", Constant(1.0)), ("c", Constant(2.0)), ("bad", Crashing())):
        with mloop.start_run(name) as run:
            run.log_model(model, name, signature_data=np.zeros((4, 2)))
    yield client
    for ep in endpoints.list_endpoints(client):
        endpoints.delete(client, ep.name)


def _post(url: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url + "/predict", data=b"[[0.5, 1.5]]", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _drive(ws: Client, name: str, until: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    """Send requests to the endpoint until ``until(endpoint)`` holds."""
    url = endpoints.show(ws, name)["url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _ in range(20):
            _post(url)
        ep = ws.store.get_endpoint(name)
        if until(ep):
            return ep
    raise AssertionError(f"timed out; status {ep.status}, spec {ep.spec}")


def _events(ws: Client, name: str) -> list[Any]:
    return ws.store.list_events(subject=f"deployment:{name}", limit=1000).items


def test_serves_and_restarts_the_server_after_kill_9(ws: Client) -> None:
    ep = mloop.create_endpoint("api", "c/1")  # the SDK, on the current client
    url = mloop.get_endpoint("api")["url"]
    assert _post(url) == (200, {"predictions": [1.0], "model": "model:c/1"})
    pid = ep.status["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = ws.store.get_endpoint("api").status
        if st.get("phase") == "running" and st.get("pid") not in (None, pid):
            break
        time.sleep(0.2)
    assert st["restarts"] == 1 and st["pid"] != pid
    assert _post(url)[0] == 200
    crashed = [e for e in _events(ws, "api") if e.type == DeploymentEvents.STATUS_CHANGED
               and e.payload.get("phase") == "crashed"]  # fmt: skip
    assert crashed and crashed[0].payload["exit_code"] == -9 and crashed[0].actor == "mloop-supervisor"
    assert endpoints.supervisor_alive(ws.store.get_endpoint("api"))


def test_a_healthy_canary_is_promoted_to_100_percent(ws: Client) -> None:
    endpoints.create(ws, "api", ["c/1"], policy=FAST)
    endpoints.update(ws, "api", canary="c/2")
    ep = _drive(ws, "api", lambda e: not e.spec.get("canary"))
    reasons = [e.payload.get("reason") for e in _events(ws, "api") if e.type.startswith("deployment.rol")]
    assert ep.spec["traffic"] == [{"model": "model:c/2", "weight": 100.0}], reasons
    assert ep.spec["previous"] == "model:c/1"
    kinds = [e.type for e in _events(ws, "api") if e.type.startswith("deployment.rollout")]
    assert kinds == [DeploymentEvents.ROLLOUT_STARTED, DeploymentEvents.ROLLOUT_STEP, DeploymentEvents.ROLLOUT_STEP,
                     DeploymentEvents.ROLLOUT_FINISHED]  # fmt: skip
    step = next(e for e in _events(ws, "api") if e.type == DeploymentEvents.ROLLOUT_STEP)
    assert step.payload["figures"]["canary"]["requests"] >= 30 and "canary 10% -> 50%" in step.payload["reason"]
    _drive(ws, "api", lambda e: e.status.get("generation_served") == e.generation)
    assert _post(endpoints.show(ws, "api")["url"])[1]["model"] == "model:c/2"


def test_a_failing_canary_is_rolled_back_within_its_window(ws: Client) -> None:
    endpoints.create(ws, "api", ["c/1"], policy=FAST)
    endpoints.update(ws, "api", canary="bad/1")
    ep = _drive(ws, "api", lambda e: not e.spec.get("canary"), timeout=30)
    assert ep.spec["traffic"] == [{"model": "model:c/1", "weight": 100.0}] and ep.spec["held_back"] == "model:bad/1"
    back = [e for e in _events(ws, "api") if e.type == DeploymentEvents.ROLLED_BACK]
    assert len(back) == 1 and back[0].actor == "mloop-rollout" and "error rate" in back[0].payload["reason"]
    assert back[0].payload["figures"]["canary"]["errors"] >= 5


def test_following_an_alias_rolls_out_its_new_version(ws: Client) -> None:
    ws.store.move_model_alias("c", "production", 1, expected=None, actor="t")
    endpoints.create(ws, "api", ["c@production"], follow=True, steps="100")
    ws.store.move_model_alias("c", "production", 2, expected=1, actor="t")
    ep = _drive(ws, "api", lambda e: e.spec["traffic"][0]["model"] == "model:c/2", timeout=30)
    finished = [e for e in _events(ws, "api") if e.type == DeploymentEvents.ROLLOUT_FINISHED]
    assert finished and finished[0].payload["cause"] == "model:c@production moved to model:c/2"
    assert ep.spec["previous"] == "model:c/1"
    endpoints.rollback(ws, "api")  # by hand: back to the previous version, and the alias is not followed again
    time.sleep(1.5)
    assert ws.store.get_endpoint("api").spec["traffic"] == [{"model": "model:c/1", "weight": 100.0}]


def test_the_cli_manages_an_endpoint(ws: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.cli.app import app

    monkeypatch.chdir(tmp_path / "ws")  # the workspace the `client` fixture made

    runner = CliRunner()
    made = runner.invoke(app, ["deploy", "create", "cli-ep", "-m", "c/1=80", "-m", "c/2=20", "--json"])
    assert made.exit_code == 0, made.output
    info = json.loads(made.output)[0]
    assert info["running"] and [t["weight"] for t in info["spec"]["traffic"]] == [80.0, 20.0]
    for _ in range(10):
        assert _post(info["url"])[0] == 200
    listed = json.loads(runner.invoke(app, ["deploy", "list", "--json"]).output)
    assert [e["name"] for e in listed] == ["cli-ep"]
    status = json.loads(runner.invoke(app, ["deploy", "status", "cli-ep", "--json"]).output)
    assert status["phase"] == "running" and status["restarts"] == 0
    bad = runner.invoke(app, ["deploy", "update", "cli-ep", "-m", "c/1=x"])
    assert bad.exit_code != 0 and "'x' in 'c/1=x' is not a number" in bad.output
    assert runner.invoke(app, ["deploy", "update", "cli-ep", "-m", "c/2"]).exit_code == 0
    assert ws.store.get_endpoint("cli-ep").spec["traffic"] == [{"model": "model:c/2", "weight": 100.0}]
    assert runner.invoke(app, ["deploy", "stop", "cli-ep"]).exit_code == 0  # the collector flushes on stop
    rows = json.loads(runner.invoke(app, ["deploy", "data", "cli-ep", "--since", "1h", "--json"]).output)
    assert len(rows) == 10 and {r["endpoint"] for r in rows} == {"cli-ep"}
    assert "Deleted endpoint cli-ep" in runner.invoke(app, ["deploy", "delete", "cli-ep"]).output
    missing = runner.invoke(app, ["deploy", "show", "cli-ep"])
    assert missing.exit_code != 0 and "mloop deploy list" in missing.output


@pytest.mark.parametrize("kind", ["nats", "redis"])
def test_a_streaming_endpoint_scores_events_and_follows_weight_changes(ws: Client, kind: str) -> None:
    from streamkit import NatsBroker, RedisBroker

    broker = NatsBroker() if kind == "nats" else RedisBroker()
    try:
        ep = endpoints.create(ws, "stream-ep", ["c/1"], stream=broker.url())
        assert ep.status["phase"] == "running"
        broker.publish([json.dumps({"id": f"e{i}", "inputs": {"0": 0.5, "1": 1.5}}).encode() for i in range(50)])
        first = broker.read(50)
        assert {m["id"] for m in first} == {f"e{i}" for i in range(50)}
        assert {(m["model"], m["prediction"]) for m in first} == {("model:c/1", 1.0)}
        endpoints.update(ws, "stream-ep", models=["c/2"])  # the consumer's router follows the stored spec
        time.sleep(1.5)
        broker.publish([json.dumps({"id": f"f{i}", "inputs": {"0": 0.5, "1": 1.5}}).encode() for i in range(20)])
        later = [m for m in broker.read(70) if m["id"].startswith("f")]
        assert len(later) == 20 and {m["model"] for m in later} == {"model:c/2"}
        port = ws.store.get_endpoint("stream-ep").spec["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        assert 'mloop_stream_events_scored_total{endpoint="stream-ep",model="model:c/1"} 50.0' in text
        assert "mloop_collector_rows_total" in text
        endpoints.stop(ws, "stream-ep")  # the collector flushes on a graceful stop
        from mloop.deployments.collected import read_collected

        assert read_collected(ws, "stream-ep").num_rows == 70
    finally:
        broker.close()


def test_a_supervisor_killed_with_9_is_replaced_by_start_and_only_one_runs(ws: Client) -> None:
    ep = endpoints.create(ws, "api", ["c/1"])
    old_supervisor, old_worker = ep.status["supervisor_pid"], ep.status["pid"]
    assert endpoints.start(ws, "api").status["supervisor_pid"] == old_supervisor  # already running: no second one
    os.kill(old_supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{old_worker}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{old_worker}").exists()  # its worker does not outlive it (nor hold the port)
    time.sleep(0.5)
    fresh = endpoints.start(ws, "api", timeout=60)  # sees a dead supervisor (the pid is gone) and starts another
    assert fresh.status["supervisor_pid"] != old_supervisor and fresh.status["phase"] == "running"
    assert _post(endpoints.show(ws, "api")["url"]) == (200, {"predictions": [1.0], "model": "model:c/1"})
