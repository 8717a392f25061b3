"""Captured run environments, stored once per digest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["WRITES", "EnvironmentStore"]


WRITES: dict[str, str | None] = {"put_environment": None}


class EnvironmentStore(Protocol):
    def put_environment(self, digest: str, body: Mapping[str, Any]) -> None:
        """Idempotent: storing the same digest twice keeps one row."""
        ...

    def get_environment(self, digest: str) -> dict[str, Any]: ...
