"""Settings: small key/value pairs of the workspace (the artifact root, team policies)."""

from __future__ import annotations

from collections.abc import Mapping
from types import EllipsisType
from typing import Any, Protocol

__all__ = ["WRITES", "SettingEvents", "SettingsStore"]


class SettingEvents:
    CHANGED = "setting.changed"


WRITES: dict[str, str | None] = {"set_setting": SettingEvents.CHANGED}


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
        expected: str | EllipsisType | None = ...,
    ) -> None:
        """Set ``key`` and record one event in the same transaction: ``event`` about ``subject`` (default
        ``setting:<key>``) with ``payload`` (default ``{"key": key}``), so a domain change stored as a setting
        (a team policy, the workspace's artifact root) is recorded as what it means.

        ``expected`` makes it a compare-and-set for read-modify-write callers: the value they read (``None``: the
        key was unset). If another writer changed it since, :class:`~mloop.errors.Conflict` is raised and nothing
        is written; the caller reads again and retries."""
        ...
