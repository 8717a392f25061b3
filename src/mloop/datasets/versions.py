"""Listing datasets and their versions, and naming a version with an alias.

Each function takes the :class:`~mloop.context.Context` to work on and writes through its store (the store
records the event of each change in the same transaction). Listings walk every page of the store's listing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mloop.entities import Dataset, DatasetVersion, iter_pages

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["list_dataset_versions", "list_datasets", "set_dataset_alias"]


def list_datasets(client: Context) -> list[Dataset]:
    """Every dataset, in the store's order (by name)."""
    return list(iter_pages(lambda cursor: client.store.list_datasets(cursor=cursor)))


def list_dataset_versions(client: Context, name: str) -> list[DatasetVersion]:
    """Every version of dataset ``name``, newest first (:class:`~mloop.errors.NotFound` if there is none)."""
    return list(iter_pages(lambda cursor: client.store.list_dataset_versions(name, cursor=cursor)))


def set_dataset_alias(client: Context, name: str, version: int, alias: str) -> DatasetVersion:
    """Point ``data:<name>@<alias>`` at ``version``, moving the alias if it exists; returns that version.

    ``latest`` is computed (the newest version) and cannot be set. The move is recorded as a
    ``dataset.alias_moved`` event by the current actor.
    """
    return client.store.set_dataset_alias(name, alias, version, actor=client.actor)
