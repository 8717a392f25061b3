"""Monitors: what watches an endpoint (or a batch-scored output) against a reference, window by window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AlertChange", "Monitor", "MonitorAlert", "MonitorResult"]


@dataclass(frozen=True)
class Monitor:
    """A monitor's ``spec`` (validated by :mod:`mloop.monitoring.spec`) and its processing ``cursor`` (where the
    next window starts: which collected files were read), as stored."""

    id: str
    name: str
    spec: Mapping[str, Any]
    created_at: int
    updated_at: int
    actor: str
    paused: bool = False
    cursor: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"monitor:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref, "spec": dict(self.spec), "paused": self.paused,
                "cursor": dict(self.cursor), "created_at": self.created_at, "updated_at": self.updated_at,
                "actor": self.actor, "id": self.id}  # fmt: skip


@dataclass(frozen=True)
class MonitorResult:
    """One signal's figure over one window (``feature`` is ``""`` for a signal of the whole window).

    ``status`` is ``ok``, ``breach`` (past its threshold) or ``unknown`` (not enough rows to tell); ``rows`` is
    how many rows the figure rests on (labelled rows for live performance)."""

    window_start: int
    window_end: int
    signal: str
    feature: str
    value: float | None
    threshold: float | None
    status: str
    rows: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"window_start": self.window_start, "window_end": self.window_end, "signal": self.signal,
                "feature": self.feature, "value": self.value, "threshold": self.threshold, "status": self.status,
                "rows": self.rows, "detail": dict(self.detail)}  # fmt: skip


@dataclass(frozen=True)
class AlertChange:
    """What a window did to the alert of (signal, feature): ``opened``, ``still_open`` or ``resolved``."""

    signal: str
    feature: str
    state: str
    figures: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorAlert:
    """An alert of a monitor: open until a window resolves it; ``windows`` counts the windows it was open in."""

    id: str
    monitor: str
    signal: str
    feature: str
    state: str
    opened_at: int
    updated_at: int
    windows: int
    figures: Mapping[str, Any] = field(default_factory=dict)
    resolved_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "monitor": self.monitor, "signal": self.signal, "feature": self.feature,
                "state": self.state, "opened_at": self.opened_at, "updated_at": self.updated_at,
                "resolved_at": self.resolved_at, "windows": self.windows, "figures": dict(self.figures)}  # fmt: skip
