"""Running a pipeline: the ready-set loop over a process pool, with caching, tracking, retries and lineage.

The pipeline run is a parent run (tag ``mloop.pipeline.kind = pipeline``); every step, cached or not, is a child
run tagged with its key, the key's components and its outputs' digests. A step is submitted when all its
inputs exist; a cached step is recorded at once and its outputs reused. A failed step (after its retries) marks
only its descendants ``skipped``; unrelated branches run to the end. Ctrl-C / SIGTERM terminate the workers and
record the running steps and the pipeline run as ``KILLED``.

Crash safety: a step run ends ``FINISHED`` only in the transaction that writes its outputs' digests, after the
worker stored every output blob; a process killed with -9 leaves its steps ``RUNNING`` (never finished-looking),
and :func:`mloop.pipelines.resume` re-runs them. ``reuse`` (what resume passes) maps steps to finished step runs
of the resumed run: they are recorded as ``cached`` with their original key, whatever their cache policy.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mloop.entities import LineageEdge, RunRecord, RunStatus, new_id, now_ms
from mloop.guard import tainted_by
from mloop.pipelines.cache import Prefetched, outputs_of
from mloop.pipelines.cachekey import CacheKey, Fingerprinter, canonical, params_component
from mloop.pipelines.compute import resolve_executor
from mloop.pipelines.executors import Executor
from mloop.pipelines.graph import bind_params
from mloop.pipelines.outputs import record_outputs
from mloop.pipelines.references import bind_datasets
from mloop.pipelines.results import TAG, PipelineResult, StepResult
from mloop.pipelines.step import Step
from mloop.pipelines.worker import Outcome, Task
from mloop.tracking.client import Client
from mloop.tracking.run import Run

if TYPE_CHECKING:
    from mloop.pipelines.pipeline import Pipeline

__all__ = ["run_pipeline", "task_for"]

_LINEAGE = "pipeline_input"


def task_for(s: Step, client: Client, params: dict[str, Any], inputs: dict[str, tuple[str, str]], *,
             run: Run | None = None, pipeline: str = "", datasets: dict[str, str] | None = None) -> Task:  # fmt: skip
    """The worker's task; with ``run``, the step runs inside it (see :mod:`mloop.pipelines.stepcontext`)."""
    module = sys.modules.get(s.module)
    file = getattr(module, "__file__", None)
    settings = None if run is None else replace(client.settings, artifact_uri=client.artifacts.uri)
    return Task(
        step=s.name, module=s.module, module_file=os.path.abspath(file) if file else None, qualname=s.qualname,
        artifact_uri=client.artifacts.uri, algorithm=client.artifacts.algorithm, inputs=inputs, params=params,
        outputs=tuple(s.outputs), multiple=s.multiple, timeout=s.timeout, sys_path=tuple(p for p in sys.path if p),
        resources=tuple(sorted(s.resources.items())), run_id=None if run is None else run.id, pipeline=pipeline,
        settings=settings, datasets=dict(datasets or {}),
    )  # fmt: skip


@dataclass
class _Running:
    run: Run
    task: Task
    key: CacheKey
    reason: str
    attempt: int
    future: Future[Outcome] | None = None
    due: float = 0.0  # monotonic time of the next attempt (retries)


class _Loop:
    def __init__(self, client: Client, pipeline: Pipeline, parent: Run, params: dict[str, dict[str, Any]],
                 force: bool, executor: Executor, reuse: Mapping[str, RunRecord]) -> None:  # fmt: skip
        self.client, self.pipeline, self.graph, self.parent = client, pipeline, pipeline.graph, parent
        self.params, self.force, self.executor, self.reuse = params, force, executor, reuse
        self.fp = Fingerprinter()
        self.cache = Prefetched(client, parent.experiment_id, pipeline.name, len(self.graph.steps))
        self.outputs: dict[str, dict[str, Any]] = {}  # output name -> stored
        self.run_of: dict[str, str] = {}  # step -> its run id in this pipeline run
        self.results: dict[str, StepResult] = {}
        self.running: dict[str, _Running] = {}
        self.pending: list[RunRecord] = []  # cached step runs not written yet (see flush)
        self.pending_edges: list[LineageEdge] = []

    def flush(self) -> None:
        """Write the cached step runs recorded so far, with their lineage and events, in one transaction.

        Called before any other write of this pipeline run (a step run that starts or finishes, the pipeline
        run's end or kill), so the store sees the same runs, edges and events in the same order as when each was
        written at once."""
        if self.pending:
            runs, edges = self.pending, self.pending_edges
            self.pending, self.pending_edges = [], []
            self.client.store.record_finished_runs(runs, lineage=edges, actor=self.client.actor)

    def _inputs(self, s: Step) -> dict[str, tuple[str, str]]:
        return {arg: (self.outputs[src]["digest"], self.outputs[src]["materialiser"]) for arg, src in s.inputs.items()}

    def _step_tags(self, s: Step, key: CacheKey, tags: dict[str, str]) -> dict[str, str]:
        return {TAG.PIPELINE: self.pipeline.name, TAG.KIND: "step", TAG.STEP: s.name, TAG.KEY: key.digest,
                TAG.KEY_JSON: key.to_json(), **tags}  # fmt: skip

    def _start_child(self, s: Step, key: CacheKey, tags: dict[str, str]) -> Run:
        self.flush()
        run = self.client.start_run(
            self.pipeline.experiment, f"{self.parent.name}.{s.name}", parent=self.parent, capture_environment=False,
            params={f"{n}": canonical(v) for n, v in self.params[s.name].items()},
            tags=self._step_tags(s, key, tags),
        )  # fmt: skip
        self.run_of[s.name] = run.id
        for arg_src in sorted({self.graph.producer[src] for src in s.inputs.values()}):
            self.client.store.add_lineage(f"run:{self.run_of[arg_src]}", run.ref, _LINEAGE, actor=self.client.actor)
        return run

    def _reused(self, s: Step, key: CacheKey, hit: RunRecord, reason: str) -> None:
        """Record ``s`` as a cached step run whose outputs are ``hit``'s."""
        outs = outputs_of(hit)
        source = hit.tags.get(TAG.CACHED_FROM) or hit.id  # the run that made the outputs
        tags = {TAG.STATUS: "cached", TAG.CACHED_FROM: source, TAG.OUTPUTS: canonical(outs), TAG.REASON: reason}
        if tainted_by():  # a holdout override read earlier in this context: start_run records it on each run
            run = self._start_child(s, key, tags)
            run.end(RunStatus.FINISHED)
            run_id = run.id
        else:  # written with the other cached steps in one transaction (flush): same rows, edges and events
            now, actor = now_ms(), self.client.actor
            record = RunRecord(new_id(), self.parent.experiment_id, f"{self.parent.name}.{s.name}",
                               RunStatus.FINISHED, now, now, self.parent.id, actor,
                               params={n: canonical(v) for n, v in self.params[s.name].items()},
                               tags=self._step_tags(s, key, tags))  # fmt: skip
            run_id = record.id
            self.pending.append(record)
            self.pending_edges += [LineageEdge(f"run:{self.run_of[src]}", record.ref, _LINEAGE, actor, now)
                                   for src in sorted({self.graph.producer[i] for i in s.inputs.values()})]  # fmt: skip
            self.run_of[s.name] = run_id
        self.outputs.update(outs)
        self.results[s.name] = StepResult(s.name, "cached", reason, run_id, key.digest, outs)

    def _begin(self, name: str) -> None:
        s = self.graph.steps[name]
        earlier = self.reuse.get(name)
        if earlier is not None:  # resume: finished in the resumed run; its own key (it may predate an edit)
            key = CacheKey.from_json(earlier.tags.get(TAG.KEY_JSON, "{}"))
            self._reused(s, key, earlier, f"finished in the resumed run {earlier.parent_id}")
            return
        inputs = self._inputs(s)
        data = bind_datasets(self.client, s, self.params[name])  # dataset parameters: resolved now, in the key
        key = self.fp.key(s.fn, s.name, data.key_params, {**{a: d for a, (d, _) in inputs.items()}, **data.digests})
        found = self.cache.lookup(name, key, s.cache)
        if found.hit is not None and not self.force:
            self._reused(s, key, found.hit, found.reason)
            return
        reason = "forced (--force)" if self.force and found.hit is not None else found.reason
        run = self._start_child(s, key, {TAG.REASON: reason})
        task = task_for(s, self.client, data.params, inputs, run=run, pipeline=self.pipeline.name, datasets=data.refs)
        try:
            future = self.executor.submit(task)
        except Exception:
            run.end(RunStatus.FAILED)  # the compute target refused the task (e.g. it cannot start)
            raise
        except BaseException:  # Ctrl-C / SIGTERM while the pool starts: cancelled, as a running step would be
            run.set_tag(TAG.STATUS, "killed")
            run.end(RunStatus.KILLED)
            self.results[name] = StepResult(name, "killed", reason, run.id, key.digest)
            raise
        self.running[name] = _Running(run, task, key, reason, 1, future)

    def _finish(self, name: str, item: _Running, outcome: Outcome) -> None:
        self.flush()  # cached steps begun while this one ran come first, as they did when written at once
        s, run = self.graph.steps[name], item.run
        error = None if outcome.ok else (outcome.error or "failed")
        suffix = "" if item.attempt == 1 else f".{item.attempt}"
        for stream, data in (("stdout", outcome.stdout), ("stderr", outcome.stderr), ("error", (error or "").encode())):
            if data:
                self.client.record_bytes(run.id, data, f"logs/{stream}{suffix}.txt")
        if not outcome.ok and item.attempt <= s.retries:
            item.attempt += 1
            item.future, item.due = None, time.monotonic() + s.backoff * 2 ** (item.attempt - 2)
            return
        del self.running[name]
        if outcome.ok:
            record_outputs(self.client, run.id, outcome.outputs)  # gc keeps them; `mloop runs artifacts` lists them
            run.set_tags({TAG.STATUS: "ran", TAG.OUTPUTS: canonical(outcome.outputs), TAG.ATTEMPTS: item.attempt})
            run.end(RunStatus.FINISHED)
            self.outputs.update(outcome.outputs)
            self.results[name] = StepResult(name, "ran", item.reason, run.id, item.key.digest, outcome.outputs,
                                            item.attempt, duration_s=outcome.duration_s)  # fmt: skip
            return
        error = error or "failed"
        run.set_tags({TAG.STATUS: "failed", TAG.ATTEMPTS: item.attempt, TAG.ERROR: error.splitlines()[-1][:500]})
        run.end(RunStatus.FAILED)
        self.results[name] = StepResult(name, "failed", item.reason, run.id, item.key.digest, attempts=item.attempt,
                                        error=error, duration_s=outcome.duration_s)  # fmt: skip
        for d in sorted(self.graph.descendants(name)):
            self.results.setdefault(d, StepResult(d, "skipped", f"upstream step {name!r} failed"))

    def _ready(self) -> list[str]:
        done = {n for n, r in self.results.items() if r.status in ("ran", "cached")}
        return [n for n in self.graph.order if n not in self.results and n not in self.running
                and self.graph.upstream[n] <= done]  # fmt: skip

    def loop(self) -> None:
        while True:
            for name in self._ready():
                self._begin(name)
            now = time.monotonic()
            for item in self.running.values():
                if item.future is None and item.due <= now:
                    item.future = self.executor.submit(item.task)
            futures = {i.future: n for n, i in self.running.items() if i.future is not None}
            if not futures and not self.running:
                if not self._ready():
                    return
                continue
            dues = [i.due for i in self.running.values() if i.future is None]
            timeout = max(0.0, min(dues) - time.monotonic()) if dues else None
            finished, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                name = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:  # a worker died (killed, out of memory): this attempt failed
                    self.executor.reset()
                    outcome = Outcome(False, error=f"the worker process died: {exc}")
                self._finish(name, self.running[name], outcome)

    def kill(self) -> None:
        self.executor.shutdown(cancel=True)
        self.flush()
        for name, item in list(self.running.items()):
            item.run.set_tag(TAG.STATUS, "killed")
            item.run.end(RunStatus.KILLED)
            self.results[name] = StepResult(name, "killed", item.reason, item.run.id, item.key.digest)
        self.running.clear()


def run_pipeline(
    client: Client, pipeline: Pipeline, params: dict[str, Any], *, force: bool = False,
    executor: Executor | str | None = None, tags: Mapping[str, str] | None = None,
    reuse: Mapping[str, RunRecord] | None = None,
) -> PipelineResult:  # fmt: skip
    """Validate (parameters first: nothing runs on a bad one), then run every step; see the module docstring.

    ``tags`` are added to the pipeline run (e.g. what triggered it); they cannot replace the ``mloop.pipeline.*`` ones.
    ``reuse``: finished step runs whose outputs are taken as they are (see :func:`mloop.pipelines.resume`).
    """
    bound = bind_params(pipeline.graph, params)
    executor = resolve_executor(client, executor)  # a compute target's name, None: the workspace's default
    start = time.perf_counter()
    flat = {f"{s}.{k}": v for s, p in bound.items() for k, v in params_component(s, p).items()}  # JSON or refused
    run_tags = {**dict(tags or {}), TAG.PIPELINE: pipeline.name, TAG.KIND: "pipeline",
                TAG.PROCESS: f"{socket.gethostname()}:{os.getpid()}"}  # fmt: skip
    module, file = pipeline.source
    run_tags.update({TAG.MODULE: module} if module else {})
    run_tags.update({TAG.FILE: file} if file else {})
    parent = client.start_run(pipeline.experiment, params=flat, tags=run_tags)
    loop = _Loop(client, pipeline, parent, bound, force, executor, reuse or {})
    try:
        loop.loop()
        loop.flush()
    except BaseException:
        loop.kill()
        parent.end(RunStatus.KILLED)
        raise
    finally:
        executor.shutdown()
    failed = any(r.status == "failed" for r in loop.results.values())
    status = RunStatus.FAILED if failed else RunStatus.FINISHED
    parent.set_tags({"mloop.pipeline.steps": json.dumps({n: r.status for n, r in loop.results.items()})})
    parent.end(status)
    steps = {n: loop.results[n] for n in pipeline.graph.order}
    return PipelineResult(pipeline.name, parent.id, status.value, steps, time.perf_counter() - start)
