"""Alerts from window results, with damping (pure): a breach must last ``consecutive`` windows to open an alert,
and ``resolve_after`` windows back within bounds to resolve it.

The streaks live in the monitor's cursor (``{"streaks": {"signal|feature": [breaches, oks]}, "open": [...]}``),
which :meth:`~mloop.store.protocols.monitors.MonitorStore.record_monitor_window` moves in the same transaction as
the results and the alert changes, so a restart neither forgets a streak nor opens an alert twice. A result whose
status is ``unknown`` (too few rows to tell) leaves its streak as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mloop.entities import AlertChange, MonitorResult

__all__ = ["alert_changes", "key_of"]


def key_of(signal: str, feature: str) -> str:
    return f"{signal}|{feature}"


def _figures(result: MonitorResult, streak: int) -> dict[str, Any]:
    return {"value": result.value, "threshold": result.threshold, "rows": result.rows, "windows": streak,
            "window_start": result.window_start, "window_end": result.window_end,
            **{k: v for k, v in result.detail.items() if k in ("method", "p_value", "ci_low", "ci_high")}}  # fmt: skip


def alert_changes(
    results: Sequence[MonitorResult], state: Mapping[str, Any], *, consecutive: int = 1, resolve_after: int = 1
) -> tuple[list[AlertChange], dict[str, Any]]:
    """The alert changes this window makes and the new damping state (to store in the cursor)."""
    streaks: dict[str, list[int]] = {k: list(v) for k, v in (state.get("streaks") or {}).items()}
    open_keys = set(state.get("open") or [])
    changes: list[AlertChange] = []
    for result in results:
        key = key_of(result.signal, result.feature)
        breaches, oks = streaks.get(key, [0, 0])
        if result.status == "breach":
            breaches, oks = breaches + 1, 0
        elif result.status == "ok":
            breaches, oks = 0, oks + 1
        streaks[key] = [breaches, oks]
        if key in open_keys:
            if result.status == "breach":
                changes.append(AlertChange(result.signal, result.feature, "still_open", _figures(result, breaches)))
            elif oks >= resolve_after:
                open_keys.discard(key)
                changes.append(AlertChange(result.signal, result.feature, "resolved", _figures(result, oks)))
        elif breaches >= consecutive:
            open_keys.add(key)
            changes.append(AlertChange(result.signal, result.feature, "opened", _figures(result, breaches)))
    streaks = {k: v for k, v in streaks.items() if v != [0, 0]}
    return changes, {"streaks": streaks, "open": sorted(open_keys)}
