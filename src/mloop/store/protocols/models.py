"""Model versions, aliases (moved by compare-and-swap), evaluations and approvals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.entities import Approval, Evaluation, Model, ModelFile, ModelVersion, Page

__all__ = ["WRITES", "ModelEvents", "ModelStore"]


class ModelEvents:
    VERSION_REGISTERED = "model.version_registered"
    VERSION_ARCHIVED = "model.version_archived"
    ALIAS_MOVED = "model.alias_moved"
    EVALUATED = "model.evaluated"
    APPROVED = "model.approved"
    VERSION_TAGGED = "model.version_tagged"


WRITES: dict[str, str | None] = {
    "create_model_version": ModelEvents.VERSION_REGISTERED,
    "move_model_alias": ModelEvents.ALIAS_MOVED,
    "set_model_version_status": ModelEvents.VERSION_ARCHIVED,
    "add_evaluation": ModelEvents.EVALUATED,
    "add_approval": ModelEvents.APPROVED,
    "set_model_version_tags": ModelEvents.VERSION_TAGGED,
}


class ModelStore(Protocol):
    def create_model_version(
        self,
        name: str,
        *,
        flavor: str,
        files: Sequence[ModelFile],
        actor: str,
        run_id: str | None = None,
        source: str = "",
        signature: Mapping[str, Any] | None = None,
        input_example: str | None = None,
        environment: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[str] = (),
        code_commit: str | None = None,
        target: str | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Register the next version of ``name`` (created on first use); numbering is race-free."""
        ...

    def get_model_version(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion: ...

    def list_models(self, *, cursor: str | None = None, limit: int = 100) -> Page[Model]: ...

    def list_model_versions(self, name: str, *, cursor: str | None = None, limit: int = 100) -> Page[ModelVersion]: ...

    def move_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        expected: int | str | None = "any",
        actor: str,
        reason: str = "promote",
        detail: Mapping[str, Any] | None = None,
    ) -> ModelVersion | None:
        """Compare-and-swap: move only if the alias still points at ``expected``; else Conflict.

        One ``model.alias_moved`` event records the move with ``reason`` and ``detail`` (e.g. a gate report).
        """
        ...

    def model_alias_history(self, name: str, alias: str) -> list[dict[str, Any]]: ...

    def set_model_version_status(self, name: str, version: int, status: str, *, actor: str) -> ModelVersion: ...

    def set_model_version_tags(self, name: str, version: int, tags: Mapping[str, str], *, actor: str) -> ModelVersion:
        """Set (insert or overwrite) ``tags`` on one version; other tags stay. One ``model.version_tagged`` event."""
        ...

    def add_evaluation(
        self,
        name: str,
        version: int,
        *,
        data_ref: str,
        task: str,
        metrics: Mapping[str, Any],
        actor: str,
        rows: int,
        importance: Sequence[tuple[str, float, float]] = (),
        latency_ms: Mapping[str, float] | None = None,
        report_digest: str | None = None,
        comparison: Mapping[str, Any] | None = None,
    ) -> Evaluation: ...

    def list_evaluations(self, name: str, version: int, *, data_ref: str | None = None) -> list[Evaluation]: ...

    def add_approval(
        self, name: str, version: int, *, alias: str, actor: str, roles: Sequence[str] = (), comment: str = ""
    ) -> Approval: ...

    def list_approvals(self, name: str, version: int, *, alias: str | None = None) -> list[Approval]: ...
