"""Published pipelines (immutable versions of a definition), schedules and their fires. Frozen values, no I/O.

``to_dict()`` gives each value's JSON shape (plain dicts, lists and scalars, keys in a fixed order): the CLI's
``--json`` prints it and the REST server will return it, so both stay the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.entities.datasets import ManifestEntry

__all__ = ["PipelineParam", "PipelineVersion", "PublishedPipeline", "Schedule", "ScheduleFire"]


@dataclass(frozen=True)
class PipelineParam:
    """One parameter of a published pipeline: ``STEP.NAME``, its type's name and its JSON default."""

    name: str
    type: str
    default: Any = None
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default, "required": self.required}


@dataclass(frozen=True)
class PublishedPipeline:
    id: str
    name: str
    created_at: int
    latest_version: int | None = None
    version_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "latest_version": self.latest_version, "version_count": self.version_count,
                "created_at": self.created_at, "id": self.id}  # fmt: skip


@dataclass(frozen=True)
class PipelineVersion:
    """An immutable published definition: the snapshot of its code (``files``) and what it exposes.

    ``digest`` identifies the whole definition (code, entry point, parameters, steps): publishing the same
    definition again returns this version. ``file`` is the pipeline file's path inside the snapshot and
    ``variable`` the ``Pipeline`` variable in it; ``source`` is where it was published from.
    """

    id: str
    pipeline_id: str
    name: str
    version: int
    digest: str
    code_digest: str
    file: str
    variable: str
    source: str
    created_at: int
    actor: str
    params: tuple[PipelineParam, ...] = ()
    steps: tuple[str, ...] = ()
    files: tuple[ManifestEntry, ...] = ()
    description: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"pipeline:{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "name": self.name, "version": self.version, "id": self.id,
            "pipeline_id": self.pipeline_id, "digest": self.digest, "code_digest": self.code_digest,
            "file": self.file, "variable": self.variable, "source": self.source, "created_at": self.created_at,
            "actor": self.actor, "description": self.description, "aliases": list(self.aliases),
            "steps": list(self.steps), "params": [p.to_dict() for p in self.params],
            "files": [f.to_dict() for f in self.files],
        }  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    """A cron schedule (UTC) that triggers a published pipeline with stored parameter overrides.

    ``version`` ``None`` follows the newest published version at each fire. ``missed`` is the policy for fire
    times that passed while no scheduler ran: ``skip`` or ``run-once``. Times are UTC milliseconds; nominal fire
    times at or before ``anchor_at`` are never fired (creation, resume and each claimed fire move it).
    ``next_fire_at`` is computed by the library, not stored.
    """

    id: str
    name: str
    pipeline: str
    cron: str
    created_at: int
    actor: str
    anchor_at: int
    version: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    missed: str = "skip"
    paused: bool = False
    last_fire_at: int | None = None
    next_fire_at: int | None = None

    @property
    def target(self) -> str:
        return self.pipeline if self.version is None else f"{self.pipeline}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "pipeline": self.pipeline, "version": self.version, "cron": self.cron,
            "timezone": "UTC", "params": dict(self.params), "missed": self.missed, "paused": self.paused,
            "last_fire_at": self.last_fire_at, "next_fire_at": self.next_fire_at, "anchor_at": self.anchor_at,
            "created_at": self.created_at, "actor": self.actor, "id": self.id,
        }  # fmt: skip


@dataclass(frozen=True)
class ScheduleFire:
    """A claimed fire: schedule ``schedule`` fired for nominal time ``fire_time`` (``missed`` earlier times
    were coalesced into it or skipped)."""

    schedule: str
    fire_time: int
    claimed_at: int
    actor: str
    missed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "fire_time": self.fire_time, "claimed_at": self.claimed_at,
                "actor": self.actor, "missed": self.missed}  # fmt: skip
