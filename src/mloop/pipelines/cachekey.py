"""Cache keys: a pure, decodable function of a step's code, parameters, input digests and environment.

:class:`CacheKey` holds the *components* (plain JSON) and its digest is the SHA-256 of their canonical JSON, so
the key can always be decoded back into what made it, and :func:`differences` says which component changed
between two keys. :class:`Fingerprinter` gathers the code and environment components from the files on disk:

- **code**: the step function's source, the source of functions of the same module it calls, the values of the
  module-level constants (numbers, text, tuples ...) they read, and the full text of every *project module*
  it uses, transitively (a module imported by a module it imports counts);
- **environment**: the Python version and the version of every installed package the step's code imports.

A **script step** (:mod:`mloop.pipelines.script`) has another code component: the content digest of its whole
source folder with a short digest per file (:mod:`mloop.pipelines.sourcedir`), the script's path in it, the
``args`` template, the declared outputs and the environment variables (names, and digests of the values: a key
is stored as a tag and must not hold a token); its environment component lists the
installed packages that the folder's Python files import.

A project module is one that is neither in the standard library nor an installed distribution: the user's own
code, which is why editing a helper module invalidates exactly the steps that import it (and, through their
changed output digests, the steps downstream of them).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import platform
import sys
import sysconfig
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, shown
from mloop.pipelines.scriptrun import ScriptRunner, ScriptSpec
from mloop.pipelines.sourcedir import SourceDigester

__all__ = ["CacheKey", "Fingerprinter", "canonical", "differences", "params_component"]

_SITE = tuple(str(Path(p).resolve()) for k in ("purelib", "platlib") if (p := sysconfig.get_paths().get(k)))


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, NaN refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """``components`` = ``{"code", "params", "inputs", "environment"}``; ``digest`` = sha256 of their JSON."""

    components: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return "sha256:" + _sha(canonical(self.components))

    def to_json(self) -> str:
        return canonical(self.components)

    @classmethod
    def from_json(cls, text: str) -> CacheKey:
        return cls(json.loads(text))


def params_component(step: str, params: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter as canonical JSON text (so ``1`` and ``1.0`` differ, as they would for the function)."""
    out = {}
    for name, value in params.items():
        try:
            out[name] = canonical(value)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"Step {step!r} parameter {name!r} = {shown(value)} is not JSON (numbers, text, booleans, None, lists "
                "and dicts of them); a cache key must be able to show it. Pass a JSON value, or make it an input."
            ) from None
    return out


def _walk_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _walk_names(const)
    return names


class Fingerprinter:
    """Code and environment components of steps; caches module digests and package versions for one run."""

    def __init__(self) -> None:
        self._modules: dict[str, tuple[str | None, frozenset[str], frozenset[str]]] = {}
        self._versions: dict[str, str | None] = {}
        self._dists: Mapping[str, list[str]] | None = None
        self.sources = SourceDigester()  # source-folder file digests remembered by stat for this run

    # classification -------------------------------------------------------------------------------------
    def _version(self, top: str) -> str | None:
        """The installed version of the distribution that provides top-level module ``top`` (None: not one)."""
        if top not in self._versions:
            try:
                self._versions[top] = importlib.metadata.version(top)
            except (importlib.metadata.PackageNotFoundError, ValueError):
                self._versions[top] = self._version_by_files(top)
        return self._versions[top]

    def _version_by_files(self, top: str) -> str | None:
        origin = self._origin(top)
        if origin is None or not origin.startswith(_SITE):
            return None
        version = getattr(sys.modules.get(top), "__version__", None)  # sklearn: a distribution of another name
        if isinstance(version, str):
            return version
        if self._dists is None:
            self._dists = importlib.metadata.packages_distributions()  # slow (~0.5 s): only on a miss
        names = self._dists.get(top) or []
        for dist in names:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return "unknown"

    @staticmethod
    def _origin(name: str) -> str | None:
        mod = sys.modules.get(name)
        file = getattr(mod, "__file__", None) if mod is not None else None
        if file is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                return None
            file = spec.origin if spec is not None and spec.has_location else None
        return str(Path(file).resolve()) if file else None

    def _classify(self, module: str) -> tuple[str, str | None]:
        """``("stdlib"|"package"|"project"|"unknown", origin)`` of an importable module name."""
        top = module.partition(".")[0]
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            return "stdlib", None
        if self._version(top) is not None:
            return "package", None
        origin = self._origin(module)
        if origin is None or not origin.endswith(".py"):
            return "unknown", None
        return "project", origin

    # code ---------------------------------------------------------------------------------------------
    def _module_info(self, name: str, origin: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
        """(digest of the file, project modules it imports, third-party top-level packages it imports)."""
        if name in self._modules:
            return self._modules[name]
        self._modules[name] = (None, frozenset(), frozenset())  # breaks import cycles
        text = Path(origin).read_bytes()
        project: set[str] = set()
        packages: set[str] = set()
        package = name if origin.endswith("__init__.py") else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(text)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}".strip(".") if base else parent
                targets = [base, *(f"{base}.{a.name}" for a in node.names)] if base else []
            for target in targets:
                kind, sub = self._classify(target)
                if kind == "project" and sub is not None:
                    project.add(target)
                elif kind == "package":
                    packages.add(target.partition(".")[0])
        info = (_sha(text), frozenset(project), frozenset(packages))
        self._modules[name] = info
        return info

    def _add_module(self, name: str, modules: dict[str, str], packages: set[str]) -> None:
        kind, origin = self._classify(name)
        if kind == "package":
            packages.add(name.partition(".")[0])
        if kind != "project" or origin is None or name in modules:
            return
        digest, imports, pkgs = self._module_info(name, origin)
        modules[name] = digest or ""
        packages |= pkgs
        for sub in sorted(imports):
            self._add_module(sub, modules, packages)

    def project_modules(self, module: str) -> dict[str, str]:
        """``module`` and the project modules it imports, transitively, with their parent packages: name -> file
        (found exactly as cache keys find them; what a published snapshot must hold)."""
        modules: dict[str, str] = {}
        self._add_module(module, modules, set())
        names = set(modules) | {".".join(n.split(".")[:i]) for n in modules for i in range(1, n.count(".") + 1)}
        found = {name: self._classify(name) for name in sorted(names)}
        return {name: origin for name, (kind, origin) in found.items() if kind == "project" and origin is not None}

    def code(self, fn: Callable[..., Any]) -> tuple[dict[str, Any], set[str]]:
        """The code component of ``fn`` and the third-party packages it uses."""
        functions: dict[str, str] = {}
        constants: dict[str, str] = {}  # module-level values of plain types the code reads (THRESHOLD = 0.5)
        modules: dict[str, str] = {}
        packages: set[str] = set()
        todo = [fn]
        while todo:
            f = todo.pop()
            if f.__qualname__ in functions:
                continue
            try:
                source = inspect.getsource(f)
            except (OSError, TypeError):
                source = repr(f.__code__.co_code)
            functions[f.__qualname__] = _sha(source)
            g = f.__globals__
            for name in sorted(_walk_names(f.__code__)):
                obj = g.get(name)
                obj = getattr(obj, "fn", obj) if type(obj).__name__ == "Step" else obj
                if isinstance(obj, (int, float, str, bytes, bool, tuple, frozenset)):
                    constants[name] = _sha(repr(obj))[:16]
                elif isinstance(obj, types.ModuleType):
                    self._add_module(obj.__name__, modules, packages)
                elif isinstance(obj, types.FunctionType) and obj.__module__ == fn.__module__:
                    todo.append(obj)
                elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
                    mod = getattr(obj, "__module__", None)
                    if isinstance(mod, str) and mod != fn.__module__:
                        self._add_module(mod, modules, packages)
        component = {"function": functions.pop(fn.__qualname__), "helpers": functions, "globals": constants,
                     "modules": modules}  # fmt: skip
        return component, packages

    def script_code(self, spec: ScriptSpec) -> tuple[dict[str, Any], set[str]]:
        """The code component of a script step (its source folder's content, script, args ...) and its packages."""
        tree = self.sources.tree(spec.source_dir)
        local = tree.local_modules
        packages = {m for m in tree.imports - local if self._classify(m)[0] == "package"}
        env = {k: _sha(v)[:16] for k, v in spec.environment}
        source = {"digest": tree.digest, "files": tree.files}
        component = {"script": spec.script, "args": list(spec.args), "outputs": dict(spec.outputs), "env": env,
                     "source": source}  # fmt: skip
        return component, packages

    def environment(self, packages: set[str]) -> dict[str, Any]:
        versions = {p: v for p in sorted(packages) if (v := self._version(p)) is not None}
        return {"python": platform.python_version(), "packages": versions}

    def key(self, fn: Callable[..., Any], step: str, params: Mapping[str, Any], inputs: Mapping[str, str]) -> CacheKey:
        code, packages = self.script_code(fn.spec) if isinstance(fn, ScriptRunner) else self.code(fn)
        return CacheKey({
            "code": code, "params": params_component(step, params), "inputs": dict(inputs),
            "environment": self.environment(packages),
        })  # fmt: skip


def _short(v: Any) -> str:
    text = v if isinstance(v, str) else canonical(v)
    if len(text) <= 24:
        return text
    algorithm, sep, rest = text.partition(":")
    return f"{algorithm}:{rest[:12]}" if sep and algorithm.isalnum() else text[:12]


def _diff_maps(label: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        if k not in old:
            out.append(f"{label} {k!r} added ({_short(new[k])})")
        elif k not in new:
            out.append(f"{label} {k!r} removed (was {_short(old[k])})")
        elif old[k] != new[k]:
            out.append(f"{label} {k!r} changed: {_short(old[k])} -> {_short(new[k])}")
    return out


def _script_differences(oc: Mapping[str, Any], nc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What changed in a script step's code component: files of the source folder, script, args, outputs, env."""
    out: list[tuple[str, str]] = []
    for k, label in (("script", "script"), ("args", "args template"), ("outputs", "declared outputs")):
        if oc.get(k) != nc.get(k):
            out.append(("code", f"{label} changed: {canonical(oc.get(k))} -> {canonical(nc.get(k))}"))
    out += [("code", d) for d in _diff_maps("environment variable", oc.get("env", {}), nc.get("env", {}))]
    os_, ns = oc.get("source") or {}, nc.get("source") or {}
    files = _diff_maps("source file", os_.get("files", {}), ns.get("files", {}))
    out += [("code", d) for d in files]
    if not files and os_.get("digest") != ns.get("digest"):
        out.append(("code", f"source folder changed: {_short(os_.get('digest'))} -> {_short(ns.get('digest'))}"))
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(component, what changed)`` for every difference between two keys' components (empty: same key)."""
    out: list[tuple[str, str]] = []
    oc, nc = old.get("code", {}), new.get("code", {})
    if oc.get("function") != nc.get("function"):
        out.append(("code", "the step function's source changed"))
    out += [("code", d) for d in _diff_maps("helper function", oc.get("helpers", {}), nc.get("helpers", {}))]
    out += [("code", d) for d in _diff_maps("global value", oc.get("globals", {}), nc.get("globals", {}))]
    out += [("code", d) for d in _diff_maps("module", oc.get("modules", {}), nc.get("modules", {}))]
    out += _script_differences(oc, nc)
    out += [("params", d) for d in _diff_maps("parameter", old.get("params", {}), new.get("params", {}))]
    out += [("inputs", d) for d in _diff_maps("input", old.get("inputs", {}), new.get("inputs", {}))]
    oe, ne = old.get("environment", {}), new.get("environment", {})
    if oe.get("python") != ne.get("python"):
        out.append(("environment", f"Python {oe.get('python')} -> {ne.get('python')}"))
    out += [("environment", d) for d in _diff_maps("package", oe.get("packages", {}), ne.get("packages", {}))]
    known = {"code", "params", "inputs", "environment"}
    for k in sorted((set(old) | set(new)) - known):
        if old.get(k) != new.get(k):
            out.append((k, f"{k} changed"))
    return out
