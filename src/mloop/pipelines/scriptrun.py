"""One attempt of a script step: the spec a worker receives, the working copy, the script's process.

A script step (:mod:`mloop.pipelines.script`) is an ordinary :class:`~mloop.pipelines.step.Step` whose callable is
a :class:`ScriptRunner`. Workers find a step's callable by module and name; a runner's name is its
:class:`ScriptSpec` as compressed JSON (``script_<base64>``), decoded again by this module's ``__getattr__``, so
the task format, the runner and every executor are the same for both kinds of step.

An attempt copies the source folder into the attempt's scratch folder (:func:`copy_source`), writes non-file
inputs to files, makes the output folders, substitutes the placeholders, and runs ``sys.executable SCRIPT ARGS``
in its own session with the copy as working folder. stdout goes straight to the worker's captured fd 1; stderr
is copied to fd 2 and its tail kept for the error of a non-zero exit. A timeout or cancellation kills the
script's process group; on Linux the script also dies with the worker (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import FrameType
from typing import Any

from mloop.errors import MloopError, shown
from mloop.pipelines.files import current_scope
from mloop.pipelines.references import DatasetRef
from mloop.pipelines.sourcedir import SourceDigester
from mloop.pipelines.step import Param

__all__ = ["PLACEHOLDER", "ScriptFailed", "ScriptRunner", "ScriptSpec", "copy_source"]

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_-]+)\}")  # {{, }}, {KIND.NAME}
_PREFIX = "script_"  # ScriptRunner names: script_<the spec, compressed>; found again by the module __getattr__
_TAIL = 20  # stderr lines shown in the error of a failed script


class ScriptFailed(MloopError):
    """A script step's script exited with a non-zero code, was killed, or did not write a declared output."""


@dataclass(frozen=True)
class ScriptSpec:
    """Everything a worker needs to run a script step (plain JSON values, so it travels by name)."""

    step: str
    source_dir: str  # absolute
    script: str  # POSIX path relative to source_dir
    args: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...]  # (name, "folder" | file name)
    inputs: tuple[str, ...] = ()  # placeholder names (the step's input arguments)
    params: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    datasets: tuple[str, ...] = ()  # dataset parameters (placeholders {inputs.NAME}: the version's local copy)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "source_dir": self.source_dir, "script": self.script, "args": list(self.args),
                "outputs": [list(o) for o in self.outputs], "inputs": list(self.inputs), "params": list(self.params),
                "environment": [list(e) for e in self.environment], "datasets": list(self.datasets)}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ScriptSpec:
        return cls(d["step"], d["source_dir"], d["script"], tuple(d["args"]), tuple((n, k) for n, k in d["outputs"]),
                   tuple(d["inputs"]), tuple(d["params"]), tuple((k, v) for k, v in d["environment"]),
                   tuple(d.get("datasets", ())))  # fmt: skip

    def encode(self) -> str:
        raw = zlib.compress(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode(), 9)
        return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, name: str) -> ScriptSpec:
        text = name.removeprefix(_PREFIX)
        return cls.from_json(json.loads(zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _write_input(value: Any, folder: Path, name: str) -> Path:
    """The path a script reads input ``name`` from: the file/folder itself, or ``value`` written to a file."""
    if isinstance(value, PurePath):
        return Path(value)
    kind = type(value).__module__.partition(".")[0]
    if kind == "pandas" and hasattr(value, "to_parquet"):
        path = folder / f"{name}.parquet"
        value.to_parquet(path, engine="pyarrow")
    elif kind == "pyarrow" and hasattr(value, "schema"):
        import pyarrow.parquet as pq

        path = folder / f"{name}.parquet"
        pq.write_table(value, path)
    elif kind == "numpy" and hasattr(value, "dtype") and not value.dtype.hasobject:
        import numpy as np

        path = folder / f"{name}.npy"
        np.save(path, value, allow_pickle=False)
    elif isinstance(value, str):
        path = folder / f"{name}.txt"
        path.write_text(value)
    elif isinstance(value, bytes):
        path = folder / f"{name}.bin"
        path.write_bytes(value)
    else:
        try:
            text = json.dumps(value, allow_nan=False)
            path = folder / f"{name}.json"
            path.write_text(text)
        except (TypeError, ValueError):
            import pickle

            path = folder / f"{name}.pkl"
            path.write_bytes(pickle.dumps(value, protocol=5))
    return path


def _substitute(arg: str, values: Mapping[str, Mapping[str, str]]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        return values[m.group(1)][m.group(2)]

    return PLACEHOLDER.sub(one, arg)


class ScriptRunner:
    """The callable a script step runs: one attempt of ``python SCRIPT ARGS`` (see the module docstring).

    Workers find it by module and name like a function step's function: its ``__qualname__`` carries the spec.
    """

    __module__ = __name__

    def __init__(self, spec: ScriptSpec, defaults: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.__name__ = self.__qualname__ = spec.encode()
        self.__signature__ = _signature(spec, defaults or {})
        self.__annotations__ = {**dict.fromkeys(spec.inputs, Any), **dict.fromkeys(spec.datasets, DatasetRef),
                                "return": Path if spec.outputs else type(None)}  # fmt: skip

    def __repr__(self) -> str:
        return f"<ScriptRunner step={self.spec.step!r} script={self.spec.script!r}>"

    def __call__(self, **kwargs: Any) -> Any:
        spec = self.spec
        scope = current_scope()
        # called inside a step attempt: its scratch folder (removed after the outputs are stored); called
        # directly (a test): a temporary folder left for the caller
        work = scope.folder(f"script-{spec.step}-") if scope is not None else Path(tempfile.mkdtemp(prefix="mloop-"))
        copy, given, made = work / "src", work / "in", work / "out"
        given.mkdir()
        made.mkdir()
        copy_source(Path(spec.source_dir), copy)
        outputs: dict[str, Path] = {}
        for name, kind in spec.outputs:
            if kind == "folder":
                outputs[name] = made / name
                outputs[name].mkdir()
            else:
                (made / name).mkdir()
                outputs[name] = made / name / (name if kind == "file" else kind)
        values = {
            "inputs": {
                **{k: str(_write_input(kwargs[k], given, k)) for k in spec.inputs},
                **{k: str(_dataset_path(spec.step, k, kwargs[k])) for k in spec.datasets},
            },
            "outputs": {k: str(v) for k, v in outputs.items()},
            "params": {k: _text(kwargs[k]) for k in spec.params},
        }
        argv = [sys.executable, str(copy / spec.script), *(_substitute(a, values) for a in spec.args)]
        code, tail = _run(argv, copy, dict(spec.environment))
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            lines = "\n".join(f"  | {line}" for line in tail) or "  | (nothing)"
            raise ScriptFailed(
                f"Last lines of its stderr:\n{lines}\nScript {spec.script!r} of step {spec.step!r} {how} "
                "(its full stdout and stderr are in the step's logs: `mloop pipelines logs RUN STEP`)."
            )
        for name, kind in spec.outputs:
            path = outputs[name]
            if kind == "folder" and not path.is_dir():
                raise ScriptFailed(
                    f"Script {spec.script!r} of step {spec.step!r} removed its output folder {name!r} at "
                    f"{str(path)!r}. Write the files into that folder (declare {{{name!r}: 'file'}} for a file)."
                )
            if kind != "folder" and not path.is_file():
                raise ScriptFailed(
                    f"Script {spec.script!r} of step {spec.step!r} exited 0 but did not write output {name!r} at "
                    f"{str(path)!r}. Write the file at the path its placeholder {{outputs.{name}}} gives."
                )
        result = [outputs[name] for name, _ in spec.outputs]
        if not result:
            return None
        return tuple(result) if len(result) > 1 else result[0]


def _signature(spec: ScriptSpec, defaults: Mapping[str, Any]) -> inspect.Signature:
    fields = [inspect.Parameter(i, inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in spec.inputs]
    fields += [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(p, Param.REQUIRED))
               for p in spec.params]  # fmt: skip
    fields += [inspect.Parameter(d, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(d, Param.REQUIRED),
                                 annotation=DatasetRef) for d in spec.datasets]  # fmt: skip
    return inspect.Signature(fields)


def _dataset_path(step: str, name: str, value: Any) -> Path:
    """A dataset parameter's local copy (a folder, or the file of a one-file version), read-only and verified."""
    if isinstance(value, str):  # a direct call (outside a pipeline): resolve the reference here
        from mloop.datasets.dataset import get_dataset

        value = get_dataset(value)
    if not isinstance(value, DatasetRef):
        raise ScriptFailed(
            f"Script step {step!r}: dataset parameter {name!r} is {shown(value)}; pass a dataset reference."
        )
    return value.path()


def copy_source(source: Path, dest: Path) -> None:
    """Copy the files of the source folder (not the ignored ones) to ``dest``, keeping executable bits."""
    import shutil

    dest.mkdir()
    made = {dest}
    for rel, entry in SourceDigester().walk(source):
        out = dest / rel
        if out.parent not in made:
            out.parent.mkdir(parents=True, exist_ok=True)
            made.add(out.parent)
        shutil.copyfile(entry.path, out)  # no chmod per file: ten times faster than shutil.copy here
        mode = entry.stat().st_mode
        if mode & 0o111:
            os.chmod(out, mode & 0o777)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the script and everything it started (its own session)
    proc.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: the script gets SIGKILL when this process dies, even by SIGKILL (a killed worker or Dask attempt).

    It runs in the child between fork and exec: one prctl call of a libc loaded beforehand, nothing else."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def child() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call
            os._exit(1)

    return child


def _run(argv: list[str], cwd: Path, env_extra: dict[str, str]) -> tuple[int, list[str]]:
    """Run the script; stdout goes to our fd 1, stderr to our fd 2 and a tail kept for the error message."""
    env = {**os.environ, **env_extra, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))
    sys.stdout.flush()
    sys.stderr.flush()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=1, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_die_with_parent())  # noqa: PLW1509  # fmt: skip
    tail: list[bytes] = []

    def tee() -> None:
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        for chunk in iter(lambda: os.read(fd, 65536), b""):
            os.write(2, chunk)
            tail.append(chunk)
            while len(tail) > 64:
                tail.pop(0)

    reader = threading.Thread(target=tee, daemon=True)
    reader.start()
    in_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # the pipeline is cancelled: unwind, killing the script below

    previous = signal.signal(signal.SIGTERM, on_term) if in_main else None
    try:
        code = proc.wait()
    except BaseException:  # a timeout (StepTimeout from the worker's timer), cancellation: stop the script
        _kill(proc)
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        reader.join(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
    lines = b"".join(tail).decode(errors="replace").splitlines()
    return code, lines[-_TAIL:]


def __getattr__(name: str) -> ScriptRunner:
    """Workers find a script step's runner by its name (the encoded :class:`ScriptSpec`), like a function step's."""
    if not name.startswith(_PREFIX):
        raise AttributeError(name)
    try:
        spec = ScriptSpec.decode(name)
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise AttributeError(f"{name[:40]}... is not a script step's runner: {exc}") from None
    return ScriptRunner(spec)
