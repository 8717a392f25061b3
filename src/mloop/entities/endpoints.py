"""Endpoints: a stable name that applications call, bound to model versions (see docs/deployments.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """An endpoint's desired state (``spec``, validated by :mod:`mloop.deployments.spec`) and its actual state
    (``status``, reported by the process that runs it), as stored in the workspace.

    ``generation`` grows by one with every change of the spec (a compare-and-swap guard for writers, and how a
    running endpoint notices a change); ``status_at`` is when the status was last reported (UTC ms).
    """

    id: str
    name: str
    spec: Mapping[str, Any]
    generation: int
    created_at: int
    updated_at: int
    actor: str
    status: Mapping[str, Any] = field(default_factory=dict)
    status_at: int | None = None

    @property
    def ref(self) -> str:
        return f"deployment:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (the CLI's ``--json``, the REST server)."""
        return {
            "name": self.name, "ref": self.ref, "generation": self.generation, "spec": dict(self.spec),
            "status": dict(self.status), "status_at": self.status_at, "created_at": self.created_at,
            "updated_at": self.updated_at, "actor": self.actor, "id": self.id,
        }  # fmt: skip
