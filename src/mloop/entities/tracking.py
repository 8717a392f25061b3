"""Experiments, runs and what is logged to them. Frozen values, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["ArtifactEntry", "Experiment", "Metric", "RunRecord", "RunStatus"]


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    created_at: int
    deleted: bool = False


@dataclass(frozen=True)
class Metric:
    """One point of a metric's history. ``timestamp`` is in milliseconds."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0

    def __eq__(self, other: object) -> bool:  # NaN == NaN for stored values
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (math.isnan(self.value) and math.isnan(other.value))
        return (self.key, self.step, self.timestamp) == (
            other.key,
            other.step,
            other.timestamp,
        ) and same_value

    def __hash__(self) -> int:
        return hash((self.key, self.step, self.timestamp))


@dataclass(frozen=True)
class ArtifactEntry:
    """A file logged to a run: its logical path inside the run and the content digest."""

    path: str
    digest: str
    size: int
    created_at: int = 0


@dataclass(frozen=True)
class RunRecord:
    """A run as stored. ``metrics`` holds the latest value of each metric."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_id: str | None = None
    actor: str = ""
    environment_digest: str | None = None
    deleted: bool = False
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"run:{self.id}"

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time
