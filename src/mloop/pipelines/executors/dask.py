"""The ``dask`` compute target: each attempt of a step is a task on a Dask ``distributed`` cluster.

Two forms:

- ``DaskExecutor(address="tcp://host:8786")`` connects to a running scheduler; mloop never closes a cluster it
  did not start (cancelling kills only its own attempts).
- ``DaskExecutor(min_workers=1, max_workers=4)`` starts a ``distributed.LocalCluster`` (worker processes) on the
  first step that must run, scales it adaptively with Dask's own ``Adaptive`` (up to one worker per
  ``threads_per_worker`` ready or running steps, down to ``min_workers`` after ``wait_count`` idle intervals),
  and closes it when the run ends.

Scheduling is Dask's: a step is submitted when it is ready, with its ``resources`` as Dask worker resources.
Workers mloop starts declare ``cpu`` = their threads and ``memory`` = their memory limit (bytes); a step that asks
for more than any worker has fails at once with a message saying so, instead of waiting forever. Against a
scheduler address the check uses the workers connected at submission (none connected: Dask waits for one).

Each attempt runs in a child process (:mod:`mloop.pipelines.executors.attempt`) started by the Dask task, so
output capture, timeouts and kill-on-cancel stay what they are on ``local``. A worker (or attempt process) that
dies mid-step fails that attempt (the step's retries apply): clusters mloop starts set Dask's
``allowed-failures`` to 0 so Dask does not silently re-run the task elsewhere. Dask is imported only when a step
is submitted.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import tempfile
import threading
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, shown
from mloop.pipelines.executors.attempt import TASK_FILE, AttemptServer
from mloop.pipelines.worker import Outcome, Task

__all__ = ["DaskExecutor", "run_attempt"]

_STATE = "_mloop_attempts"  # the attribute holding mloop's state on a dask Worker (that worker's own state)


class _WorkerState:
    """Per Dask worker: its attempt server, the attempts running (key -> pid) and the keys cancelled."""

    def __init__(self) -> None:
        self.server = AttemptServer()
        self.running: dict[str, int] = {}
        self.cancelled: set[str] = set()
        self.lock = threading.Lock()


def _state(worker: Any) -> _WorkerState:
    state = getattr(worker, _STATE, None)
    if state is None:
        state = _WorkerState()
        setattr(worker, _STATE, state)
    return state


def _died(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (killed, or out of memory?)" if code == -signal.SIGKILL else ""
        return f"the step's process was killed by {name}{hint}"
    return f"the step's process exited with code {code} before reporting an outcome"


def run_attempt(task: Task, key: str) -> Outcome:
    """On a Dask worker: run one attempt in a child process and return its outcome (never raises for the step)."""
    from distributed import get_worker

    state = _state(get_worker())
    with tempfile.TemporaryDirectory(prefix="mloop-attempt-", ignore_cleanup_errors=True) as folder:
        Path(folder, TASK_FILE).write_bytes(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        with state.lock:
            if key in state.cancelled:
                state.cancelled.discard(key)
                return Outcome(False, error="cancelled before it started")
            pid = state.server.start(folder)
            state.running[key] = pid
        try:
            result = AttemptServer.wait(pid, folder)
        finally:
            with state.lock:
                state.running.pop(key, None)
                state.cancelled.discard(key)
        return result if isinstance(result, Outcome) else Outcome(False, error=_died(result))


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the attempt and whatever it started (its own session)


def _kill_attempts(keys: list[str], dask_worker: Any = None) -> int:
    """Run on every worker by ``Client.run``: kill these attempts' processes (or stop them from starting)."""
    state = _state(dask_worker)
    killed = 0
    with state.lock:
        for key in keys:
            pid = state.running.get(key)
            if pid is None:
                state.cancelled.add(key)
            else:
                _kill(pid)
                killed += 1
    return killed


def _positive(owner: str, name: str, value: object, *, zero: bool = False) -> int:
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(f"{owner}: {name}={shown(value)} must be an integer >= {low}.")
    return value


class DaskExecutor:
    """Run steps on Dask: ``address=`` an existing scheduler, else a local adaptive cluster started on demand.

    ``target`` names the compute target in messages. ``adapt_interval`` (seconds) and ``wait_count`` tune how
    fast the local cluster follows the number of ready steps (Dask's defaults: 1 s and 3); ``timeout`` is how long
    connecting to a scheduler address may take (seconds).
    """

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        min_workers: int = 1,
        max_workers: int | None = None,
        threads_per_worker: int = 1,
        memory_limit: int | None = None,
        adapt_interval: float = 1.0,
        wait_count: int = 3,
        timeout: float = 10.0,
        target: str = "dask",
    ) -> None:
        self.address, self.min_workers, self.max_workers = address, min_workers, max_workers
        self.threads_per_worker, self.memory_limit = threads_per_worker, memory_limit
        self.adapt_interval, self.wait_count, self.timeout, self.target = adapt_interval, wait_count, timeout, target
        self._client: Any = None
        self._cluster: Any = None
        self._running: dict[str, Any] = {}  # key -> dask future of an attempt not finished yet

    def get_params(self) -> dict[str, object]:
        names = ("address", "min_workers", "max_workers", "threads_per_worker", "memory_limit", "adapt_interval",
                 "wait_count", "timeout", "target")  # fmt: skip
        return {n: getattr(self, n) for n in names}

    # -- the cluster ---------------------------------------------------------------------------------------------
    def worker_resources(self) -> dict[str, float] | None:
        """What each worker of the local cluster declares (``None`` for a scheduler address: ask its workers)."""
        if self.address is not None:
            return None
        owner = f"Compute target {self.target!r}"
        threads = _positive(owner, "threads_per_worker", self.threads_per_worker)
        return {"cpu": float(threads), "memory": float(self._memory_limit(owner))}

    def _max_workers(self, owner: str) -> int:
        if self.max_workers is None:
            return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        return _positive(owner, "max_workers", self.max_workers)

    def _memory_limit(self, owner: str) -> int:
        if self.memory_limit is not None:
            return _positive(owner, "memory_limit", self.memory_limit)
        from distributed.system import MEMORY_LIMIT

        return int(MEMORY_LIMIT // self._max_workers(owner))

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        import dask
        from distributed import Client

        owner = f"Compute target {self.target!r}"
        if self.address is not None:
            if not isinstance(self.address, str) or not self.address.strip():
                raise InvalidInput(f"{owner}: address={shown(self.address)} must be like 'tcp://host:8786'.")
            try:
                self._client = Client(self.address, timeout=self.timeout, set_as_default=False)  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise InvalidInput(
                    f"{owner}: cannot reach the Dask scheduler at {self.address!r} ({type(exc).__name__}: {exc}). "
                    "Start it, or point the target at a running one (`mloop compute create NAME --type dask "
                    "--address tcp://HOST:8786`)."
                ) from exc
            return self._client
        from distributed import LocalCluster

        low = _positive(owner, "min_workers", self.min_workers, zero=True)
        high, threads = self._max_workers(owner), _positive(owner, "threads_per_worker", self.threads_per_worker)
        if low > high:
            raise InvalidInput(f"{owner}: min_workers={low} is more than max_workers={high}. Lower min_workers.")
        if not isinstance(self.adapt_interval, (int, float)) or self.adapt_interval <= 0:
            raise InvalidInput(f"{owner}: adapt_interval={shown(self.adapt_interval)} must be seconds > 0.")
        wait_count = _positive(owner, "wait_count", self.wait_count)
        memory = self._memory_limit(owner)
        config = {"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False}
        with dask.config.set(config):
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=low, threads_per_worker=threads, processes=True, memory_limit=memory,
                resources={"cpu": float(threads), "memory": float(memory)}, silence_logs=40,  # logging.ERROR
                dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},  # no dashboard; any free port
            )  # fmt: skip
            try:
                # a tiny target duration makes Dask's own target "one thread per ready or running task"
                cluster.adapt(minimum=low, maximum=high, interval=f"{self.adapt_interval}s", wait_count=wait_count,
                              target_duration="1ms")  # fmt: skip
                self._client = Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
            except BaseException:
                cluster.close()
                raise
        self._cluster = cluster
        return self._client

    @property
    def cluster(self) -> Any:
        """The ``LocalCluster`` this executor started (``None`` before the first step, or for an address)."""
        return self._cluster

    @property
    def client(self) -> Any:
        return self._connect()

    # -- steps ---------------------------------------------------------------------------------------------------
    def _unfit(self, task: Task) -> str | None:
        """Why no worker can ever run this task (its resources exceed every worker's), else ``None``."""
        wanted = dict(task.resources)
        if not wanted:
            return None
        declared = self.worker_resources()
        offers = [declared] if declared is not None else [
            dict(w.get("resources") or {}) for w in self._client.scheduler_info(n_workers=-1)["workers"].values()
        ]  # fmt: skip
        if not offers or any(all(o.get(k, 0.0) >= v for k, v in wanted.items()) for o in offers):
            return None
        have = sorted({canonical_resources(o) for o in offers})
        return (
            f"Step {task.step!r} asks for resources {canonical_resources(wanted)}, but no worker of compute target "
            f"{self.target!r} has that much (workers offer {', '.join(have)}). Lower the step's resources=, or give "
            "the workers more (`mloop compute create NAME --type dask --threads-per-worker N --memory-limit BYTES`)."
        )

    def submit(self, task: Task) -> Future[Outcome]:
        client = self._connect()
        future: Future[Outcome] = Future()
        future.set_running_or_notify_cancel()
        problem = self._unfit(task)
        if problem is not None:
            future.set_result(Outcome(False, error=problem))
            return future
        key = f"mloop-{task.step}-{uuid.uuid4().hex}"
        resources = dict(task.resources) or None
        dfut = client.submit(run_attempt, task, key, key=key, resources=resources, pure=False, retries=0)
        self._running[key] = dfut
        dfut.add_done_callback(lambda f: self._resolve(f, future, key))
        return future

    def _resolve(self, dfut: Any, future: Future[Outcome], key: str) -> None:
        try:
            if dfut.status == "finished":
                outcome = dfut.result()
            elif dfut.status == "cancelled":
                outcome = Outcome(False, error="cancelled")
            else:
                exc = dfut.exception()
                outcome = Outcome(False, error=_describe(exc))
        except BaseException as exc:  # a lost connection, a scheduler that went away
            outcome = Outcome(False, error=_describe(exc))
        self._running.pop(key, None)
        if not future.done():
            future.set_result(outcome)

    def reset(self) -> None:
        """Nothing to reset: a dead Dask worker fails only its attempt; the cluster replaces workers itself."""

    def shutdown(self, *, cancel: bool = False) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is None:
            return
        running = dict(self._running)
        self._running.clear()
        try:
            if cancel and running:
                # best effort (a dead worker's attempts are gone already); the runner records KILLED after this
                with contextlib.suppress(Exception):
                    client.cancel(list(running.values()), force=True)
                    client.run(_kill_attempts, list(running), on_error="ignore")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def canonical_resources(resources: dict[str, float]) -> str:
    """``{'cpu': 2, 'memory': 4 GB}``: resources as a message shows them (memory in bytes, shown in GB)."""
    shown = (f"{v / 1e9:.3g} GB" if k == "memory" and v >= 1e6 else f"{v:g}" for k, v in sorted(resources.items()))
    return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(sorted(resources), shown, strict=True)) + "}"


def _describe(exc: BaseException | None) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return f"the Dask worker running this step died ({exc}); Dask did not re-run it elsewhere"
    return f"Dask could not run this attempt: {name}: {exc}"
