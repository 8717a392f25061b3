"""What runs inside a worker process: load the step function, read its inputs, call it, store its outputs.

Only plain values cross the process boundary (:class:`Task` in, :class:`Outcome` out); the function is found
again by module and qualified name, and values travel through the artifact store by digest, never pickled
between processes. The parent creates and ends each step's run; inside the step that run is the active run
(:mod:`mloop.pipelines.stepcontext`), so what the step logs, the datasets it reads and the models it registers
are written by the worker itself (several writer processes: SQLite WAL, as for any concurrent runs). Each
attempt runs in a fresh ``contextvars`` context, so nothing of one step leaks into the next one this process
runs. Inputs are read through the workspace's guarded artifact store (a private holdout's blob is refused).
stdout and stderr are captured at the file-descriptor level (C extensions and subprocesses included). A timeout
is an interval timer in the worker that raises :class:`StepTimeout` inside the step.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.artifacts import ArtifactStore
    from mloop.config import Settings

__all__ = ["FILE_MODULE_PREFIX", "Outcome", "StepTimeout", "Task", "execute", "load_file_module"]

FILE_MODULE_PREFIX = "_mloop_pipeline_"  # modules loaded from a file path, not importable by name
_LOG_LIMIT = 1_000_000  # bytes of stdout / stderr kept per attempt


class StepTimeout(Exception):
    """A step ran longer than its ``timeout``."""


@dataclass(frozen=True)
class Task:
    step: str
    module: str
    module_file: str | None
    qualname: str
    artifact_uri: str
    algorithm: str
    inputs: dict[str, tuple[str, str]]  # argument -> (digest, materialiser)
    params: dict[str, Any]
    outputs: tuple[str, ...]
    multiple: bool
    timeout: float | None
    sys_path: tuple[str, ...] = ()
    resources: tuple[tuple[str, float], ...] = ()  # the step's resource requests (Dask worker resources)
    run_id: str | None = None  # the step's run (created by the parent): the active run inside the step
    pipeline: str = ""
    settings: Settings | None = None  # the pipeline's workspace (artifact root resolved): the step's context
    datasets: dict[str, str] = field(default_factory=dict)  # dataset parameter -> resolved data:<name>/<version>


@dataclass(frozen=True)
class Outcome:
    ok: bool
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    stdout: bytes = b""
    stderr: bytes = b""
    error: str | None = None
    duration_s: float = 0.0


def load_file_module(name: str, path: str) -> ModuleType:
    """Import the Python file ``path`` as module ``name`` (its folder goes on ``sys.path`` for its imports)."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _function(task: Task) -> Any:
    for entry in reversed(task.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # a step defined in the parent's __main__ script is loaded under another name, so its main guard stays shut
    name = "__mloop_main__" if task.module == "__main__" else task.module
    module = sys.modules.get(name)
    if module is None:
        if task.module_file is not None and (name.startswith(FILE_MODULE_PREFIX) or name == "__mloop_main__"):
            module = load_file_module(name, task.module_file)
        else:
            module = importlib.import_module(name)
    obj: Any = module
    for part in task.qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise StepTimeout("step timed out")


def _call(task: Task) -> dict[str, dict[str, Any]]:
    if task.run_id is None or task.settings is None:  # no workspace given: plain values only, no tracking
        from mloop.artifacts import open_artifact_store

        return _run(task, open_artifact_store(task.artifact_uri, algorithm=task.algorithm), {})
    from mloop.pipelines.stepcontext import step_context

    with step_context(task.settings, task.run_id, step=task.step, pipeline=task.pipeline) as run:
        datasets = {arg: _dataset(run, ref) for arg, ref in task.datasets.items()}
        return _run(task, run.client.artifacts, datasets)


def _dataset(run: Any, ref: str) -> Any:
    """A dataset parameter: recorded as an input of the step's run (a private holdout is refused and recorded)."""
    from mloop.datasets.dataset import Dataset

    return Dataset(run.client, run.use_dataset(ref))


def _run(task: Task, store: ArtifactStore, datasets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from mloop.pipelines.files import use_store
    from mloop.pipelines.materialisers import Stored, dumps, loads

    use_store(store)  # this attempt's Path values: stored file by file, inputs as read-only copies (pipelines.files)
    fn = _function(task)
    args = {arg: loads(store.get_bytes(digest, name=f"step input {arg!r}"), mat)
            for arg, (digest, mat) in task.inputs.items()}  # fmt: skip
    if task.timeout is not None:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, task.timeout)
    try:
        result = fn(**args, **task.params, **datasets)
    finally:
        if task.timeout is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
    if task.multiple:
        if not isinstance(result, tuple) or len(result) != len(task.outputs):
            got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__qualname__
            raise TypeError(f"step {task.step!r} declares outputs {list(task.outputs)} but returned {got}")
        values = dict(zip(task.outputs, result, strict=True))
    else:
        values = {task.outputs[0]: result}
    stored = {}
    for name, value in values.items():
        data, m = dumps(value)
        blob = store.put_bytes(data)
        cls = type(value)
        stored[name] = Stored(blob.digest, blob.size, m.name, f"{cls.__module__}.{cls.__qualname__}", m.fallback)
    return {name: s.to_dict() for name, s in stored.items()}


def _read(f: Any) -> bytes:
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _LOG_LIMIT))
    return bytes(f.read())


def execute(task: Task) -> Outcome:
    """Run one attempt of a step (in a worker process); never raises for a failing step."""
    start = time.perf_counter()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            outputs = contextvars.Context().run(_call, task)  # a fresh context: no state of an earlier step
            ok, error = True, None
        except (Exception, StepTimeout) as exc:
            ok, outputs = False, {}
            if isinstance(exc, StepTimeout):
                error = f"StepTimeout: step {task.step!r} ran longer than its timeout of {task.timeout:g} s"
            else:
                error = "".join(traceback.format_exception(exc)).rstrip()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        return Outcome(ok, outputs, _read(out), _read(err), error, time.perf_counter() - start)
