"""Experiments, runs and what is logged to them. Frozen values, no I/O.

``to_dict()`` gives each value's JSON shape (plain dicts, lists and scalars, keys in a fixed order): the CLI's
``--json`` prints it and the REST server will return it, so both stay the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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

    def to_dict(self) -> dict[str, Any]:
        return {"experiment_id": self.id, "name": self.name, "created_at": self.created_at, "deleted": self.deleted}


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

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "step": self.step, "timestamp": self.timestamp}


@dataclass(frozen=True)
class ArtifactEntry:
    """A file logged to a run: its logical path inside the run and the content digest."""

    path: str
    digest: str
    size: int
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "digest": self.digest, "created_at": self.created_at}


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

    def to_dict(self) -> dict[str, Any]:
        """Attributes, then params, the latest metrics and tags (``mloop runs show --json`` adds the
        experiment's name after ``name``, the artifacts and an environment summary)."""
        return {
            "run_id": self.id, "name": self.name, "experiment_id": self.experiment_id, "status": self.status.value,
            "start_time": self.start_time, "end_time": self.end_time, "duration_ms": self.duration_ms,
            "actor": self.actor, "parent_id": self.parent_id, "deleted": self.deleted,
            "environment_digest": self.environment_digest, "params": dict(self.params),
            "metrics": dict(self.metrics), "tags": dict(self.tags),
        }  # fmt: skip
