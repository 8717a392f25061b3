"""Listing models and their versions, describing one version, and archiving a version.

Each function takes the :class:`~mloop.context.Context` to work on and writes through its store (the store
records the event of each change in the same transaction). Listings walk every page of the store's listing.
Aliases move only through the gates (:mod:`mloop.registry.promote`); archiving never moves one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.entities import Approval, Evaluation, Model, ModelVersion, iter_pages
from mloop.registry.loader import resolve_model

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["VersionDetails", "alias_history", "archive_version", "describe_version", "list_model_versions",
           "list_models", "set_version_tags"]  # fmt: skip


def list_models(client: Context) -> list[Model]:
    """Every registered model, in the store's order (by name)."""
    return list(iter_pages(lambda cursor: client.store.list_models(cursor=cursor)))


def list_model_versions(client: Context, name: str) -> list[ModelVersion]:
    """Every version of model ``name``, newest first (:class:`~mloop.errors.NotFound` if there is none)."""
    return list(iter_pages(lambda cursor: client.store.list_model_versions(name, cursor=cursor)))


def alias_history(client: Context, name: str, version: int) -> list[dict[str, Any]]:
    """Every move of an alias of model ``name`` that gave ``version`` that alias or took it from it, oldest first.

    Each move is ``{"alias", "version", "previous", "actor", "at", "reason"}`` (the store's alias history with
    the alias in front); the aliases looked at are those some version of the model holds now.
    """
    aliases = sorted({a for v in list_model_versions(client, name) for a in v.aliases})
    moves = [{"alias": alias, **move} for alias in aliases for move in client.store.model_alias_history(name, alias)]
    return sorted((m for m in moves if version in (m["version"], m["previous"])), key=lambda m: m["at"])


@dataclass(frozen=True)
class VersionDetails:
    """A model version with its evaluations (newest first), approvals (oldest first) and alias history."""

    version: ModelVersion
    evaluations: Sequence[Evaluation]
    approvals: Sequence[Approval]
    alias_history: Sequence[Mapping[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The version's JSON shape plus ``evaluations``, ``approvals`` and ``alias_history``."""
        return {**self.version.to_dict(), "evaluations": [e.to_dict() for e in self.evaluations],
                "approvals": [a.to_dict() for a in self.approvals],
                "alias_history": [dict(m) for m in self.alias_history]}  # fmt: skip


def describe_version(client: Context, ref: str) -> VersionDetails:
    """``model:<name>/<version>``, ``model:<name>@<alias>`` or ``model:<name>`` (the newest) with what is known
    about it: evaluations, approvals and the moves of aliases to or from it."""
    v = resolve_model(client, ref)
    return VersionDetails(
        v,
        client.store.list_evaluations(v.name, v.version),
        client.store.list_approvals(v.name, v.version),
        alias_history(client, v.name, v.version),
    )


def archive_version(client: Context, name: str, version: int) -> ModelVersion:
    """Archive ``name/version``: it stays loadable by number but can no longer receive an alias.

    A version that holds an alias is refused (:class:`~mloop.errors.Conflict`): promote another version first.
    The change is recorded as a ``model.version_archived`` event by the current actor.
    """
    return client.store.set_model_version_status(name, version, "archived", actor=client.actor)


def set_version_tags(client: Context, ref: str, tags: Mapping[str, str]) -> ModelVersion:
    """Set ``tags`` (text values; others stay) on the version ``ref`` names, resolved to one version first.

    Recorded as one ``model.version_tagged`` event by the current actor. ``mloop profile`` records its
    ``mloop.profile.*`` figures this way; ``mloop package --kubernetes`` reads them from ``ModelVersion.tags``.
    """
    v = resolve_model(client, ref)
    return client.store.set_model_version_tags(v.name, v.version, tags, actor=client.actor)
