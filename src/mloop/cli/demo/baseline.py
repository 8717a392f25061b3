"""The demo's first steps: where the loop starts. Sensor data versioned, the ``retrain`` pipeline published and
run, its model promoted through the gate, served by an endpoint that follows ``sensors@production`` with a
canary policy, watched by a monitor, and the automations that will close the loop.

Each function is one step of :func:`mloop.cli.demo.tour.run_demo` and uses the library as a user's script would.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from mloop.cli.demo.result import Tour
from mloop.errors import MloopError

__all__ = [
    "CANARY_POLICY",
    "CANARY_STEPS",
    "GATE",
    "MONITOR_SPEC",
    "PIPELINE_FILE",
    "ROWS",
    "WINDOW_ROWS",
    "add_data",
    "deploy",
    "known_windows",
    "next_windows",
    "publish_and_train",
    "watch",
    "write_pipeline_file",
]

PIPELINE_FILE = "retrain_pipeline.py"  # the demo's pipeline, copied into the demo folder for the user
ROWS = 6000  # readings per data version
WINDOW_ROWS = 600  # the monitor's count window
GATE = "evaluated() & min_metric('roc_auc', 0.7) & beats('production', metric='roc_auc', margin=0.02)"
CANARY_STEPS = (50.0, 100.0)  # short steps: the demo stays fast
CANARY_POLICY: dict[str, Any] = {"min_requests": 40, "dwell_seconds": 2.0}
_NUMERIC = ("temperature", "vibration", "pressure", "rpm", "hours_since_service")
MONITOR_SPEC: dict[str, Any] = {
    "window": {"rows": WINDOW_ROWS}, "grace_seconds": 0,
    # Wasserstein (in reference standard deviations) for every sensor: on 600-row windows of undrifted readings
    # it stays below 0.14; the drifted season moves it 0.3 to 1.5
    "drift": {"methods": {**dict.fromkeys(_NUMERIC, "wasserstein"), "machine_type": "jensenshannon"},
              "thresholds": dict.fromkeys(_NUMERIC, 0.2)},
    "prediction_drift": {"method": "jensenshannon"},
    "performance": {"metric": "roc_auc", "min": 0.7},
    "alerts": {"consecutive": 1, "notify": []},  # the demo prints alerts from the event log
}  # fmt: skip


def write_pipeline_file(root: Path) -> tuple[Path, bool]:
    """Copy the demo's pipeline to ``root/retrain_pipeline.py`` unless a copy is there; ``(path, edited)``.

    A copy that differs from this mloop's is the user's (edited, or from another release): it is kept, and the
    demo publishes this mloop's own file instead (from the package), so the demo always runs its own code.
    """
    source = Path(__file__).with_name("pipeline.py").read_text(encoding="utf-8")
    target = root / PIPELINE_FILE
    if not target.exists():
        target.write_text(source, encoding="utf-8")
        return target, False
    return target, target.read_text(encoding="utf-8") != source


def _add_table(tour: Tour, frame: Any, message: str) -> str:
    import mloop

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sensors.parquet"
        frame.to_parquet(path, index=False)
        added = mloop.Dataset.add(path, "sensors", message=message, client=tour.client)
    return str(added.dataset.ref)


def add_data(tour: Tour) -> None:
    """Step 1: a season of sensor readings, versioned as ``data:sensors/N``."""
    from mloop.cli.demo.sensors import LABEL, sensor_table

    frame = sensor_table(ROWS, seed=tour.seed)
    ref = _add_table(tour, frame, "sensor readings with failure labels (mloop demo)")
    tour.result.data["v1"] = ref
    missing = int(frame.drop(columns=[LABEL]).isna().sum().sum())
    tour.steps.note(f"{ref}: {len(frame):,} readings of {frame['machine_type'].nunique()} machine types, "
                    f"{frame[LABEL].mean():.1%} failures, {missing} missing sensor values")  # fmt: skip


def _run(tour: Tour, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trigger ``pipeline:retrain`` (the published code) and return its ``register`` step's output."""
    from mloop.pipelines.materialisers import loads
    from mloop.pipelines.trigger import trigger

    result = trigger("retrain", params=params, client=tour.client, triggered_by="user:mloop-demo")
    run_id = str(result.run_id)
    tour.result.pipeline_runs.append(run_id)
    if not result.ok:
        failed = next((s for s in result.steps.values() if s.status == "failed"), None)
        where = failed.step if failed else "?"
        last = ((failed.error if failed else None) or "failed").strip().splitlines()[-1]
        raise MloopError(f"The demo's pipeline failed at step {where!r}: {last}. See its log with "
                         f"`mloop pipelines logs {run_id} {where}` in {tour.root}.")  # fmt: skip
    stored = result.steps["register"].outputs["register"]
    out: dict[str, Any] = loads(tour.client.artifacts.get_bytes(stored["digest"]), stored["materialiser"])
    steps = ", ".join(f"{s.step} {s.status}" for s in result.steps.values())
    tour.steps.note(f"pipeline run {run_id[-8:]}: {steps} ({result.duration_s:.1f} s)")
    return out


def publish_and_train(tour: Tour) -> None:
    """Step 2: publish ``retrain`` (data=sensors@latest), run it, set the gate, promote through it."""
    import mloop
    from mloop.pipelines.publish import publish
    from mloop.registry.promote import set_policy

    path, edited = write_pipeline_file(tour.root)
    source = path
    if edited:
        source = Path(__file__).with_name("pipeline.py")
        tour.steps.note(f"{PIPELINE_FILE} differs from this mloop's: kept as it is; the demo publishes its own")
    published = publish(tour.client, f"{source}:retrain", description="mloop demo: retrain on sensors@latest")
    tour.result.pipeline = published.version.ref
    where = "this mloop's own copy" if edited else path.name
    tour.steps.note(f"published {published.version.ref} from {where} (prepare → fit → register; "
                    "parameter data = sensors@latest)")  # fmt: skip
    registered = _run(tour)
    tour.result.data.update(train_1=registered["train"], holdout_1=registered["holdout"])
    evaluation = mloop.evaluate(registered["version"], registered["holdout"], target="failure", client=tour.client)
    tour.steps.note(f"{registered['version']} evaluated on private {registered['holdout']}: roc_auc "
                    f"{evaluation.metrics.get('roc_auc', float('nan')):.3f}")  # fmt: skip
    set_policy(tour.client, "sensors", "production", GATE)
    tour.steps.note(f"gate for sensors@production: {GATE}")
    version = int(registered["version"].rpartition("/")[2])
    report = mloop.promote("sensors", version, to="production", client=tour.client)
    tour.result.champion = tour.result.production = registered["version"]
    tour.steps.note(f"{registered['version']} promoted to production ({len(report.checks)} checks passed)")


def deploy(tour: Tour) -> None:
    """Step 3: endpoint ``sensors`` following ``sensors@production`` with a canary policy, on loopback."""
    from mloop.deployments.endpoints import create

    tour.children.endpoint("sensors")  # stopped at the end, even if starting it is interrupted
    endpoint = create(tour.client, "sensors", ["sensors@production"], follow=True, steps=CANARY_STEPS,
                      policy=CANARY_POLICY, host="127.0.0.1", cause="mloop demo")  # fmt: skip
    tour.children.pids["endpoint sensors"] = int(endpoint.status.get("supervisor_pid") or 0)
    tour.children.pids["endpoint sensors (server)"] = int(endpoint.status.get("pid") or 0)
    url = f"http://127.0.0.1:{endpoint.spec['port']}"
    tour.result.endpoint.update(name="sensors", url=url, rollout=[])
    steps = " → ".join(f"{s:g}%" for s in CANARY_STEPS)
    tour.steps.note(f"{url} serves {tour.result.champion}; follows sensors@production; canary {steps}, "
                    f"{CANARY_POLICY['min_requests']} requests and {CANARY_POLICY['dwell_seconds']:g} s a "
                    "step")  # fmt: skip


def known_windows(tour: Tour) -> set[int]:
    """The starts of the monitor's windows recorded so far."""
    return {r.window_start for r in tour.client.store.list_monitor_results("sensors", limit=1_000_000)}


def next_windows(tour: Tour, known: set[int], *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Wait for the scheduler to record the monitor's window(s) after ``known`` (it looks every half second; the
    collector flushes every second) and return them, each with the signals it found in breach."""
    store = tour.client.store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [r for r in store.list_monitor_results("sensors", limit=1_000_000) if r.window_start not in known]
        if fresh:
            windows: dict[int, dict[str, Any]] = {}
            for r in fresh:
                w = windows.setdefault(r.window_start, {"window_start": r.window_start, "window_end": r.window_end,
                                                        "rows": 0, "breaches": []})  # fmt: skip
                w["rows"] = max(w["rows"], int(r.rows))
                if r.status == "breach":
                    w["breaches"].append(f"{r.signal}:{r.feature}" if r.feature else r.signal)
            return [windows[k] for k in sorted(windows)]
        time.sleep(0.2)
    raise MloopError(
        f"The scheduler recorded no monitor window within {timeout:g} s of the traffic; see "
        f"`mloop monitors show sensors` and the scheduler's log ({tour.root / 'scheduler.log'})."
    )


def watch(tour: Tour) -> None:
    """Step 4: the monitor (reference: the training data), the automations, the scheduler, clean traffic."""
    from mloop.cli.demo.automations import create_automations
    from mloop.cli.demo.sensors import sensor_table
    from mloop.cli.demo.traffic import Sender
    from mloop.monitoring.monitors import create_monitor

    reference = tour.result.data["train_1"]
    create_monitor(tour.client, "sensors", {"endpoint": "sensors", **MONITOR_SPEC,
                                            "reference": {"dataset": reference, "target": "failure"}})  # fmt: skip
    tour.steps.note(f"monitor sensors: windows of {WINDOW_ROWS} rows against {reference}; an alert on the first "
                    "breaching window")  # fmt: skip
    for line in create_automations(tour.client):
        tour.steps.note(line)
    process = tour.children.start_scheduler(interval=0.5)
    tour.steps.note(f"scheduler running (pid {process.pid}): it computes the monitor's windows and runs the "
                    "automations")  # fmt: skip
    tour.sender = Sender(tour.result.endpoint["url"], label="failure")
    known = known_windows(tour)
    sent = tour.sender.send(sensor_table(WINDOW_ROWS, seed=tour.seed + 100), batch=50)
    windows = next_windows(tour, known)
    tour.result.monitor["before_drift"] = windows
    breaches = sorted({b for w in windows for b in w["breaches"]})
    tour.steps.note(f"{sent} readings scored with their labels; the scheduler's monitor window: " +
                    (f"breaches {breaches}" if breaches else "no drift, no alert"),
                    style="red" if breaches else "green")  # fmt: skip
