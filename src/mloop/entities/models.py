"""Registered models, their versions, aliases, evaluations and approvals. Frozen values, no I/O.

``to_dict()`` gives each value's JSON shape (plain dicts, lists and scalars, keys in a fixed order): the CLI's
``--json`` prints it and the REST server will return it, so both stay the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.entities.datasets import ManifestEntry

__all__ = ["Approval", "Evaluation", "Model", "ModelFile", "ModelVersion"]


@dataclass(frozen=True)
class ModelFile(ManifestEntry):
    """One file of a model version: its path inside the model folder, size and content digest."""


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    created_at: int
    latest_version: int | None = None
    version_count: int = 0
    aliases: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "created_at": self.created_at, "latest_version": self.latest_version,
                "version_count": self.version_count, "aliases": dict(self.aliases)}  # fmt: skip


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
    tags: Mapping[str, str] = field(default_factory=dict)  # e.g. mloop.profile.* (set after registration)

    @property
    def ref(self) -> str:
        return f"model:{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "name": self.name, "version": self.version, "id": self.id, "model_id": self.model_id,
            "flavor": self.flavor, "status": self.status, "aliases": list(self.aliases),
            "created_at": self.created_at, "actor": self.actor, "description": self.description,
            "run_id": self.run_id, "source": self.source, "datasets": list(self.datasets),
            "code_commit": self.code_commit, "target": self.target, "files": [f.to_dict() for f in self.files],
            "signature": None if self.signature is None else dict(self.signature),
            "input_example": self.input_example, "environment": dict(self.environment), "params": dict(self.params),
            "metrics": dict(self.metrics), "tags": dict(self.tags),
        }  # fmt: skip


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape. ``report`` is where a caller wrote the HTML report to a local file (``mloop evaluate
        --report`` fills it in); it is ``None`` here: the stored report is ``report_digest``."""
        return {
            "id": self.id, "model": self.model_ref, "data": self.data_ref, "task": self.task, "rows": self.rows,
            "metrics": dict(self.metrics), "latency_ms": dict(self.latency_ms),
            "importance": [{"feature": f, "mean": m, "std": s} for f, m, s in self.importance],
            "report_digest": self.report_digest, "report": None,
            "comparison": None if self.comparison is None else dict(self.comparison), "created_at": self.created_at,
            "actor": self.actor,
        }  # fmt: skip


@dataclass(frozen=True)
class Approval:
    id: str
    model_ref: str
    alias: str
    actor: str
    roles: tuple[str, ...]
    comment: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape, as listed under the version it approves (``mloop models show --json``)."""
        return {"alias": self.alias, "actor": self.actor, "roles": list(self.roles), "comment": self.comment,
                "created_at": self.created_at}  # fmt: skip
