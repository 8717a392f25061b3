"""``run_pipeline`` actions run by a real ``mloop scheduler``: each event handled exactly once, and each handled
event's pipeline run finished exactly once, across kill -9 of the scheduler at random moments. The lineage runs
from the event's subject to the run. (``bench/bench_automation.py`` runs 20 trials.)"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mloop.automation import create_automation, list_actions
from mloop.automation.engine import Engine
from mloop.automation.pipeline_action import ACTION_TAG
from mloop.pipelines import publish
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

PIPELINE = """
import time
from mloop.pipelines import Pipeline, step

@step
def work(*, label: str = "x", seconds: float = 0.3) -> str:
    time.sleep(seconds)
    return label.upper()

retrain = Pipeline("retrain", [work])
"""


def _workspace(tmp_path: Path) -> Client:
    root = tmp_path / "ws"
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "retrain_flow.py").write_text(PIPELINE)
    client = Client(workspace=init_workspace(root))
    publish(client, f"{tmp_path / 'project' / 'retrain_flow.py'}:retrain")
    return client


def _scheduler(client: Client) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLOOP_URI": client.settings.store_uri, "MLOOP_ARTIFACT_URI": client.artifacts.uri}
    return subprocess.Popen([sys.executable, "-m", "mloop", "scheduler", "--interval", "0.2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _finished_runs(client: Client, action_id: str) -> int:
    runs = client.store.search_runs(filter=f"tags.`{ACTION_TAG}` = '{action_id}'", max_results=50).items
    return sum(1 for r in runs if r.status.value == "FINISHED")


def test_exactly_once_across_scheduler_kill_9(tmp_path: Path) -> None:
    client = _workspace(tmp_path)
    do = {"action": "run_pipeline", "pipeline": "retrain", "params": {"work.label": "${payload.name}"}}
    create_automation(
        client,
        "retrain-on-data",
        {"on": "custom.data_arrived", "where": "payload.rows > 0", "max_per_hour": 0, "do": do},
    )
    for i in range(4):
        client.store.append_event("custom.data_arrived", f"data:sensors/{i + 1}", actor="me",
                                  payload={"rows": 10 + i, "name": f"v{i}"})  # fmt: skip
    rng = random.Random(7)
    for _ in range(3):  # three kill -9 at random moments (while claiming, starting runs, waiting for them)
        process = _scheduler(client)
        time.sleep(rng.uniform(0.3, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
    process = _scheduler(client)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            actions = list_actions(client)
            if len(actions) == 4 and all(a.status == "succeeded" for a in actions):
                break
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    actions = list_actions(client)
    assert sorted(a.cause for a in actions) == [f"event:{e}" for e in sorted(a.event_id or 0 for a in actions)]
    assert len(actions) == 4 and [a.status for a in actions] == ["succeeded"] * 4, [a.error for a in actions]
    assert [_finished_runs(client, a.id) for a in actions] == [1, 1, 1, 1]  # each effect exactly once
    for a in actions:
        run = client.get_run(str(a.outcome["run"]).removeprefix("run:"))
        assert run.tags["mloop.trigger"] == "automation:retrain-on-data" and run.actor == a.actor
        source = client.store.list_events(after=(a.event_id or 1) - 1, limit=1).items[0].subject
        edges = client.store.list_lineage(a.outcome["run"], direction="up")
        assert any(e.source == source and e.relation == "triggered" for e in edges)
    client.close()


def test_a_failing_pipeline_fails_its_action(tmp_path: Path) -> None:
    client = _workspace(tmp_path)
    create_automation(client, "bad-params", {"on": "custom.go", "do": {
        "action": "run_pipeline", "pipeline": "retrain", "params": {"work.nope": 1}}})  # fmt: skip
    client.store.append_event("custom.go", "x:1", actor="me")
    engine = Engine(client)
    engine.tick()
    (failed,) = list_actions(client)
    assert failed.status == "failed" and "nope" in (failed.error or "")
    client.close()


def test_a_run_stopped_with_the_scheduler_is_started_again(tmp_path: Path) -> None:
    client = _workspace(tmp_path)
    do = {"action": "run_pipeline", "pipeline": "retrain", "params": {"work.seconds": 3.0}}
    create_automation(client, "slow", {"on": "custom.go", "do": do})
    client.store.append_event("custom.go", "x:1", actor="me")
    engine = Engine(client)
    engine.tick()  # claims and starts the run
    time.sleep(1.5)
    engine.stop()  # Ctrl-C / SIGTERM of the scheduler: the run ends KILLED
    (stopped,) = list_actions(client)
    assert stopped.status == "running" and _finished_runs(client, stopped.id) == 0
    again = Engine(client)
    deadline = time.monotonic() + 60
    while list_actions(client)[0].status == "running" and time.monotonic() < deadline:
        again.tick()
        time.sleep(0.2)
    (done,) = list_actions(client)
    assert done.status == "succeeded" and done.attempts == 2 and _finished_runs(client, done.id) == 1
    client.close()
