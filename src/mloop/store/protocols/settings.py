"""Settings: small key/value pairs of the workspace (the artifact root, team policies).

``WRITES`` names the event each state-changing method writes in its own transaction (``None``: a data
write that records no event; ``"*"``: the event the caller gives). The contract suite checks every
implementation against it: each such write emits exactly that one event, and none when it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["WRITES", "SettingEvents", "SettingsStore"]


class SettingEvents:
    CHANGED = "setting.changed"


WRITES: dict[str, str | None] = {
    "set_setting": "setting.changed",
}


class SettingsStore(Protocol):
    def get_setting(self, key: str) -> str | None: ...

    def set_setting(
        self,
        key: str,
        value: str,
        *,
        actor: str,
        event: str = SettingEvents.CHANGED,
        subject: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Set ``key`` and record one event in the same transaction: ``event`` about ``subject`` (default
        ``setting:<key>``) with ``payload`` (default ``{"key": key}``), so a domain change stored as a setting
        (a team policy, the workspace's artifact root) is recorded as what it means."""
        ...
