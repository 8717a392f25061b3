"""What a pipeline run (or plan) reports: one :class:`StepResult` per step, in a :class:`PipelineResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TAG", "PipelineResult", "StepResult"]


class TAG:
    """Tags on pipeline runs and step runs (a pipeline run is a parent run; its steps are child runs)."""

    PIPELINE = "mloop.pipeline"  # the pipeline's name, on both
    KIND = "mloop.pipeline.kind"  # "pipeline" or "step"
    FILE = "mloop.pipeline.file"  # the file that defines the pipeline (what resume loads)
    MODULE = "mloop.pipeline.module"  # its module name (imported by name unless loaded from a file)
    PROCESS = "mloop.pipeline.process"  # HOST:PID of the process running it (resume checks it is gone)
    RESUMED_FROM = "mloop.pipeline.resumed_from"  # on a resumed run: the pipeline run it resumed
    STEP = "mloop.step"
    KEY = "mloop.step.key"  # sha256:... of the key's components
    KEY_JSON = "mloop.step.key_json"  # the components themselves (decodable)
    OUTPUTS = "mloop.step.outputs"  # {output: {digest, size, materialiser, type, fallback}}
    STATUS = "mloop.step.status"  # ran / cached / failed / killed
    CACHED_FROM = "mloop.step.cached_from"  # the run whose outputs were reused
    REASON = "mloop.step.reason"  # why it ran or was reused
    ATTEMPTS = "mloop.step.attempts"
    ERROR = "mloop.step.error"


@dataclass(frozen=True)
class StepResult:
    """``status``: ``cached`` / ``ran`` / ``failed`` / ``skipped`` / ``killed`` (after a run), ``cached`` / ``to run``
    (plan). A step reused by ``resume`` from the run it resumes is ``cached`` (its reason says so)."""

    step: str
    status: str
    reason: str
    run_id: str | None = None
    key: str | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "status": self.status, "reason": self.reason, "run_id": self.run_id,
                "key": self.key, "outputs": self.outputs, "attempts": self.attempts, "error": self.error,
                "duration_s": self.duration_s}  # fmt: skip


@dataclass(frozen=True)
class PipelineResult:
    pipeline: str
    run_id: str | None
    status: str  # FINISHED / FAILED / KILLED, or "PLAN"
    steps: dict[str, StepResult]
    duration_s: float = 0.0
    resumed_from: str | None = None  # the pipeline run this one resumed (``mloop.pipelines.resume``)

    @property
    def ok(self) -> bool:
        return self.status in ("FINISHED", "PLAN")

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "run_id": self.run_id, "status": self.status,
                "duration_s": self.duration_s, "resumed_from": self.resumed_from,
                "steps": [s.to_dict() for s in self.steps.values()]}  # fmt: skip
