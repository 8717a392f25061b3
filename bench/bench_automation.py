"""The automation engine (issue #14): exactly once across kill -9, a storm of alerts, reaction time.

    .venv/bin/python bench/bench_automation.py [--trials 20] [--storm 1000] [--json]

1. **Exactly once across a scheduler kill -9 at random moments.** One workspace, a published one-step pipeline
   (0.3 s of work) and an automation "on ``custom.data_arrived`` do ``run_pipeline``". Each trial appends two
   events, starts ``mloop scheduler`` and kills it with SIGKILL after a random 0.2-3 s (while it claims, starts
   runs, waits for them, or records outcomes). A last scheduler then runs until every action has finished.
   Counted: actions per event (must be 1), finished pipeline runs per action (must be 1), attempts.
2. **A storm of alerts.** ``--storm`` ``monitor.alert`` events written over a minute of event time (all at once,
   the worst case for the engine) against a retrain automation with ``cooldown`` 10m and ``max_per_hour`` 3, and
   one with ``max_per_hour`` 3 alone: how many retrains start (bar: at most the configured number), how long the
   engine takes to handle the storm (events/s).
3. **Reaction time**: from an event's commit to its action starting, with the scheduler ticking every second
   (median of 20).

No peer runs here: none of the reference systems has a local event-driven automation engine to run side by
side (Azure ML's event triggers run in Azure Event Grid; ZenML's triggers and MLflow's webhooks are hosted
features), so the figures are absolute, with their limits named in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PIPELINE = """
import time
from mloop.pipelines import Pipeline, step

@step
def work(*, label: str = "x", seconds: float = 0.3) -> str:
    time.sleep(seconds)
    return label.upper()

retrain = Pipeline("retrain", [work])
"""


def _workspace(folder: Path) -> Any:
    from mloop.pipelines import publish
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    (folder / "project").mkdir(parents=True)
    (folder / "project" / "bench_flow.py").write_text(PIPELINE)
    client = Client(workspace=init_workspace(folder / "ws"))
    publish(client, f"{folder / 'project' / 'bench_flow.py'}:retrain")
    return client


def _scheduler(client: Any, interval: float = 0.2) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLOOP_URI": client.settings.store_uri, "MLOOP_ARTIFACT_URI": client.artifacts.uri}
    return subprocess.Popen([sys.executable, "-m", "mloop", "scheduler", "--interval", str(interval)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def exactly_once(folder: Path, trials: int, seed: int = 11) -> dict[str, Any]:
    from mloop.automation import create_automation, list_actions
    from mloop.automation.pipeline_action import ACTION_TAG

    client = _workspace(folder)
    do = {"action": "run_pipeline", "pipeline": "retrain", "params": {"work.label": "${payload.name}"}}
    create_automation(client, "retrain", {"on": "custom.data_arrived", "max_per_hour": 0, "do": do})
    rng = random.Random(seed)
    events = 0
    kills: list[float] = []
    for trial in range(trials):
        for _ in range(2):
            client.store.append_event("custom.data_arrived", f"data:sensors/{events + 1}", actor="bench",
                                      payload={"name": f"v{events}"})  # fmt: skip
            events += 1
        process = _scheduler(client)
        kills.append(rng.uniform(0.2, 3.0))
        time.sleep(kills[-1])
        process.send_signal(signal.SIGKILL)
        process.wait()
        print(f"  trial {trial + 1}/{trials}: killed after {kills[-1]:.2f} s", file=sys.stderr)
    process = _scheduler(client)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 600:
            actions = list_actions(client, limit=10_000)
            if len(actions) == events and all(a.status == "succeeded" for a in actions):
                break
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    actions = list_actions(client, limit=10_000)
    per_event: dict[int, int] = {}
    for a in actions:
        per_event[a.event_id or 0] = per_event.get(a.event_id or 0, 0) + 1
    finished, all_runs = [], 0
    for a in actions:
        runs = client.store.search_runs(filter=f"tags.`{ACTION_TAG}` = '{a.id}'", max_results=50).items
        all_runs += len(runs)
        finished.append(sum(1 for r in runs if r.status.value == "FINISHED"))
    client.close()
    return {
        "trials": trials, "events": events, "actions": len(actions),
        "events_handled_once": sum(1 for n in per_event.values() if n == 1),
        "succeeded": sum(1 for a in actions if a.status == "succeeded"),
        "actions_with_one_finished_run": sum(1 for n in finished if n == 1),
        "finished_runs_total": sum(finished), "runs_started_total": all_runs,
        "attempts": {str(k): sum(1 for a in actions if a.attempts == k) for k in sorted({a.attempts for a in actions})},
        "kill_after_s": [round(k, 2) for k in kills],
        "ok": len(actions) == events and all(n == 1 for n in per_event.values()) and all(n == 1 for n in finished),
    }  # fmt: skip


def storm(folder: Path, alerts: int) -> dict[str, Any]:
    from mloop.automation import create_automation, list_actions
    from mloop.automation.engine import Engine

    client = _workspace(folder)
    do = {"action": "run_pipeline", "pipeline": "retrain"}
    create_automation(client, "cooled", {"on": "monitor.alert", "where": "payload.state == 'opened'", "do": do,
                                         "cooldown": "10m", "max_per_hour": 3})  # fmt: skip
    create_automation(client, "limited", {"on": "monitor.alert", "where": "payload.state == 'opened'", "do": do,
                                          "max_per_hour": 3})  # fmt: skip
    for i in range(alerts):
        payload = {"state": "opened", "signal": "data_drift", "feature": f"f{i % 20}"}
        client.store.append_event("monitor.alert", "monitor:sensors", actor="mloop-monitor", payload=payload)
    engine = Engine(client)
    t0 = time.perf_counter()
    engine.tick()
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"alerts": alerts, "engine_tick_s": round(seconds, 3),
                           "events_per_s": round(alerts / seconds)}  # fmt: skip
    for name in ("cooled", "limited"):
        actions = list_actions(client, automation=name, limit=100_000)
        out[name] = {"handled": len(actions), "retrains_started": sum(1 for a in actions if a.status != "skipped"),
                     "skipped": sum(1 for a in actions if a.status == "skipped")}  # fmt: skip
    engine.stop()
    client.close()
    return out


def reaction(folder: Path, samples: int = 20) -> dict[str, Any]:
    from mloop.automation import create_automation, list_actions

    client = _workspace(folder)
    create_automation(client, "note", {"on": "custom.ping", "max_per_hour": 0,
                                       "do": {"action": "notify", "log": True, "message": "ping"}})  # fmt: skip
    process = _scheduler(client, interval=1.0)
    delays = []
    try:
        time.sleep(2.0)
        for _ in range(samples):
            event = client.store.append_event("custom.ping", "x:1", actor="bench")
            while True:
                found = [a for a in list_actions(client, limit=5) if a.event_id == event.id and a.started_at]
                if found:
                    delays.append((found[0].started_at or 0) - event.time)
                    break
                time.sleep(0.01)
            time.sleep(random.uniform(0.0, 1.0))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        client.close()
    return {"samples": samples, "median_ms": statistics.median(delays), "max_ms": max(delays),
            "tick_interval_s": 1.0}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-automation-") as tmp:
        results["storm"] = storm(Path(tmp) / "storm", args.storm)
        results["reaction"] = reaction(Path(tmp) / "reaction")
        results["exactly_once"] = exactly_once(Path(tmp) / "once", args.trials)
    results["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    once, st, re_ = results["exactly_once"], results["storm"], results["reaction"]
    print(f"exactly once: {once['trials']} kill -9 trials, {once['events']} events -> {once['actions']} actions, "
          f"{once['events_handled_once']} handled once, {once['actions_with_one_finished_run']} with one finished "
          f"run; runs started {once['runs_started_total']}; attempts {once['attempts']}: "
          f"{'PASS' if once['ok'] else 'FAIL'}")  # fmt: skip
    for name in ("cooled", "limited"):
        print(f"storm of {st['alerts']} alerts, {name}: {st[name]['retrains_started']} retrains started, "
              f"{st[name]['skipped']} skipped (handled {st[name]['handled']})")  # fmt: skip
    print(f"engine: {st['engine_tick_s']} s for the storm ({st['events_per_s']} events/s)")
    print(f"reaction: median {re_['median_ms']:.0f} ms, max {re_['max_ms']:.0f} ms (tick every 1 s)")
    print(f"load average {results['load_average']} -> {results['load_average_after']}")
    return 0 if once["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
