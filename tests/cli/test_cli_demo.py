"""``mloop demo`` runs the whole closed loop on a fresh folder in real processes: data, pipeline, gate, endpoint,
monitor, drift, the automations retraining, promoting and rolling out with no manual step, a worse model refused.
It stops every process it started, also on Ctrl-C; the CLI then finds what it made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_cases import Invoke

_MLOOP = [sys.executable, "-c", "from mloop.cli.app import main; main()"]


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if p and _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.slow
def test_demo_closes_the_loop_and_stops_what_it_started(mloop: Invoke, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    target = tmp_path / "demo"
    done = subprocess.run([*_MLOOP, "demo", "--dir", str(target), "--json"], capture_output=True, text=True,
                          timeout=400, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-5000:]
    result: dict[str, Any] = json.loads(done.stdout)
    progress = done.stderr  # --json: progress on stderr, the summary on stdout
    assert [p["name"] for p in result["phases"]] == ["data", "train", "deploy", "watch", "drift", "loop",
                                                     "refusal", "report"]  # fmt: skip
    assert all(p["ok"] and p["seconds"] > 0 for p in result["phases"])
    assert result["data"]["v1"] == "data:sensors/1" and result["data"]["v2"] == "data:sensors/2"
    assert result["pipeline"] == "pipeline:retrain/1"
    # no alert on undrifted traffic; drift alerts on the drifted window
    assert [w["breaches"] for w in result["monitor"]["before_drift"]] == [[]]
    assert "dataset_drift" in result["monitor"]["alerts_opened"]
    # the automations: one retrain for the alert storm (the other matches skipped by the cool-down) ...
    actions = result["automations"]
    retrains = [a for a in actions if a["automation"] == "retrain-on-drift"]
    ran = [a for a in retrains if a["status"] != "skipped"]
    assert len(ran) == 1 and ran[0]["status"] == "succeeded" and ran[0]["outcome"]["registered"] == ["model:sensors/2"]
    assert len(retrains) == len(result["monitor"]["alerts_opened"])
    assert all("cool-down" in a["outcome"]["reason"] for a in retrains if a["status"] == "skipped")
    promotions = {a["outcome"].get("model"): a["status"] for a in actions if a["automation"] == "promote-retrained"}
    assert promotions["model:sensors/2"] == "succeeded" and promotions["model:sensors/3"] == "refused"
    # ... the challenger beat the champion with confidence, was rolled out as a canary and promoted
    assert result["champion"] == "model:sensors/1"
    assert result["challenger"] == result["production"] == "model:sensors/2"
    comparison = result["comparison"]
    assert comparison["metric"] == "roc_auc" and comparison["ci_low"] > 0.02 and comparison["b"] > comparison["a"]
    assert comparison["gate"]["passed"] and "(passed,bythepromote-retrainedautomation)" in "".join(progress.split())
    assert result["endpoint"]["rollout"] == ["50%", "100%", "promoted"]
    assert result["manual_steps_after_drift"] == 0 and result["drift_to_production_s"] > 0
    chain = result["loop_events"]  # alert to 100%: every step written by an automation or the rollout controller
    assert {e["by"] for e in chain} == {"automation", "rollout"}
    steps = [e["type"] for e in chain]
    for step in ("model.version_registered", "model.evaluated", "model.alias_moved", "deployment.rollout_started",
                 "deployment.rollout_finished"):  # fmt: skip
        assert step in steps, steps
    assert steps.index("model.version_registered") < steps.index("model.alias_moved") < steps.index(
        "deployment.rollout_started") < steps.index("deployment.rollout_finished")  # fmt: skip
    traffic = result["endpoint"]["traffic"]
    assert traffic["errors"] == 0 and set(traffic["by_model"]) == {"model:sensors/1", "model:sensors/2"}
    # the worse model was refused by the gate, inside the loop
    refused = result["refused"]
    assert refused["version"] == "model:sensors/3" and not refused["report"]["passed"]
    assert any(check.startswith("beats(") for check in refused["failed"])
    assert "FAIL" in progress and "sensors@production stays model:sensors/2" in progress
    report = Path(result["report"])
    assert report.is_file() and report.read_text().lstrip().lower().startswith("<!doctype html")
    # every process it started is stopped
    assert result["stopped"] == ["scheduler", "endpoint sensors"] and not result["interrupted"]
    assert set(result["processes"]) == {"scheduler", "endpoint sensors", "endpoint sensors (server)"}
    assert _gone(list(result["processes"].values())) == [] and _ours(target) == []

    monkeypatch.chdir(target)  # the CLI finds what the demo made
    lineage = json.loads(mloop("lineage", "model:sensors@production", "--json").stdout)
    upstream = lineage["upstream"]["children"]
    assert {"ref": "monitor:sensors", "relation": "triggered"} in [
        {"ref": n["ref"], "relation": n["relation"]} for n in upstream]  # fmt: skip
    assert [n["ref"] for n in lineage["evaluated_on"]["children"]] == ["data:sensors-holdout/2"]
    history = json.loads(mloop("automations", "history", "--json").stdout)
    assert {a["automation"] for a in history} == {"retrain-on-drift", "promote-retrained"}
    status = json.loads(mloop("deploy", "status", "sensors", "--json").stdout)
    assert status["phase"] == "stopped" and not status["running"] and status["traffic"] == {"model:sensors/2": 1.0}
    assert (target / "retrain_pipeline.py").is_file() and (target / "scheduler.log").is_file()


def _ours(folder: Path) -> list[int]:
    """Processes whose environment names ``folder`` (every process the demo starts gets its stores' URIs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if str(folder).encode() in (entry / "environ").read_bytes() and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "when"), [(signal.SIGINT, "scheduler running (pid "),
                                               (signal.SIGTERM, "[3/8]")])  # fmt: skip
def test_an_interrupt_stops_every_process_the_demo_started(tmp_path: Path, signum: int, when: str) -> None:
    """Ctrl-C once the scheduler and the endpoint run, or SIGTERM while the endpoint starts: the demo stops
    everything it started (scheduler, supervisor, serving process) and exits with an error."""
    target = tmp_path / "demo"
    process = subprocess.Popen([*_MLOOP, "demo", "--dir", str(target)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    for line in process.stdout:
        lines.append(line)
        if when in line or time.monotonic() > deadline:
            break
    assert when in lines[-1], "".join(lines)
    started = _ours(target)
    process.send_signal(signum)
    rest, _ = process.communicate(timeout=120)
    output = "".join(lines) + rest
    assert process.returncode != 0, output
    assert "Interrupted: stopping what the demo started" in output and "Traceback" not in output, output
    if signum == signal.SIGINT:
        assert len(started) >= 3, started  # scheduler, supervisor, server (at least)
        assert "stopped: scheduler, endpoint sensors" in output, output
    assert _gone(started) == [] and _ours(target) == [], output


def test_demo_runs_on_a_fresh_folder(tmp_path: Path) -> None:
    from mloop.cli.demo.tour import demo_root
    from mloop.errors import InvalidInput
    from mloop.workspace import init_workspace

    assert demo_root(None, cwd=tmp_path) == tmp_path / "mloop-demo"
    (tmp_path / "mloop-demo").mkdir()
    (tmp_path / "mloop-demo-2").mkdir()
    assert demo_root(None, cwd=tmp_path) == tmp_path / "mloop-demo-3"
    assert demo_root(tmp_path / "x", cwd=tmp_path) == tmp_path / "x"
    init_workspace(tmp_path / "used").close()
    with pytest.raises(InvalidInput, match="already holds an mloop workspace; the demo runs on a fresh folder"):
        demo_root(tmp_path / "used")


def test_demo_says_how_to_put_mloop_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.cli.demo.tour import path_hint

    monkeypatch.setenv("PATH", str(tmp_path))  # no mloop here
    hint = path_hint()
    assert hint is not None and ("activate" in hint or "PATH" in hint)
    (tmp_path / "mloop").write_text("#!/bin/sh\n")
    (tmp_path / "mloop").chmod(0o755)
    assert path_hint() is None
