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
  text as ``.txt``, bytes as ``.bin``, JSON values as ``.json``, anything else as ``.pkl``. A dataset parameter
  (``datasets={"data": "iris@latest"}``) is the version's verified, read-only local copy.
- ``{outputs.NAME}``: where the script writes an output. ``"folder"`` outputs are empty folders made for it;
  a file output (``"file"``, or a file name like ``"metrics.json"``) is a path the script must create.
  Outputs are stored by content and reach downstream steps as ``pathlib.Path``.
- ``{params.NAME}``: the parameter's value (text as is, anything else as JSON: ``true``, ``0.1``, ``[1, 2]``).

A non-zero exit fails the attempt with the exit code and the last lines of the script's stderr (all of its
stdout and stderr are in the step's logs); a missing file output fails it too. ``timeout`` kills the script and
its children. How an attempt runs: :mod:`mloop.pipelines.scriptrun`.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, shown
from mloop.pipelines.policies import CachePolicy
from mloop.pipelines.scriptrun import PLACEHOLDER, ScriptRunner, ScriptSpec
from mloop.pipelines.sourcedir import SourceDigester
from mloop.pipelines.step import Step

__all__ = ["script_step", "source_files"]

_KINDS = ("inputs", "outputs", "params")
_SINGULAR = {"inputs": "input", "outputs": "output", "params": "parameter"}


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
        for m in PLACEHOLDER.finditer(arg):
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
    datasets: Mapping[str, str] | None = None,
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
    ``datasets``: ``{name: "iris@latest"}``, dataset parameters (resolved when the step runs, content digest in the
    key, lineage on the step's run; overridable like parameters); ``{inputs.NAME}`` is the version's local copy.
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
    data_map = dict(datasets or {})
    _check_names(name, "dataset", list(data_map), identifiers=True)
    for key, ref in data_map.items():
        if key in wiring or key in param_map:
            raise InvalidInput(f"Script step {name!r}: dataset {key!r} is also an input or a parameter. Rename one.")
        if not isinstance(ref, str) or not ref:
            raise InvalidInput(
                f"Script step {name!r}: dataset {key!r} = {shown(ref)} must be a reference like 'iris@latest'."
            )
    outs = _outputs(name, outputs)
    env = dict(environment or {})
    for k, v in env.items():
        if not isinstance(k, str) or not k or "=" in k or not isinstance(v, str):
            raise InvalidInput(f"Script step {name!r}: environment {{{shown(k)}: {shown(v)}}} must map text to text.")
    _check_placeholders(name, arg_list, {"inputs": [*wiring, *data_map], "outputs": [n for n, _ in outs],
                                         "params": list(param_map)})  # fmt: skip
    spec = ScriptSpec(name, str(root), path.relative_to(root).as_posix(), tuple(arg_list), tuple(outs),
                      tuple(wiring), tuple(param_map), tuple(sorted(env.items())), tuple(data_map))  # fmt: skip
    runner = ScriptRunner(spec, {**param_map, **data_map})
    return Step(runner, name=name, outputs=[n for n, _ in outs] or None, inputs=wiring, cache=cache,
                retries=retries, backoff=backoff, timeout=timeout, resources=resources)  # fmt: skip
