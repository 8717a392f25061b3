"""Lineage: which reference was used to make which."""

from __future__ import annotations

from typing import Protocol

from mloop.entities import LineageEdge

__all__ = ["WRITES", "LineageEvents", "LineageStore"]


class LineageEvents:
    RECORDED = "lineage.recorded"


WRITES: dict[str, str | None] = {"add_lineage": LineageEvents.RECORDED}


class LineageStore(Protocol):
    def add_lineage(self, source: str, target: str, relation: str, *, actor: str) -> None:
        """Record that ``source`` was used to make ``target`` (idempotent)."""
        ...

    def list_lineage(self, ref: str, *, direction: str = "both") -> list[LineageEdge]: ...
