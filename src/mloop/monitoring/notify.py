"""Delivering alert changes: to the log, to a webhook (HTTP POST, retried with backoff), to a command hook.

Notifiers are configured in the monitor's spec (``alerts.notify``)::

    [{"type": "log"},
     {"type": "webhook", "url": "https://hooks.example/mloop", "retries": 4, "timeout": 5},
     {"type": "command", "command": ["/usr/local/bin/page-oncall"], "timeout": 30}]

Every delivery carries the same JSON body (documented in docs/monitoring.md)::

    {"monitor": "churn", "ref": "monitor:churn", "state": "opened" | "still_open" | "resolved",
     "signal": "data_drift", "feature": "age", "figures": {"value": 0.31, "threshold": 0.2, ...}, "time": <UTC ms>}

Deliveries run in a small thread pool, never in the monitor's own path: a receiver that is down or slow costs
its retries (``retries`` attempts, backoff 0.5 s doubling, each within ``timeout``), logged, and nothing else.
:meth:`Dispatcher.close` waits for pending deliveries up to ``grace`` seconds (so a one-shot ``mloop monitors
run`` still delivers), then gives up on the rest, logged. A command hook gets the body on stdin; its exit code is
logged when it is not 0.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from mloop.entities import AlertChange, now_ms
from mloop.errors import InvalidInput, MloopError

__all__ = ["Dispatcher", "alert_body", "check_notifiers", "post_json"]

_log = logging.getLogger("mloop.monitoring")
TYPES = ("log", "webhook", "command")


def check_notifiers(notify: Any) -> list[dict[str, Any]]:
    """The notifier list, checked (InvalidInput names the bad entry and the fix)."""
    if notify is None:
        return [{"type": "log"}]
    if not isinstance(notify, Sequence) or isinstance(notify, str):
        raise InvalidInput(f"alerts.notify must be a list of notifiers, got {notify!r}.")
    out = []
    for i, item in enumerate(notify):
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind not in TYPES:
            raise InvalidInput(f"alerts.notify[{i}] has type {kind!r}; use one of {list(TYPES)}.")
        if kind == "webhook" and not str(item.get("url", "")).startswith(("http://", "https://")):
            raise InvalidInput(f"alerts.notify[{i}].url must be an http(s) URL, got {item.get('url')!r}.")
        if kind == "command" and (not isinstance(item.get("command"), list) or not item["command"]):
            raise InvalidInput(f"alerts.notify[{i}].command must be a non-empty list (program and arguments).")
        out.append(dict(item))
    return out


def alert_body(monitor: str, change: AlertChange) -> dict[str, Any]:
    return {"monitor": monitor, "ref": f"monitor:{monitor}", "state": change.state, "signal": change.signal,
            "feature": change.feature, "figures": dict(change.figures), "time": now_ms()}  # fmt: skip


def post_json(url: str, body: bytes, retries: int = 4, timeout: float = 5.0) -> None:
    """POST ``body`` (JSON) to ``url``, retried with backoff (0.5 s doubling); :class:`~mloop.errors.MloopError`
    naming the URL and the last problem after ``retries`` attempts. (Automations' notify action uses it too.)"""
    delay, problem = 0.5, ""
    for attempt in range(1, max(1, retries) + 1):
        request = urllib.request.Request(url, body, {"Content-Type": "application/json", "User-Agent": "mloop"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                if 200 <= reply.status < 300:
                    return
                problem = f"HTTP {reply.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except OSError as exc:
            problem = str(exc)
        if attempt < retries:
            time.sleep(delay)
            delay *= 2
    raise MloopError(f"The webhook {url} did not accept the notification after {retries} attempt(s): {problem}.")


def _post(url: str, body: bytes, retries: int, timeout: float) -> None:
    try:
        post_json(url, body, retries, timeout)
    except MloopError as exc:
        _log.warning("%s The alert is still recorded.", exc)


def _command(argv: list[str], body: bytes, timeout: float) -> None:
    try:
        done = subprocess.run(argv, input=body, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _log.warning("alert command %s failed: %s", argv[0], exc)
        return
    if done.returncode != 0:
        _log.warning("alert command %s exited %d: %s", argv[0], done.returncode, done.stderr[-500:])


class Dispatcher:
    """Sends a monitor's alert changes to its notifiers in the background."""

    def __init__(self, notifiers: Sequence[Mapping[str, Any]], *, workers: int = 4, grace: float = 30.0) -> None:
        self.notifiers = [dict(n) for n in notifiers]
        self.grace = grace
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mloop-notify")
        self._pending: list[Future[None]] = []

    def send(self, monitor: str, changes: Sequence[AlertChange]) -> None:
        for change in changes:
            body = alert_body(monitor, change)
            raw = json.dumps(body, sort_keys=True, default=str).encode()
            for n in self.notifiers:
                if n["type"] == "log":
                    _log.warning("monitor %s: alert %s %s/%s %s", monitor, change.state, change.signal,
                                 change.feature or "-", body["figures"])  # fmt: skip
                elif n["type"] == "webhook":
                    retries, timeout = int(n.get("retries", 4)), float(n.get("timeout", 5.0))
                    self._pending.append(self._pool.submit(_post, n["url"], raw, retries, timeout))
                else:
                    self._pending.append(self._pool.submit(_command, list(n["command"]), raw,
                                                           float(n.get("timeout", 30.0))))  # fmt: skip

    def close(self) -> None:
        """Wait up to ``grace`` seconds for pending deliveries, then stop."""
        _, late = wait(self._pending, timeout=self.grace)
        if late:
            _log.warning("%d alert deliveries still pending after %.0f s; giving up on them", len(late), self.grace)
        self._pool.shutdown(wait=False, cancel_futures=True)
