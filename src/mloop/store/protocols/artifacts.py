"""References from runs to content-addressed blobs (the bytes live in the artifact store)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mloop.entities import ArtifactEntry

__all__ = ["WRITES", "ArtifactEvents", "ArtifactRefStore"]


class ArtifactEvents:
    LOGGED = "artifact.logged"


WRITES: dict[str, str | None] = {"record_artifacts": ArtifactEvents.LOGGED}


class ArtifactRefStore(Protocol):
    def record_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry], *, actor: str) -> None: ...

    def list_artifacts(self, run_id: str) -> list[ArtifactEntry]: ...

    def referenced_digests(self) -> set[str]:
        """Every digest some live or restorable object still points at (for ``mloop gc``)."""
        ...
