"""Attempt processes: each attempt of a step on a Dask worker runs in its own process, forked from a warm server.

Dask workers run tasks in threads, but :func:`~mloop.pipelines.worker.execute` captures output by redirecting
file descriptors 1 and 2 (per process) and times out with ``SIGALRM`` (main thread only). A process per attempt
keeps both correct, lets several attempts share a multi-threaded worker, and can be killed on cancel (its own
session, so whatever the step started goes too).

Starting a fresh interpreter per attempt costs its start-up and mloop's imports (0.1 s idle, 0.7 s on a loaded
machine), so each Dask worker keeps one :class:`AttemptServer`: a single-threaded process (:func:`serve`, started
with ``python -c``) that imports mloop's worker modules once and forks one child per attempt.
User code is imported only in the children, so an edited module is never stale. The server reads folder paths on
stdin and answers each with the child's pid; ``FOLDER/task.pickle`` is the task, ``FOLDER/outcome.pickle`` the
outcome, ``FOLDER/exit`` the child's wait status. A server whose worker dies sees end of input and exits; a child
whose server dies exits within a second.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from mloop.pipelines.worker import Outcome, Task, execute

__all__ = ["EXIT_FILE", "OUTCOME_FILE", "TASK_FILE", "AttemptServer", "run_in_child", "serve"]

TASK_FILE, OUTCOME_FILE, EXIT_FILE = "task.pickle", "outcome.pickle", "exit"


def _orphaned(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:  # whoever started this attempt is gone: nobody will read the outcome
            os._exit(3)


def run_in_child(folder: str) -> int:
    """The attempt itself (in the forked child): read the task, execute it, write the outcome."""
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()
    path = Path(folder)
    task = pickle.loads((path / TASK_FILE).read_bytes())
    if not isinstance(task, Task):
        raise TypeError(f"{path / TASK_FILE} holds {type(task).__name__}, not a Task")
    outcome = execute(task)
    tmp = path / (OUTCOME_FILE + ".tmp")
    tmp.write_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.rename(path / OUTCOME_FILE)
    return 0


def _preload() -> None:
    """Import the mloop modules that ``worker.execute`` imports when it runs (found in its source), once."""
    import ast
    import importlib

    from mloop.pipelines import worker

    tree = ast.parse(Path(worker.__file__ or "").read_text())
    names = {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("mloop.")
    }
    # a step's context opens the metadata store: the direct SQLite one, and SqlStore (SQLAlchemy: 0.3 s to import)
    # for the calls it delegates (mloop.store.sql alone no longer imports SqlStore)
    names.update({"mloop.store.direct", "mloop.store.sql.store"})
    for name in sorted(n for n in names if n is not None):
        with contextlib.suppress(ImportError):  # optional parts: an attempt that needs one reports the error
            importlib.import_module(name)


def serve() -> None:
    """The server's loop: fork a child per folder read on stdin, answer its pid, record its exit status."""
    _preload()
    reply = os.dup(1)
    os.dup2(2, 1)  # stray prints must not reach the reply pipe
    folders: dict[int, str] = {}

    def reap(signum: int, frame: FrameType | None) -> None:
        while folders:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            folder = folders.pop(pid, None)
            if folder is not None:
                Path(folder, EXIT_FILE).write_text(str(os.waitstatus_to_exitcode(status)))

    signal.signal(signal.SIGCHLD, reap)
    for line in sys.stdin:
        folder = line.strip()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(reply)
            code = 1
            try:
                code = run_in_child(folder)
            finally:
                os._exit(code)
        folders[pid] = folder
        os.write(reply, f"{pid}\n".encode())


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class AttemptServer:
    """The worker's side: start the server on first use, then ``start(folder)`` forks an attempt."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self, folder: str) -> int:
        with self._lock:
            for _ in range(2):  # a server that died is started again once
                if self._proc is None or self._proc.poll() is not None:
                    cmd = [sys.executable, "-c", "from mloop.pipelines.executors.attempt import serve; serve()"]
                    self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                assert self._proc.stdin is not None and self._proc.stdout is not None
                try:
                    self._proc.stdin.write(f"{folder}\n".encode())
                    self._proc.stdin.flush()
                    line = self._proc.stdout.readline()
                except (BrokenPipeError, OSError):
                    line = b""
                if line.strip():
                    return int(line)
                self._proc.kill()
                self._proc.wait()
        raise RuntimeError("the attempt server did not start an attempt (see the Dask worker's log)")

    @staticmethod
    def wait(pid: int, folder: str) -> Outcome | int:
        """Block until attempt ``pid`` ends: its outcome, or its exit code when it wrote none."""
        if hasattr(os, "pidfd_open"):  # Linux: wait without polling
            with contextlib.suppress(ProcessLookupError):  # (ended and reaped already)
                fd = os.pidfd_open(pid)
                try:
                    select.select([fd], [], [])
                finally:
                    os.close(fd)
        else:
            while _exists(pid):
                time.sleep(0.01)
        outcome_file, exit_file = Path(folder, OUTCOME_FILE), Path(folder, EXIT_FILE)
        deadline = time.monotonic() + 5
        while not exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.005)  # the server records the status (its last write) as soon as it reaps the child
        if outcome_file.exists():
            outcome = pickle.loads(outcome_file.read_bytes())
            if isinstance(outcome, Outcome):
                return outcome
        return int(exit_file.read_text()) if exit_file.exists() else -signal.SIGKILL

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
