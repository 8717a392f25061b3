"""Events: the audit log and the bus automation listens to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventType"]


class EventType:
    """Names of the events this release writes. Later issues add more."""

    EXPERIMENT_CREATED = "experiment.created"
    RUN_STARTED = "run.started"
    RUN_FINISHED = "run.finished"
    RUN_DELETED = "run.deleted"
    RUN_RESTORED = "run.restored"
    RUN_PURGED = "run.purged"
    ARTIFACT_LOGGED = "artifact.logged"
    ARTIFACTS_COLLECTED = "artifacts.collected"
    WORKSPACE_INITIALISED = "workspace.initialised"
    DATASET_VERSION_CREATED = "dataset.version_created"
    DATASET_VERSION_DELETED = "dataset.version_deleted"
    DATASET_ALIAS_MOVED = "dataset.alias_moved"
    DATASET_HOLDOUT_READ = "dataset.holdout_read"
    DATASET_HOLDOUT_DENIED = "dataset.holdout_denied"
    DATASET_HOLDOUT_OVERRIDE = "dataset.holdout_override"
    LINEAGE_RECORDED = "lineage.recorded"
    MODEL_VERSION_REGISTERED = "model.version_registered"
    MODEL_VERSION_ARCHIVED = "model.version_archived"
    MODEL_ALIAS_MOVED = "model.alias_moved"
    MODEL_PROMOTION_REFUSED = "model.promotion_refused"
    MODEL_ROLLED_BACK = "model.rolled_back"
    MODEL_APPROVED = "model.approved"
    MODEL_EVALUATED = "model.evaluated"


@dataclass(frozen=True)
class Event:
    """``subject`` is a reference (``run:<id>``); ``id`` grows with every event written."""

    id: int
    type: str
    subject: str
    actor: str
    time: int
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (the CLI's ``--json``, the REST server)."""
        return {"id": self.id, "type": self.type, "subject": self.subject, "actor": self.actor, "time": self.time,
                "payload": dict(self.payload)}  # fmt: skip
