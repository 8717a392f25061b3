"""Registered models, their versions, aliases, evaluations and approvals. Frozen values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Approval", "Evaluation", "Model", "ModelFile", "ModelVersion"]


@dataclass(frozen=True)
class ModelFile:
    path: str
    size: int
    digest: str


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    created_at: int
    latest_version: int | None = None
    version_count: int = 0
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: files with digests plus everything needed to trace and reload it."""

    id: str
    model_id: str
    name: str
    version: int
    flavor: str  # sklearn | python | script
    created_at: int
    actor: str
    files: tuple[ModelFile, ...] = ()
    run_id: str | None = None
    source: str = ""
    signature: Mapping[str, Any] | None = None
    input_example: str | None = None  # digest of a JSON/Parquet input example
    environment: Mapping[str, Any] = field(default_factory=dict)  # python + package lock
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    code_commit: str | None = None
    target: str | None = None  # label column, when known
    description: str = ""
    status: str = "active"  # active | archived
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"model:{self.name}/{self.version}"


@dataclass(frozen=True)
class Evaluation:
    id: str
    model_ref: str
    data_ref: str
    task: str
    metrics: Mapping[str, Any]
    created_at: int
    actor: str
    rows: int = 0
    importance: tuple[tuple[str, float, float], ...] = ()
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    report_digest: str | None = None
    comparison: Mapping[str, Any] | None = None  # champion/challenger result, when one was run


@dataclass(frozen=True)
class Approval:
    id: str
    model_ref: str
    alias: str
    actor: str
    roles: tuple[str, ...]
    comment: str
    created_at: int
