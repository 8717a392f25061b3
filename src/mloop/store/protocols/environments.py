"""Captured run environments, stored once per digest.

``WRITES`` names the event each state-changing method writes in its own transaction (``None``: a data
write that records no event; ``"*"``: the event the caller gives). The contract suite checks every
implementation against it: each such write emits exactly that one event, and none when it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["WRITES", "EnvironmentStore"]


WRITES: dict[str, str | None] = {
    "put_environment": None,
}


class EnvironmentStore(Protocol):
    def put_environment(self, digest: str, body: Mapping[str, Any]) -> None:
        """Idempotent: storing the same digest twice keeps one row."""
        ...

    def get_environment(self, digest: str) -> dict[str, Any]: ...
