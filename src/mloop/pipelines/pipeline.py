"""``Pipeline``: named steps whose DAG comes from their inputs and outputs; run it, plan it, explain a step.

::

    pipeline = Pipeline("train", [load, featurize, fit])
    result = pipeline.run(params={"fit.C": 0.5})      # a tracked run; unchanged steps reused from cache
    pipeline.plan()                                    # each step: cached or to run, and why

``load_pipeline("pipelines.py:train")`` loads one from a file (what ``mloop pipelines run`` does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, NotFound, shown
from mloop.pipelines.cache import lookup, outputs_of
from mloop.pipelines.cachekey import Fingerprinter
from mloop.pipelines.executors.local import LocalExecutor
from mloop.pipelines.graph import Graph, bind_params
from mloop.pipelines.references import bind_datasets
from mloop.pipelines.results import PipelineResult, StepResult
from mloop.pipelines.step import Step
from mloop.pipelines.worker import FILE_MODULE_PREFIX, load_file_module
from mloop.tracking.client import Client

__all__ = ["Pipeline", "load_pipeline"]


class Pipeline:
    """Steps plus a name; validated when made (see :class:`~mloop.pipelines.graph.Graph`)."""

    def __init__(self, name: str, steps: Sequence[Step], *, experiment: str | None = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"Pipeline name {shown(name)} must be a non-empty string.")
        self.name = name
        self.experiment = experiment or name
        self.graph = Graph(steps)

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
        compute: LocalExecutor | None = None,
        client: Client | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineResult:
        """Run the pipeline as a tracked run (see :mod:`mloop.pipelines.runner`); ``force`` ignores the cache."""
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
                if exp is None:
                    steps[name] = StepResult(name, "to run", "no earlier run of this pipeline", key=key.digest)
                    continue
                found = lookup(c, exp, self.name, name, key, s.cache)
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


def load_pipeline(spec: str) -> Pipeline:
    """``FILE:NAME`` (or ``FILE`` when the file defines one pipeline): the file is imported afresh each time."""
    file, _, name = spec.rpartition(":") if spec.rpartition(":")[0].endswith(".py") else (spec, "", "")
    path = Path(file).expanduser()
    if not path.is_file() or path.suffix != ".py":
        raise InvalidInput(
            f"Pipeline file {shown(file)} is not a Python file. Use FILE.py:NAME, e.g. pipelines.py:train."
        )
    resolved = str(path.resolve())
    module_name = FILE_MODULE_PREFIX + hashlib.sha256(resolved.encode()).hexdigest()[:16]
    try:
        module = load_file_module(module_name, resolved)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"Cannot load pipeline file {file!r}: {type(exc).__name__}: {exc}. Fix the file.") from exc
    found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if name:
        if name not in found:
            raise InvalidInput(f"{file!r} defines no pipeline {name!r}; it defines {sorted(found) or 'none'}.")
        return found[name]
    if len(found) != 1:
        raise InvalidInput(f"{file!r} defines {len(found)} pipelines ({sorted(found)}). Name one: {file}:NAME.")
    return next(iter(found.values()))
