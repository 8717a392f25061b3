"""The local target: one supervisor process per endpoint runs its serving process, restarts it when it
crashes (with backoff), runs its rollouts and reports its actual state to the workspace.

``python -m mloop.deployments.supervisor NAME`` (started detached by :func:`mloop.deployments.endpoints.start`).
Each tick (``tick`` seconds) it reads the endpoint; if it was deleted, it stops its child and exits. The child
is ``python -m mloop.deployments.worker http|stream NAME`` (logs in ``<workspace>/endpoints/NAME/server.log``).
When the child exits without being asked to, the supervisor records ``deployment.status_changed`` (phase
``crashed``, exit code) and starts it again after a backoff that doubles from ``backoff`` up to
``backoff_max`` seconds and resets once a child has run ``stable_after`` seconds. For an HTTP endpoint it
reads ``/health/ready`` (the generation the child serves) and ``/metrics`` (for the canary analysis of
:class:`~mloop.deployments.controller.Controller`). The status (phase, pids, url, restarts, served generation,
the last rollout decision) is written when it changes and at least every ``heartbeat`` seconds, so
``mloop deploy status`` can tell a live supervisor from a dead one. SIGTERM stops the child gracefully (its
collector flushes) and records phase ``stopped``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mloop.deployments.controller import Controller
from mloop.entities import Endpoint, now_ms
from mloop.errors import MloopError, NotFound
from mloop.store.protocols.endpoints import DeploymentEvents

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["Supervisor", "endpoint_dir", "main"]

_log = logging.getLogger("mloop.deployments")


def endpoint_dir(context: Context, name: str) -> Path:
    """Where the endpoint's logs live on this machine."""
    return context.settings.local_dir / "endpoints" / name


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, SIGTERM it when the supervisor dies (even by kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_orphan(pid: object, name: str) -> None:
    """Stop a worker of endpoint ``name`` left by a supervisor that died (where the OS did not stop it)."""
    try:
        cmdline = Path(f"/proc/{int(str(pid))}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if b"mloop.deployments.worker" in cmdline and name.encode() in cmdline:
        os.kill(int(str(pid)), signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{int(str(pid))}").exists():
                return
            time.sleep(0.1)


def _lock(folder: Path) -> IO[bytes] | None:
    """Hold the endpoint's supervisor lock (one supervisor per endpoint per machine); None if another holds it."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "supervisor.lock", "ab")  # noqa: SIM115 - held for the supervisor's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


class Supervisor:
    """Run and watch endpoint ``name`` until ``stop`` is set or the endpoint is deleted."""

    def __init__(
        self, context: Context, name: str, *, tick: float = 0.5, backoff: float = 1.0, backoff_max: float = 30.0,
        stable_after: float = 30.0, heartbeat: float = 5.0, actor: str = "mloop-supervisor",
    ) -> None:  # fmt: skip
        self.context, self.name, self.tick, self.actor = context, name, tick, actor
        self.backoff, self.backoff_max, self.stable_after, self.heartbeat = (
            backoff,
            backoff_max,
            stable_after,
            heartbeat,
        )
        self.controller = Controller(context, name)
        self.child: subprocess.Popen[bytes] | None = None
        self.child_started = 0.0
        self.log: IO[bytes] | None = None
        self.restarts = 0
        self.delay = backoff
        self.restart_at = 0.0
        self.status: dict[str, Any] = {}
        self.reported_at = 0.0
        self.compacting: threading.Thread | None = None
        self.compacted_at = 0.0

    # -- the child ----------------------------------------------------------------------------------------------
    def _spawn(self, endpoint: Endpoint) -> None:
        folder = endpoint_dir(self.context, self.name)
        folder.mkdir(parents=True, exist_ok=True)
        if self.log is None:
            self.log = open(folder / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        kind = "stream" if endpoint.spec.get("stream") else "http"
        env = {**os.environ, "MLOOP_URI": self.context.settings.store_uri,
               "MLOOP_ARTIFACT_URI": self.context.artifacts.uri}  # fmt: skip
        self.child = subprocess.Popen([sys.executable, "-m", "mloop.deployments.worker", kind, self.name],
                                      stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env,
                                      preexec_fn=_die_with_parent)  # fmt: skip # noqa: PLW1509 - one thread here
        self.child_started = time.monotonic()
        _log.info("endpoint %s: started %s server pid %d", self.name, kind, self.child.pid)

    def _stop_child(self, timeout: float = 20.0) -> int | None:
        child, self.child = self.child, None
        if child is None:
            return None
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                return child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
        return child.wait()

    def _watch_child(self, endpoint: Endpoint) -> None:
        now = time.monotonic()
        if self.child is not None:
            code = self.child.poll()
            if code is None:
                if now - self.child_started > self.stable_after:
                    self.delay = self.backoff  # ran long enough: the next crash restarts quickly again
                return
            self.child = None
            self.restarts += 1
            self.restart_at = now + self.delay
            figures = {"phase": "crashed", "exit_code": code, "restarts": self.restarts, "restart_in_s": self.delay}
            self.delay = min(self.delay * 2, self.backoff_max)
            self._report(endpoint, {**self.status, **figures, "pid": None}, event=figures)
            return
        if now >= self.restart_at:
            self._spawn(endpoint)

    # -- the loop -------------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        lock = _lock(endpoint_dir(self.context, self.name))
        if lock is None:
            _log.info("endpoint %s already has a supervisor on this machine; leaving it", self.name)
            return
        try:
            self._run(stop)
        finally:
            lock.close()

    def _run(self, stop: threading.Event) -> None:
        endpoint = self.context.store.get_endpoint(self.name)
        _stop_orphan(endpoint.status.get("pid"), self.name)  # a worker left by a supervisor killed with -9
        self._report(endpoint, {"phase": "starting"}, event={"phase": "starting", "supervisor_pid": os.getpid()})
        try:
            while not stop.is_set():
                try:
                    endpoint = self.context.store.get_endpoint(self.name)
                except NotFound:
                    _log.info("endpoint %s was deleted; stopping", self.name)
                    return
                self._watch_child(endpoint)
                endpoint = self._look(endpoint)
                self._compact()
                stop.wait(self.tick)
        finally:
            code = self._stop_child()
            if self.log is not None:
                self.log.close()
            try:
                endpoint = self.context.store.get_endpoint(self.name)
                self._report(endpoint, {**self.status, "phase": "stopped", "pid": None, "exit_code": code},
                             event={"phase": "stopped", "exit_code": code})  # fmt: skip
            except NotFound:
                pass

    def _compact(self, every: float = 300.0) -> None:
        """Merge the collected parts of closed hours (one file per hour), in a thread, every ``every`` seconds."""
        if time.monotonic() - self.compacted_at < every or (self.compacting and self.compacting.is_alive()):
            return
        self.compacted_at = time.monotonic()

        def run() -> None:
            from mloop.artifacts.compaction import compact_endpoint

            try:
                compact_endpoint(self.context.artifacts.uri, self.name)
            except Exception:  # a failed compaction leaves the parts readable; try again later
                _log.exception("endpoint %s: compacting collected hours failed", self.name)

        self.compacting = threading.Thread(target=run, name=f"mloop-compact-{self.name}", daemon=True)
        self.compacting.start()

    def _look(self, endpoint: Endpoint) -> Endpoint:
        spec = endpoint.spec
        running = self.child is not None and self.child.poll() is None
        status: dict[str, Any] = {**self.status, "supervisor_pid": os.getpid(), "restarts": self.restarts,
                                  "pid": self.child.pid if running and self.child else None}  # fmt: skip
        metrics_text = None
        if running and not spec.get("stream"):
            base = f"http://{spec.get('host', '127.0.0.1')}:{spec['port']}"
            status["url"] = base
            code, body = _get(f"{base}/health/ready")
            if code == 200:
                served = json.loads(body)
                status.update(phase="running", generation_served=served.get("generation"),
                              traffic=served.get("traffic"), shadow=served.get("shadow"))  # fmt: skip
                if endpoint.spec.get("canary"):
                    code, raw = _get(f"{base}/metrics")
                    metrics_text = raw.decode() if code == 200 else None
            else:
                status["phase"] = "loading"
        elif running:
            status["phase"] = "running"
        try:
            endpoint = self.controller.tick(endpoint, metrics_text)
        except MloopError as exc:  # a bad policy or a version that cannot be resolved: say so, keep serving
            status["rollout_error"] = str(exc)
        if self.controller.last is not None:
            status["last_decision"] = self.controller.last.to_dict()
        phase_changed = status.get("phase") != self.status.get("phase")
        self._report(endpoint, status, event={"phase": status.get("phase")} if phase_changed else None)
        return endpoint

    def _report(self, endpoint: Endpoint, status: dict[str, Any], *, event: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if event is None and status == self.status and now - self.reported_at < self.heartbeat:
            return
        self.status = status
        self.reported_at = now
        self.context.store.set_endpoint_status(
            self.name, {**status, "reported_at": now_ms()}, actor=self.actor,
            event=DeploymentEvents.STATUS_CHANGED if event is not None else None, payload=event,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m mloop.deployments.supervisor NAME``: supervise until SIGTERM/SIGINT or deletion."""
    from mloop.context import Context

    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Context() as context:
        Supervisor(context, args[0]).run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
