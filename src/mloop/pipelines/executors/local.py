"""The local compute target: a process pool (``concurrent.futures``) on this machine.

Workers start with ``forkserver`` where available (safe in a process with threads, and cheap after the first),
else ``spawn``. The pool is created on the first submission, so a fully cached run never starts one. Workers
exit by themselves within a second of the pipeline process dying (kill -9).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor

from mloop.errors import InvalidInput, shown
from mloop.pipelines.worker import Outcome, Task, execute

__all__ = ["LocalExecutor"]


def _exit_with(pid: int) -> None:
    """Pool initializer: the worker exits once the pipeline process ``pid`` is gone.

    Ctrl-C / SIGTERM stop the workers from the pipeline process; a kill -9 of it cannot, and its idle workers
    would otherwise wait on their queue for ever (and keep the fork server alive), or run their step on for
    nobody. A daemon thread checks every half second.
    """
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(70)
            except PermissionError:  # pragma: no cover - a process of another user took the id: it is gone
                os._exit(70)

    threading.Thread(target=watch, name="mloop-pipeline-watch", daemon=True).start()


class LocalExecutor:
    """Run steps in up to ``max_workers`` processes (default: the number of CPUs this process may use)."""

    name = "local"

    def __init__(self, max_workers: int | None = None, start_method: str | None = None) -> None:
        self.max_workers = max_workers
        self.start_method = start_method
        self._pool: ProcessPoolExecutor | None = None

    def get_params(self) -> dict[str, object]:
        return {"max_workers": self.max_workers, "start_method": self.start_method}

    @property
    def workers(self) -> int:
        if self.max_workers is None:
            return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        if isinstance(self.max_workers, bool) or not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise InvalidInput(f"LocalExecutor(max_workers={shown(self.max_workers)}) needs an integer >= 1.")
        return self.max_workers

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            method = self.start_method or ("forkserver" if "forkserver" in methods else "spawn")
            if method not in methods:
                raise InvalidInput(f"Start method {method!r} is not available here; use one of {methods}.")
            context = multiprocessing.get_context(method)
            if method == "forkserver":  # imported once in the fork server, not again in every worker it forks
                # (the step's context opens the store: the direct SQLite one, and SqlStore for the calls it
                # delegates, e.g. the holdout guard's private_blobs; mloop.store.sql alone no longer imports it)
                preload = ["mloop.pipelines.worker", "mloop.store.direct", "mloop.store.sql.store"]
                context.set_forkserver_preload(preload)
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),)
            )
        return self._pool

    def submit(self, task: Task) -> Future[Outcome]:
        pool = self._start()
        # Workers find steps by module name or file (see mloop.pipelines.worker), so they must not re-run the
        # parent's __main__ script as multiprocessing would (a script without a __main__ guard would recurse).
        main = sys.modules.get("__main__")
        names = ("__file__", "__spec__")
        saved: dict[str, object] = {k: main.__dict__[k] for k in names if main is not None and k in main.__dict__}
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        try:
            return pool.submit(execute, task)
        finally:
            if main is not None:
                main.__dict__.update(saved)

    def reset(self) -> None:
        """Drop a broken pool (a worker died); the next submission starts a new one."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, *, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()  # Ctrl-C / SIGTERM: stop running steps now, not after they finish
        pool.shutdown(wait=True, cancel_futures=cancel)
