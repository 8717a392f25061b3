"""``Pipeline``: named steps whose DAG comes from their inputs and outputs; run it, plan it, explain a step.

::

    pipeline = Pipeline("train", [load, featurize, fit])
    result = pipeline.run(params={"fit.C": 0.5})      # a tracked run; unchanged steps reused from cache
    pipeline.plan()                                    # each step: cached or to run, and why

``load_pipeline("pipelines.py:train")`` loads one from a file (what ``mloop pipelines run`` does).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, NotFound, shown
from mloop.pipelines.cache import Prefetched, outputs_of
from mloop.pipelines.cachekey import Fingerprinter
from mloop.pipelines.executors import Executor
from mloop.pipelines.graph import Graph, bind_params
from mloop.pipelines.references import bind_datasets
from mloop.pipelines.results import PipelineResult, StepResult
from mloop.pipelines.step import Step
from mloop.pipelines.worker import FILE_MODULE_PREFIX, load_file_module
from mloop.tracking.client import Client

__all__ = ["Pipeline", "load_pipeline"]


class Pipeline:
    """Steps plus a name; validated when made (see :class:`~mloop.pipelines.graph.Graph`).

    ``source`` is ``(module name, file)`` of the code that made it, recorded on its runs so that
    :func:`mloop.pipelines.resume` can load it again.
    """

    def __init__(self, name: str, steps: Sequence[Step], *, experiment: str | None = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"Pipeline name {shown(name)} must be a non-empty string.")
        self.name = name
        self.experiment = experiment or name
        self.graph = Graph(steps)
        caller = sys._getframe(1).f_globals
        file = caller.get("__file__")
        self.source: tuple[str | None, str | None] = (
            caller.get("__name__"), str(Path(file).resolve()) if isinstance(file, str) else None
        )  # fmt: skip

    @property
    def steps(self) -> dict[str, Step]:
        return self.graph.steps

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} steps={self.graph.order}>"

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        compute: str | Executor | None = None,
        client: Client | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineResult:
        """Run the pipeline as a tracked run (see :mod:`mloop.pipelines.runner`); ``force`` ignores the cache.

        ``compute``: a compute target's name (``mloop compute list``), an executor, or ``None`` for the
        workspace's default target (``local`` unless another was made the default).
        """
        from mloop.pipelines.runner import run_pipeline

        with _client(client) as c:
            return run_pipeline(c, self, dict(params or {}), force=force, executor=compute, tags=tags)

    def plan(self, params: Mapping[str, Any] | None = None, *, client: Client | None = None) -> PipelineResult:
        """Each step as ``cached`` or ``to run`` and why, without running anything."""
        bound = bind_params(self.graph, dict(params or {}))
        with _client(client) as c:
            try:
                exp = c.experiment_id(self.experiment)
            except NotFound:
                exp = None
            fp = Fingerprinter()
            cache = None if exp is None else Prefetched(c, exp, self.name, len(self.graph.steps))
            outputs: dict[str, str] = {}
            steps: dict[str, StepResult] = {}
            for name in self.graph.order:
                s = self.graph.steps[name]
                pending = sorted(u for u in self.graph.upstream[name] if steps[u].status != "cached")
                if pending:
                    steps[name] = StepResult(name, "to run", f"upstream step {pending[0]!r} will run")
                    continue
                data = bind_datasets(c, s, bound[name])  # dataset parameters resolved as a run would
                key = fp.key(s.fn, name, data.key_params, {**{a: outputs[src] for a, src in s.inputs.items()},
                                                            **data.digests})  # fmt: skip
                if cache is None:
                    steps[name] = StepResult(name, "to run", "no earlier run of this pipeline", key=key.digest)
                    continue
                found = cache.lookup(name, key, s.cache)
                if found.hit is None:
                    steps[name] = StepResult(name, "to run", found.reason, key=key.digest)
                    continue
                outs = outputs_of(found.hit)
                outputs.update({o: v["digest"] for o, v in outs.items()})
                steps[name] = StepResult(name, "cached", found.reason, found.hit.id, key.digest, outs)
        return PipelineResult(self.name, None, "PLAN", steps)


class _client:
    """The given client, or a new one over the resolved workspace (closed after)."""

    def __init__(self, client: Client | None) -> None:
        self.given, self.own = client, None if client is not None else Client()

    def __enter__(self) -> Client:
        return self.given or self.own  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()


def _load_file(file: str) -> Any:
    path = Path(file).expanduser()
    if not path.is_file() or path.suffix != ".py":
        raise InvalidInput(
            f"Pipeline file {shown(file)} is not a Python file. Use FILE.py:NAME, e.g. pipelines.py:train."
        )
    resolved = str(path.resolve())
    module_name = FILE_MODULE_PREFIX + hashlib.sha256(resolved.encode()).hexdigest()[:16]
    try:
        return load_file_module(module_name, resolved)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"Cannot load pipeline file {file!r}: {type(exc).__name__}: {exc}. Fix the file.") from exc


def load_pipeline(spec: str) -> Pipeline:
    """``FILE:NAME`` (or ``FILE`` when the file defines one pipeline): the file is imported afresh each time."""
    file, _, name = spec.rpartition(":") if spec.rpartition(":")[0].endswith(".py") else (spec, "", "")
    module = _load_file(file)
    found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if name:
        if name not in found:
            raise InvalidInput(f"{file!r} defines no pipeline {name!r}; it defines {sorted(found) or 'none'}.")
        return found[name]
    if len(found) != 1:
        raise InvalidInput(f"{file!r} defines {len(found)} pipelines ({sorted(found)}). Name one: {file}:NAME.")
    return next(iter(found.values()))


def find_pipeline(name: str, file: str, module: str | None = None) -> Pipeline:
    """The pipeline named ``name`` (``Pipeline(name, ...)``, not the variable) in ``module`` or ``file``.

    A module imported by name is imported (or taken from ``sys.modules``); a file loaded by path or run as a
    script is loaded afresh from ``file``.
    """
    import importlib

    loaded: Any = None
    if module and module != "__main__" and not module.startswith(FILE_MODULE_PREFIX):
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            loaded = None
    if loaded is None:
        if not Path(file).is_file():
            raise NotFound(f"Pipeline file {file!r} does not exist (moved or deleted).")
        loaded = _load_file(file)
    found = [v for v in vars(loaded).values() if isinstance(v, Pipeline) and v.name == name]
    if len({id(p) for p in found}) != 1:
        others = sorted({v.name for v in vars(loaded).values() if isinstance(v, Pipeline)})
        raise NotFound(
            f"{file!r} defines {len(found)} module-level pipelines named {name!r} (it defines {others or 'none'})."
        )
    return found[0]
