"""Endpoints (``deployment:<name>``): desired state (the spec, versioned by ``generation``) and actual state.

The spec is written by users (``mloop deploy create|update``) and by the rollout controller; both go through
:meth:`EndpointStore.update_endpoint` with the generation they read (compare-and-swap), so a rollout step never
overwrites a user's change made meanwhile. Each spec change records one ``deployment.*`` event carrying its
actor and cause. The status (processes, ports, restarts, the rollout's progress) is reported by the supervisor;
a routine report records no event, a change of phase records ``deployment.status_changed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mloop.entities import Endpoint, Page

__all__ = ["WRITES", "DeploymentEvents", "EndpointStore"]


class DeploymentEvents:
    CREATED = "deployment.created"
    UPDATED = "deployment.updated"
    DELETED = "deployment.deleted"
    STATUS_CHANGED = "deployment.status_changed"
    ROLLOUT_STARTED = "deployment.rollout_started"
    ROLLOUT_STEP = "deployment.rollout_step"
    ROLLOUT_FINISHED = "deployment.rollout_finished"
    ROLLED_BACK = "deployment.rolled_back"

    SPEC_CHANGES = (UPDATED, ROLLOUT_STARTED, ROLLOUT_STEP, ROLLOUT_FINISHED, ROLLED_BACK)


WRITES: dict[str, str | None] = {
    "create_endpoint": DeploymentEvents.CREATED,
    "update_endpoint": DeploymentEvents.UPDATED,  # or the rollout event the caller names (SPEC_CHANGES)
    "set_endpoint_status": None,  # a routine report; with ``event=``, that event (STATUS_CHANGED)
    "delete_endpoint": DeploymentEvents.DELETED,
}


class EndpointStore(Protocol):
    def create_endpoint(self, name: str, *, spec: Mapping[str, Any], actor: str, cause: str | None = None) -> Endpoint:
        """A new endpoint at generation 1 (AlreadyExists if the name is taken). The caller validates ``spec``
        (the store keeps it as given, as JSON)."""
        ...

    def get_endpoint(self, name: str) -> Endpoint: ...

    def list_endpoints(self, *, cursor: str | None = None, limit: int = 100) -> Page[Endpoint]:
        """By name."""
        ...

    def update_endpoint(
        self, name: str, *, spec: Mapping[str, Any], actor: str, cause: str | None = None,
        expected_generation: int | None = None, event: str = DeploymentEvents.UPDATED,
        payload: Mapping[str, Any] | None = None,
    ) -> Endpoint:  # fmt: skip
        """Replace the spec (generation + 1) and record ``event`` (one of ``DeploymentEvents.SPEC_CHANGES``) with
        ``payload``, the actor and the cause. Conflict if ``expected_generation`` is given and the stored one
        differs; no change and no event if the spec is the same and ``event`` is ``UPDATED``."""
        ...

    def set_endpoint_status(
        self, name: str, status: Mapping[str, Any], *, actor: str, event: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Endpoint:  # fmt: skip
        """Store the actual state; with ``event`` (``STATUS_CHANGED``) also record it with ``payload``."""
        ...

    def delete_endpoint(self, name: str, *, actor: str, cause: str | None = None) -> Endpoint: ...
