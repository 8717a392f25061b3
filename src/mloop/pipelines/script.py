"""Script steps: ``python SCRIPT ARGS`` run from a source folder, as a pipeline step.

::

    prep = script_step("prep", script="prep.py", source_dir="src/", outputs=["data"],
                       args=["--out", "{outputs.data}", "--rows", "{params.rows}"], params={"rows": 1000})
    train = script_step("train", script="train.py", source_dir="src/", inputs=["data"],
                        outputs={"model": "folder", "metrics": "metrics.json"},
                        args=["--data", "{inputs.data}", "--model-dir", "{outputs.model}",
                              "--metrics", "{outputs.metrics}", "--lr", "{params.lr}"], params={"lr": 0.1})
    Pipeline("train", [prep, train])

The result is an ordinary :class:`~mloop.pipelines.step.Step` (it mixes with function steps). Its identity (cache
key) is the content digest of the **whole source folder** (see :mod:`mloop.pipelines.sourcedir`), the script's
path in it, the ``args`` template and ``environment`` variables, plus parameters, input digests and the Python
and package versions the folder's code imports. Each attempt runs ``sys.executable SCRIPT ARGS`` in a subprocess
whose working folder is a **private copy** of the source folder (a snapshot, as in Azure ML: a script writing
next to itself never touches your files, and parallel steps never see each other's files).

Placeholders in ``args`` (also inside a longer argument, ``"--out={outputs.model}"``; ``{{`` is a literal ``{``):

- ``{inputs.NAME}``: the path of the input. An upstream file/folder output is a read-only copy of it; any other
  value is written to a file first: a data frame or Arrow table as ``.parquet``, a numpy array as ``.npy``,
  text as ``.txt``, bytes as ``.bin``, JSON values as ``.json``, anything else as ``.pkl``.
- ``{outputs.NAME}``: where the script writes an output. ``"folder"`` outputs are empty folders made for it;
  a file output (``"file"``, or a file name like ``"metrics.json"``) is a path the script must create.
  Outputs are stored by content and reach downstream steps as ``pathlib.Path``.
- ``{params.NAME}``: the parameter's value (text as is, anything else as JSON: ``true``, ``0.1``, ``[1, 2]``).

A non-zero exit fails the attempt with the exit code and the last lines of the script's stderr (all of its
stdout and stderr are in the step's logs); a missing file output fails it too. ``timeout`` kills the script and
its children.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import FrameType
from typing import Any

from mloop.errors import InvalidInput, MloopError, shown
from mloop.pipelines.files import current_scope
from mloop.pipelines.policies import CachePolicy
from mloop.pipelines.sourcedir import SourceDigester
from mloop.pipelines.step import Param, Step

__all__ = ["ScriptFailed", "ScriptRunner", "ScriptSpec", "copy_source", "script_step", "source_files"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_-]+)\}")
_KINDS = ("inputs", "outputs", "params")
_SINGULAR = {"inputs": "input", "outputs": "output", "params": "parameter"}
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

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "source_dir": self.source_dir, "script": self.script, "args": list(self.args),
                "outputs": [list(o) for o in self.outputs], "inputs": list(self.inputs), "params": list(self.params),
                "environment": [list(e) for e in self.environment]}  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ScriptSpec:
        return cls(d["step"], d["source_dir"], d["script"], tuple(d["args"]), tuple((n, k) for n, k in d["outputs"]),
                   tuple(d["inputs"]), tuple(d["params"]), tuple((k, v) for k, v in d["environment"]))  # fmt: skip

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

    return _PLACEHOLDER.sub(one, arg)


class ScriptRunner:
    """The callable a script step runs: one attempt of ``python SCRIPT ARGS`` (see the module docstring).

    Workers find it by module and name like a function step's function: its ``__qualname__`` carries the spec.
    """

    __module__ = __name__

    def __init__(self, spec: ScriptSpec, defaults: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.__name__ = self.__qualname__ = spec.encode()
        self.__signature__ = _signature(spec.inputs, spec.params, defaults or {})
        self.__annotations__ = {**dict.fromkeys(spec.inputs, Any), "return": Path if spec.outputs else type(None)}

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
            "inputs": {k: str(_write_input(kwargs[k], given, k)) for k in spec.inputs},
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


def _signature(inputs: Sequence[str], params: Sequence[str], defaults: Mapping[str, Any]) -> inspect.Signature:
    fields = [inspect.Parameter(i, inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in inputs]
    fields += [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(p, Param.REQUIRED))
               for p in params]  # fmt: skip
    return inspect.Signature(fields)


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


def source_files(steps: Iterable[Step], base: Path) -> dict[str, Path]:
    """The files of the script steps' source folders by path relative to ``base``: what a published snapshot adds.

    A published pipeline is loaded from a snapshot of its file's folder (``base``), so a source folder must sit
    inside that folder to be found again at the same place; one outside it is refused, naming the fix.
    """
    out: dict[str, Path] = {}
    top = base.resolve()
    for s in steps:
        if not isinstance(s.fn, ScriptRunner):
            continue
        root = Path(s.fn.spec.source_dir)
        if not root.is_relative_to(top):
            raise InvalidInput(
                f"Script step {s.name!r}: its source folder {str(root)!r} is not inside {str(top)!r}, the folder of "
                "the pipeline file, so it cannot be part of the published snapshot. Move it there (e.g. "
                f"{str(top / root.name)!r}) and give source_dir relative to the pipeline file."
            )
        for rel, entry in SourceDigester().walk(root):
            out[(root.relative_to(top) / rel).as_posix()] = Path(entry.path)
    return out


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


def _check_names(step: str, kind: str, names: Sequence[str], identifiers: bool) -> list[str]:
    out = []
    for n in names:
        ok = isinstance(n, str) and (n.isidentifier() if identifiers else re.fullmatch(r"[A-Za-z0-9_-]+", n))
        if not ok:
            need = "a Python identifier (letters, digits, '_')" if identifiers else "letters, digits, '_' and '-'"
            raise InvalidInput(f"Script step {step!r}: {kind} name {shown(n)} must be {need}.")
        out.append(n)
    return out


def _outputs(step: str, outputs: Sequence[str] | Mapping[str, str] | None) -> list[tuple[str, str]]:
    if outputs is None:
        return []
    if isinstance(outputs, str):
        raise InvalidInput(f"Script step {step!r}: outputs={shown(outputs)} must be a list of names, e.g. ['model'].")
    pairs = list(outputs.items()) if isinstance(outputs, Mapping) else [(o, "folder") for o in outputs]
    _check_names(step, "output", [n for n, _ in pairs], identifiers=False)
    for name, kind in pairs:
        bad = not isinstance(kind, str) or not kind or "/" in kind or "\\" in kind or kind in (".", "..")
        if bad:
            raise InvalidInput(
                f"Script step {step!r}: output {name!r} kind {shown(kind)} must be 'folder', 'file' or a file name "
                "like 'metrics.json'."
            )
    return pairs


def _check_placeholders(step: str, args: Sequence[str], known: Mapping[str, Sequence[str]]) -> None:
    for arg in args:
        for m in _PLACEHOLDER.finditer(arg):
            kind, name = m.group(1), m.group(2)
            if kind is None:
                continue
            if kind not in known:
                near = difflib.get_close_matches(kind, _KINDS, n=1)
                fix = f"{{{near[0]}.{name}}}" if near else "{inputs.NAME}, {outputs.NAME} or {params.NAME}"
                raise InvalidInput(
                    f"Script step {step!r}: placeholder {m.group(0)!r} in args names no input, output or parameter "
                    f"kind {kind!r}. Use {fix} (write {{{{ for a literal brace)."
                )
            if name not in known[kind]:
                near = difflib.get_close_matches(name, known[kind], n=1)
                hint = f" Did you mean {{{kind}.{near[0]}}}?" if near else ""
                declare = {"inputs": "inputs=[...]", "outputs": "outputs=[...]", "params": "params={...}"}[kind]
                raise InvalidInput(
                    f"Script step {step!r}: placeholder {m.group(0)!r} in args names an unknown {_SINGULAR[kind]} "
                    f"{name!r}; {kind} are {sorted(known[kind]) or 'none'}.{hint} Declare it in {declare} or fix "
                    "the placeholder."
                )


def script_step(
    name: str,
    *,
    script: str,
    source_dir: str | os.PathLike[str] = ".",
    args: Sequence[str | int | float] = (),
    inputs: Sequence[str] | Mapping[str, str] | None = None,
    outputs: Sequence[str] | Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
    cache: bool | CachePolicy = True,
    retries: int = 0,
    backoff: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
) -> Step:
    """A step that runs ``python SCRIPT ARGS`` from ``source_dir`` (see the module docstring).

    ``inputs``: upstream output names (``["data"]``), or ``{placeholder: output}`` to read one under another name.
    ``outputs``: names of folders the script writes (``["model"]``), or ``{name: "folder" | "file" | FILE_NAME}``.
    ``params``: ``{name: default}``; a run overrides them like a function step's (``-p STEP.NAME=VALUE``).
    ``environment``: extra environment variables for the script (part of the key, values as digests).
    A relative ``source_dir`` is from the folder of the file that calls this (else the working folder).
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name or ""):
        raise InvalidInput(f"Script step name {shown(name)} is not valid. Use letters, digits, '_' and '-'.")
    root = Path(source_dir).expanduser()
    if not root.is_absolute():  # like DVC's paths in dvc.yaml: from the file that defines the step
        caller = inspect.currentframe()
        defined_in = caller.f_back.f_globals.get("__file__") if caller and caller.f_back else None
        root = (Path(defined_in).resolve().parent if defined_in else Path.cwd()) / root
    if not root.is_dir():
        what = "a file" if root.is_file() else "missing"
        raise InvalidInput(
            f"Script step {name!r}: source_dir {shown(str(source_dir))} is {what} ({str(root)!r}), not a folder. "
            "Pass the folder that holds the script (a relative path is from the file defining the step, or from the "
            "working folder where there is no file)."
        )
    root = root.resolve()
    if not isinstance(script, str) or not script:
        raise InvalidInput(f"Script step {name!r}: script={shown(script)} must be a path like 'train.py'.")
    path = (root / script).resolve()
    if not path.is_relative_to(root):
        raise InvalidInput(
            f"Script step {name!r}: script {script!r} is outside source_dir {str(root)!r}; the script must be part "
            "of the source folder (its digest is the step's code). Move it in, or choose a wider source_dir."
        )
    if not path.is_file():
        present = sorted(p.name for p in root.glob("*.py"))[:10]
        raise InvalidInput(
            f"Script step {name!r}: script {script!r} does not exist in source_dir {str(root)!r}. Python files "
            f"there: {present or 'none'}. Fix script= or source_dir=."
        )
    if isinstance(args, str) or not isinstance(args, Sequence):
        raise InvalidInput(f"Script step {name!r}: args={shown(args)} must be a list, e.g. ['--lr', '{{params.lr}}'].")
    arg_list = []
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (str, int, float)):
            raise InvalidInput(f"Script step {name!r}: argument {shown(a)} must be text or a number.")
        arg_list.append(str(a))
    if isinstance(inputs, str):
        raise InvalidInput(f"Script step {name!r}: inputs={shown(inputs)} must be a list of output names.")
    wiring = dict(inputs) if isinstance(inputs, Mapping) else {i: i for i in (inputs or [])}
    _check_names(name, "input", list(wiring), identifiers=True)
    param_map = dict(params or {})
    _check_names(name, "parameter", list(param_map), identifiers=True)
    clash = set(wiring) & set(param_map)
    if clash:
        raise InvalidInput(f"Script step {name!r}: {sorted(clash)} is both an input and a parameter. Rename one.")
    outs = _outputs(name, outputs)
    env = dict(environment or {})
    for k, v in env.items():
        if not isinstance(k, str) or not k or "=" in k or not isinstance(v, str):
            raise InvalidInput(f"Script step {name!r}: environment {{{shown(k)}: {shown(v)}}} must map text to text.")
    _check_placeholders(name, arg_list, {"inputs": list(wiring), "outputs": [n for n, _ in outs],
                                         "params": list(param_map)})  # fmt: skip
    spec = ScriptSpec(name, str(root), path.relative_to(root).as_posix(), tuple(arg_list), tuple(outs),
                      tuple(wiring), tuple(param_map), tuple(sorted(env.items())))  # fmt: skip
    runner = ScriptRunner(spec, param_map)
    return Step(runner, name=name, outputs=[n for n, _ in outs] or None, inputs=wiring, cache=cache,
                retries=retries, backoff=backoff, timeout=timeout, resources=resources)  # fmt: skip


def __getattr__(name: str) -> ScriptRunner:
    """Workers find a script step's runner by its name (the encoded :class:`ScriptSpec`), like a function step's."""
    if not name.startswith(_PREFIX):
        raise AttributeError(name)
    try:
        spec = ScriptSpec.decode(name)
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise AttributeError(f"{name[:40]}... is not a script step's runner: {exc}") from None
    return ScriptRunner(spec)
