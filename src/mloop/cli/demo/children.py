"""The processes the demo starts, and stopping every one of them: on success, on an error, on Ctrl-C, on SIGTERM.

The demo starts two kinds: the scheduler (``mloop scheduler --interval 0.5``, which computes the monitor's windows
and runs the automations; its
own children, triggered pipeline runs, are stopped by it on SIGTERM) and the endpoint's supervisor (with its
serving process; stopped through :func:`mloop.deployments.endpoints.stop`, which waits until it reports
``stopped``). :class:`Children` remembers each as it starts and :meth:`Children.stop_all` ends them in reverse
order; :func:`interruptible` turns SIGTERM (and SIGHUP) into :class:`KeyboardInterrupt` while the demo runs, so
the same ``finally`` handles a ``kill`` and a Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import MloopError

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["Children", "interruptible"]


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`KeyboardInterrupt` in the main thread meanwhile (restored after)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def _deferred_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored meanwhile (main thread only), restored after."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class Children:
    """What the demo started (pids, to report and to stop) and how to stop each, newest first."""

    context: Context
    root: Path
    stopped: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    _stops: list[tuple[str, Callable[[], bool]]] = field(default_factory=list)

    def start_scheduler(self, *, interval: float = 0.5, timeout: float = 30.0) -> subprocess.Popen[bytes]:
        """``mloop scheduler --interval INTERVAL --monitor-interval INTERVAL`` on the demo's stores (schedules,
        monitors and automations), logging to ``scheduler.log``; returns once it holds the scheduler lock (or
        raises with the end of its log)."""
        env = {**os.environ, "MLOOP_URI": self.context.settings.store_uri,
               "MLOOP_ARTIFACT_URI": self.context.artifacts.uri}  # fmt: skip
        log_path = self.root / "scheduler.log"
        command = [sys.executable, "-c", "from mloop.cli.app import main; main()", "scheduler", "--interval",
                   str(interval), "--monitor-interval", str(interval)]  # fmt: skip
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                       cwd=self.root, start_new_session=True)  # fmt: skip
        self.pids["scheduler"] = process.pid
        self._stops.append(("scheduler", lambda: _terminate(process)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _holds_lock(self.context, process.pid):
                return process
            time.sleep(0.1)
        tail = log_path.read_text(errors="replace").splitlines()[-15:] if log_path.exists() else []
        raise MloopError(f"The demo's scheduler did not start (`mloop scheduler --interval {interval:g}`); its log "
                         f"({log_path}) ends:\n" + "\n".join(tail))  # fmt: skip

    def endpoint(self, name: str) -> None:
        """Remember to stop endpoint ``name`` (its supervisor and serving process) at the end. Called before it
        is created: an interrupt while it starts finds a supervisor that has not reported yet by its log file,
        and waits for its report (its pid) to stop it."""
        from mloop.deployments.endpoints import stop
        from mloop.deployments.supervisor import endpoint_dir
        from mloop.errors import NotFound

        def stop_endpoint() -> bool:
            deadline = time.monotonic() + 20.0
            while True:
                try:
                    status = self.context.store.get_endpoint(name).status
                except NotFound:
                    return False  # never created: nothing runs
                if status.get("supervisor_pid") or not (endpoint_dir(self.context, name) / "supervisor.log").exists():
                    break  # it reported (or none was started)
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if status.get("phase") == "stopped" or not status.get("supervisor_pid"):
                return False
            stop(self.context, name, timeout=30.0)
            return True

        self._stops.append((f"endpoint {name}", stop_endpoint))

    def stop_all(self) -> list[str]:
        """Stop everything started, newest first; a failure to stop one never skips the others, and a second
        Ctrl-C (or SIGTERM) meanwhile does not cut the stopping short."""
        errors = []
        with _deferred_signals():
            while self._stops:
                name, stop = self._stops.pop()
                try:
                    if stop():
                        self.stopped.append(name)
                except (MloopError, OSError) as exc:
                    errors.append(f"{name}: {exc}")
        return errors


def _holds_lock(context: Context, pid: int) -> bool:
    """Whether process ``pid`` holds the scheduler lock of the demo's SQLite store: the holder's text in the lock
    file beside the database names it (read without locking, so the scheduler's own attempt is never disturbed)."""
    from sqlalchemy.engine import make_url

    from mloop.pipelines.scheduler import LOCK_NAME

    database = make_url(context.settings.store_uri).database
    if not database:
        return False
    try:
        text = Path(f"{database}.{LOCK_NAME}.lock").read_text(errors="replace")
    except OSError:
        return False
    return f"pid {pid} " in text


def _terminate(process: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    """SIGTERM (the scheduler stops its runs and releases its lock), then SIGKILL if it does not exit; whether it
    was running."""
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    return True
