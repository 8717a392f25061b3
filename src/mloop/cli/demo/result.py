"""What a demo run made and measured (``mloop demo --json`` prints :meth:`DemoResult.to_dict`), and the state the
demo's steps share while it runs (:class:`Tour`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.cli.demo.children import Children
    from mloop.cli.demo.show import Steps
    from mloop.cli.demo.traffic import Sender
    from mloop.tracking.client import Client

__all__ = ["DemoResult", "Tour"]


@dataclass
class DemoResult:
    workspace: Path
    seconds: float = 0.0
    phases: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)  # v1, v2, their train splits and private holdouts
    pipeline: str = ""  # pipeline:retrain/N
    pipeline_runs: list[str] = field(default_factory=list)
    champion: str = ""  # the first production model
    challenger: str = ""  # the model the automation retrained
    production: str = ""  # who holds production at the end
    comparison: dict[str, Any] = field(default_factory=dict)  # challenger vs champion on the drifted holdout
    refused: dict[str, Any] = field(default_factory=dict)  # the worse model and the gate's report
    endpoint: dict[str, Any] = field(default_factory=dict)  # name, url, rollout events, traffic counts
    monitor: dict[str, Any] = field(default_factory=dict)  # windows before and after drift, alerts opened
    automations: list[dict[str, Any]] = field(default_factory=list)  # each action: automation, cause, status ...
    drift_to_production_s: float | None = None  # the first drift alert's event to rollout_finished's
    manual_steps_after_drift: int = 0  # loop steps written by a person, not an automation or the rollout
    loop_events: list[dict[str, Any]] = field(default_factory=list)  # the loop's steps, alert to 100%, and who
    report: str = ""  # the HTML monitoring report
    processes: dict[str, int] = field(default_factory=dict)  # what the demo started: name -> pid
    stopped: list[str] = field(default_factory=list)  # the processes the demo started and stopped
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace), "seconds": round(self.seconds, 2), "phases": self.phases,
            "data": self.data, "pipeline": self.pipeline, "pipeline_runs": self.pipeline_runs,
            "champion": self.champion, "challenger": self.challenger, "production": self.production,
            "comparison": self.comparison, "refused": self.refused, "endpoint": self.endpoint,
            "monitor": self.monitor, "automations": self.automations,
            "drift_to_production_s": self.drift_to_production_s,
            "manual_steps_after_drift": self.manual_steps_after_drift, "loop_events": self.loop_events,
            "report": self.report,
            "processes": self.processes, "stopped": self.stopped, "interrupted": self.interrupted,
        }  # fmt: skip

    def facts(self) -> list[tuple[str, str]]:
        """The summary's lines: what the loop made, in the order it made it."""
        c = self.comparison
        gain = (f"{c.get('metric')} +{c['improvement']:.3f} (95% CI {c['ci_low']:.3f} to {c['ci_high']:.3f}) "
                f"on {c.get('data')}") if "improvement" in c else "-"  # fmt: skip
        traffic = self.endpoint.get("traffic", {})
        rows = [
            ("data", f"{self.data.get('v1', '-')} → drifted {self.data.get('v2', '-')}"),
            ("champion", self.champion or "-"),
            ("drift alert", ", ".join(self.monitor.get("alerts_opened", [])) or "none"),
            ("retrained", f"{self.challenger or '-'} by the automation (pipeline {self.pipeline})"),
            ("challenger vs champion", gain),
            ("rollout", " → ".join(self.endpoint.get("rollout", [])) or "-"),
            ("production", self.production or "-"),
            ("refused", f"{self.refused.get('version', '-')}: " + "; ".join(self.refused.get("failed", []))),
            ("drift → production", "-" if self.drift_to_production_s is None else
             f"{self.drift_to_production_s:.1f} s, {self.manual_steps_after_drift} manual steps"),
            ("traffic", f"{traffic.get('requests', 0)} requests, {traffic.get('rows', 0)} rows, "
                        f"{traffic.get('feedback', 0)} labels, {traffic.get('errors', 0)} errors"),
            ("report", self.report or "-"),
        ]  # fmt: skip
        return rows


@dataclass
class Tour:
    """What the demo's steps share: the workspace, the console, the steps' printer, the processes started, the
    client of the endpoint, and the result being filled in."""

    client: Client
    root: Path
    out: Any
    steps: Steps
    children: Children
    result: DemoResult
    seed: int = 0
    sender: Sender | None = None
    events_after: int = 0  # the last event id shown (events are shown once, in order)
    actions_seen: dict[str, str] = field(default_factory=dict)  # automation action id -> the status shown
