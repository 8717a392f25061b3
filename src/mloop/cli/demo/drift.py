"""The demo's second half: drift arrives, the monitor raises an alert, and the automations do the rest, with no
manual step: retrain on ``sensors@latest``, promote through the gate, roll out as a canary, promote to 100%.
Then a worse model is refused by the same gate.

The demo only sends traffic and watches: it reads the event log (``store.list_events(after=...)``) and the
automations' action records as they are written, and prints each one as it happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mloop.cli.demo.baseline import ROWS, WINDOW_ROWS, known_windows, next_windows
from mloop.cli.demo.result import Tour
from mloop.entities import Event, now_ms
from mloop.errors import MloopError

__all__ = ["close_loop", "follow", "inject_drift", "refuse_worse", "show_new", "skip_events", "skipped_line"]

_CHAIN_TYPES = frozenset({"model.version_registered", "model.evaluated", "model.alias_moved", "deployment.updated",
                          "deployment.rollout_started", "deployment.rollout_step", "deployment.rollout_finished",
                          "deployment.rolled_back", "dataset.version_created"})  # fmt: skip
_ROLLOUT_ACTOR = "mloop-rollout"  # the endpoint supervisor's rollout controller
LOOP_TIMEOUT = 150.0  # seconds for the whole automated chain, alert to 100% (about 25 s on 2 loaded cores)


def _action_line(action: Any) -> str:
    took = "" if action.duration_ms is None else f" in {action.duration_ms / 1000:.1f} s"
    o = action.outcome
    if action.status == "succeeded" and o.get("run"):
        detail = f": {o['run']} registered {', '.join(o.get('registered') or []) or 'nothing'}"
    elif action.status == "succeeded" and o.get("alias"):
        detail = f": {o.get('model')} → @{o['alias']}" + (" (already)" if o.get("already") else "")
    elif action.status == "refused":
        detail = f": {o.get('model')} not promoted ({len(o.get('reasons') or [])} checks failed)"
    else:
        detail = f": {action.error}" if action.error else ""
    return f"automation {action.automation} (cause {action.cause}): {action.status}{took}{detail}"


def show_new(tour: Tour, since_ms: int) -> list[Event]:
    """Print the automation actions that changed (skipped ones are counted, not printed: see
    :func:`skipped_line`) and the loop's events written since the last call."""
    from rich.text import Text

    from mloop.cli.demo.automations import actions_since
    from mloop.cli.demo.show import describe_event

    seen = tour.actions_seen
    for action in actions_since(tour.client, since_ms):
        if seen.get(action.id) != action.status:
            seen[action.id] = action.status
            if action.status != "skipped":
                style = {"succeeded": "green", "failed": "red", "refused": "yellow"}.get(action.status, "blue")
                tour.out.print(Text("    " + _action_line(action), style=style))
    events = tour.client.store.list_events(after=tour.events_after, limit=500).items
    for event in events:
        tour.events_after = event.id
        line = describe_event(event)
        if line is not None:
            tour.out.print(Text(f"    {line[0]}", style=line[1]))
    return list(events)


def skipped_line(tour: Tour, since_ms: int) -> str | None:
    """How many matches the automations skipped and why (cool-down, rate limit): one alert storm, one retrain."""
    from collections import Counter

    from mloop.cli.demo.automations import actions_since

    reasons = Counter(f"{a.automation}: {str(a.outcome.get('reason', '')).split(':')[0]}"
                      for a in actions_since(tour.client, since_ms) if a.status == "skipped")  # fmt: skip
    if not reasons:
        return None
    return "skipped (recorded, not acted on): " + ", ".join(f"{n} x {why}" for why, n in sorted(reasons.items()))


def skip_events(tour: Tour) -> None:
    """Show only what happens from now on."""
    while events := tour.client.store.list_events(after=tour.events_after, limit=1000).items:
        tour.events_after = events[-1].id


def follow(tour: Tour, done: Callable[[Event], bool], *, timeout: float, what: str, since_ms: int = 0) -> Event:
    """:func:`show_new` until an event for which ``done`` is true (returned, after the rest of its batch is
    shown); MloopError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        events = show_new(tour, since_ms)
        found = next((e for e in events if done(e)), None)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise MloopError(f"The demo waited {timeout:g} s for {what} and it did not happen. See "
                             f"`mloop automations history`, `mloop events list` and the scheduler's log "
                             f"({tour.root / 'scheduler.log'}).")  # fmt: skip
        if not events:
            time.sleep(0.2)


def inject_drift(tour: Tour) -> int:
    """Step 5: a drifted season as ``data:sensors/2`` and drifted traffic; the monitor's next window raises the
    alert. Returns the time (ms, the event's) the first alert was recorded."""
    from mloop.cli.demo.baseline import _add_table
    from mloop.cli.demo.sensors import sensor_table

    assert tour.sender is not None
    skip_events(tour)
    before = tour.events_after
    ref = _add_table(tour, sensor_table(ROWS, seed=tour.seed + 1, drift=True),
                     "a season later: sensors shifted, a new failure pattern (mloop demo)")  # fmt: skip
    tour.result.data["v2"] = ref
    tour.steps.note(f"{ref}: the same plant a season later (hotter, rougher, lower pressure; a new wear mode)")
    known = known_windows(tour)
    sent = tour.sender.send(sensor_table(WINDOW_ROWS, seed=tour.seed + 200, drift=True), batch=50)
    tour.steps.note(f"{sent} drifted readings scored with their labels")
    windows = next_windows(tour, known)
    tour.result.monitor["after_drift"] = windows
    opened = [e for e in tour.client.store.list_events(types=["monitor.alert"], after=before, limit=1000).items
              if e.payload.get("state") == "opened"]  # fmt: skip
    tour.result.monitor["alerts_opened"] = [e.payload["signal"] + (f":{e.payload['feature']}" if e.payload.get(
        "feature") else "") for e in opened]  # fmt: skip
    if not opened:
        raise MloopError(f"The monitor saw the drifted window without opening an alert ({windows}); run "
                         f"`mloop monitors show sensors` in {tour.root}.")  # fmt: skip
    show_new(tour, since_ms=now_ms())  # the alerts the window opened (automation actions: next step)
    return min(e.time for e in opened)


def close_loop(tour: Tour, alert_ms: int, since_ms: int) -> None:
    """Step 6: no manual step. Traffic keeps flowing (so the canary gets requests) while the automations retrain,
    promote through the gate and the endpoint rolls the new version out; then the gate's statistics."""
    from mloop.cli.demo.sensors import sensor_table
    from mloop.cli.demo.traffic import Background
    from mloop.registry.evaluate import compare_versions

    assert tour.sender is not None
    champion = tour.result.champion
    rollout: list[str] = tour.result.endpoint.setdefault("rollout", [])

    chain: list[dict[str, Any]] = tour.result.loop_events

    def finished(event: Event) -> bool:
        if event.type in _CHAIN_TYPES:  # who did each step of the loop: automations and the rollout controller
            by = "automation" if event.actor.startswith("automation:") else \
                "rollout" if event.actor == _ROLLOUT_ACTOR else "manual"  # fmt: skip
            chain.append({"id": event.id, "type": event.type, "subject": event.subject, "actor": event.actor,
                          "by": by})  # fmt: skip
        if event.type in ("deployment.rollout_started", "deployment.rollout_step"):
            rollout.append(f"{event.payload.get('canary_percent', 0):g}%")
        elif event.type == "model.alias_moved" and event.subject == "model:sensors@production":
            tour.result.challenger = f"model:sensors/{event.payload.get('version')}"
            tour.result.comparison["gate"] = event.payload.get("report") or {}
        elif event.type == "deployment.rolled_back":
            raise MloopError(f"The canary was rolled back: {event.payload.get('reason')}. See `mloop deploy status "
                             f"sensors` in {tour.root}.")  # fmt: skip
        return event.type == "deployment.rollout_finished" and event.payload.get("model") not in (None, champion)

    with Background(tour.sender, sensor_table(3000, seed=tour.seed + 300, drift=True)) as traffic:
        event = follow(tour, finished, timeout=LOOP_TIMEOUT, what="the retrained model to reach 100% of traffic",
                       since_ms=since_ms)  # fmt: skip
    if traffic.failure:
        raise MloopError(traffic.failure)
    rollout.append("promoted")
    tour.result.manual_steps_after_drift = sum(1 for e in chain if e["by"] == "manual")
    if (line := skipped_line(tour, since_ms)) is not None:
        tour.steps.note(line)
    tour.result.drift_to_production_s = round((event.time - alert_ms) / 1000, 2)  # as the store recorded both
    tour.result.production = str(event.payload.get("model"))
    counts = tour.sender.counts()["by_model"]
    tour.steps.note("answers by version while it rolled out: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    holdout = tour.client.store.list_evaluations("sensors", int(tour.result.production.rpartition("/")[2]))
    data = holdout[0].data_ref if holdout else tour.result.data.get("holdout_2", "")
    tour.result.data["holdout_2"] = data
    stats = compare_versions(tour.client, tour.result.production, champion, data, metric="roc_auc", record=False)
    tour.result.comparison.update({k: stats[k] for k in ("metric", "a", "b", "improvement", "ci_low", "ci_high",
                                                          "confidence", "data") if k in stats})  # fmt: skip
    tour.steps.note(f"challenger {tour.result.production} vs champion {champion} on private {data}: roc_auc "
                    f"{stats['b']:.3f} vs {stats['a']:.3f}, gain {stats['improvement']:+.3f} "
                    f"(95% CI {stats['ci_low']:+.3f} to {stats['ci_high']:+.3f}); the gate asked for > +0.02",
                    style="green")  # fmt: skip
    gate = tour.result.comparison.get("gate") or {}
    if gate.get("checks"):
        from mloop.cli.demo.show import print_gate

        print_gate(tour.out, gate, title=f"gate: {tour.result.production} → sensors@production (passed, by the "
                                         "promote-retrained automation)")  # fmt: skip


def refuse_worse(tour: Tour, since_ms: int) -> None:
    """Step 7: a retrain with a bug (shuffled labels) registers a worse model; the same automation tries to
    promote it and the gate refuses it (the refusal is an event with the gate's table)."""
    from mloop.cli.demo.baseline import _run
    from mloop.cli.demo.show import print_gate

    production = tour.result.production
    registered = _run(tour, {"fit.shuffle_labels": True})
    worse = registered["version"]
    tour.steps.note(f"{worse} registered by a retrain with a bug (shuffled labels, -p fit.shuffle_labels=true)")
    event = follow(tour, lambda e: e.type == "model.promotion_refused" and e.subject == worse, timeout=60,
                   what=f"the gate's decision on {worse}", since_ms=since_ms)  # fmt: skip
    report: dict[str, Any] = dict(event.payload)
    failed = [c["check"] for c in report.get("checks", []) if not c["passed"]]
    tour.result.refused = {"version": worse, "failed": failed, "report": report}
    print_gate(tour.out, report, title=f"gate: {worse} → sensors@production (refused)")
    holder = tour.client.store.get_model_version("sensors", alias="production").ref
    if holder != production:
        raise MloopError(f"sensors@production moved to {holder} after the refusal of {worse}; expected {production}.")
    tour.steps.note(f"sensors@production stays {production}; the endpoint keeps serving it")
