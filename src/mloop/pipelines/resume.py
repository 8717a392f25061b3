"""Resuming a pipeline run: run again only what did not finish, reusing the outputs of the steps that did.

A resume is a **new pipeline run** tagged ``mloop.pipeline.resumed_from = <the run it resumes>`` (as Azure ML and
ZenML users expect: a run, once ended, is never reopened, so its record stays what happened). It has the resumed
run's parameters; the steps that finished in the resumed run (``ran`` or ``cached``, outputs still in the
artifact store) are recorded as ``cached`` step runs with their original keys and outputs, whatever their cache
policy; every other step (failed, killed, skipped, never started, or left ``RUNNING`` by a killed process) is
looked up in the cache and run as usual, with the current code. So the usual loop is: a step fails, fix it,
``mloop pipelines resume RUN``.

The pipeline is loaded again from the module or file recorded on the run (``mloop.pipeline.module`` /
``mloop.pipeline.file``), or passed explicitly. Resume refuses, naming what to do instead, when the run is not a
pipeline run, finished already, is still running in a live process, or when the code of a step that finished
has changed since (its outputs would no longer match its code: ``force=True`` reuses them anyway).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.entities import RunRecord, RunStatus
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.pipelines.cache import outputs_of
from mloop.pipelines.cachekey import Fingerprinter, differences
from mloop.pipelines.graph import bind_params
from mloop.pipelines.history import step_runs
from mloop.pipelines.pipeline import Pipeline, _client, find_pipeline, load_pipeline
from mloop.pipelines.references import bind_datasets
from mloop.pipelines.results import TAG, PipelineResult
from mloop.pipelines.runner import run_pipeline
from mloop.tracking.client import Client

if TYPE_CHECKING:
    from mloop.pipelines.executors import Executor

__all__ = ["resume", "resume_run"]


def resume(
    run: str, *, pipeline: Pipeline | str | None = None, force: bool = False,
    compute: str | Executor | None = None, client: Client | None = None, tags: Mapping[str, str] | None = None,
) -> PipelineResult:  # fmt: skip
    """Resume pipeline run ``run`` (see the module docstring).

    ``pipeline`` (a :class:`Pipeline` or ``FILE.py:NAME``) replaces the recorded file, e.g. after it moved.
    ``compute`` as for :meth:`Pipeline.run` (``None``: the workspace's default target, not the resumed run's).
    ``force`` resumes even when finished steps' code changed since, or when the run is ``RUNNING`` in a process
    that cannot be checked (another host)."""
    given = load_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    with _client(client) as c:
        return resume_run(c, run, pipeline=given, force=force, executor=compute, tags=tags)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process not yet reaped by its parent is a zombie: gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _check_gone(record: RunRecord) -> None:
    """Refuse to resume a run whose process may still be running it."""
    host, _, pid = record.tags.get(TAG.PROCESS, "").rpartition(":")
    if not pid.isdigit():
        raise Conflict(
            f"Pipeline run {record.id} is RUNNING and recorded no process to check. If the process running it is "
            "gone (killed, machine restarted), resume with --force (force=True)."
        )
    if host != socket.gethostname():
        raise Conflict(
            f"Pipeline run {record.id} is RUNNING in process {pid} on host {host!r}, which cannot be checked from "
            f"here ({socket.gethostname()!r}). If that process is gone, resume with --force (force=True)."
        )
    if int(pid) != os.getpid() and _alive(int(pid)):
        raise Conflict(
            f"Pipeline run {record.id} is still running in process {pid} on this machine. Wait for it to end, or "
            f"stop it (Ctrl-C, or `kill {pid}`: its steps end KILLED), then resume it."
        )


def _load(record: RunRecord, pipeline: Pipeline | None) -> Pipeline:
    name = record.tags[TAG.PIPELINE]
    if pipeline is not None:
        if pipeline.name != name:
            raise InvalidInput(
                f"Pipeline run {record.id} is a run of pipeline {name!r}, not {pipeline.name!r}. Pass the file "
                f"that defines {name!r}."
            )
        return pipeline
    file = record.tags.get(TAG.FILE)
    fix = f"Pass the pipeline: `mloop pipelines resume {record.id} --file FILE.py:NAME`"
    if not file:
        raise InvalidInput(f"Pipeline run {record.id} recorded no pipeline file (tag {TAG.FILE}). {fix}.")
    try:
        return find_pipeline(name, file, record.tags.get(TAG.MODULE))
    except NotFound as exc:
        raise NotFound(
            f"Cannot load pipeline {name!r} of run {record.id}: {exc} {fix}, or start a new run with "
            "`mloop pipelines run FILE.py:NAME`."
        ) from None


def _finished(client: Client, pipeline: Pipeline, steps: Mapping[str, RunRecord]) -> dict[str, RunRecord]:
    """Steps that finished with their outputs still stored, and whose upstream steps all did too."""
    graph, out = pipeline.graph, dict[str, RunRecord]()
    for name in graph.order:
        r = steps.get(name)
        if r is None or r.status is not RunStatus.FINISHED or r.tags.get(TAG.STATUS) not in ("ran", "cached"):
            continue
        if not all(client.artifacts.exists(o["digest"]) for o in outputs_of(r).values()):
            continue
        if graph.upstream[name] <= set(out):
            out[name] = r
    return out


def _changes(client: Client, pipeline: Pipeline, params: dict[str, dict[str, object]],
             finished: dict[str, RunRecord]) -> list[str]:  # fmt: skip
    """For each finished step whose key differs today (its code, a module it imports, the environment): what."""
    fp, graph, out = Fingerprinter(), pipeline.graph, []
    for name, r in finished.items():
        s = graph.steps[name]
        inputs = {a: outputs_of(finished[graph.producer[src]])[src]["digest"] for a, src in s.inputs.items()}
        data = bind_datasets(client, s, dict(params[name]))  # dataset parameters resolved as a run would
        key = fp.key(s.fn, name, data.key_params, {**inputs, **data.digests})
        if key.digest != r.tags.get(TAG.KEY):
            diffs = differences(json.loads(r.tags.get(TAG.KEY_JSON, "{}")), dict(key.components))
            out.append(f"step {name!r}: " + ("; ".join(f"{c}: {w}" for c, w in diffs) or "its key changed"))
    return out


def resume_run(
    client: Client, run: str, *, pipeline: Pipeline | None = None, force: bool = False,
    executor: str | Executor | None = None, tags: Mapping[str, str] | None = None,
) -> PipelineResult:  # fmt: skip
    """:func:`resume` on an open client."""
    record, steps = step_runs(client, run)
    spec = f"{record.tags.get(TAG.FILE, 'FILE.py')}:{record.tags.get(TAG.PIPELINE)}"
    if record.status is RunStatus.FINISHED:
        raise Conflict(
            f"Pipeline run {record.id} finished already: every step ran or was reused, so there is nothing to "
            f"resume. To run it again: `mloop pipelines run {spec}` (unchanged steps come from the cache)."
        )
    if record.status is RunStatus.RUNNING and not force:
        _check_gone(record)
    pipeline = _load(record, pipeline)
    params = {k: json.loads(v) for k, v in record.params.items()}
    try:
        bound = bind_params(pipeline.graph, params)
    except InvalidInput as exc:
        raise InvalidInput(
            f"Pipeline {pipeline.name!r} changed since run {record.id}, whose parameters no longer fit: {exc} "
            f"Start a new run: `mloop pipelines run {spec}`."
        ) from None
    finished = _finished(client, pipeline, steps)
    changed = _changes(client, pipeline, bound, finished)
    if changed and not force:
        raise Conflict(
            f"Steps that finished in pipeline run {record.id} changed since: {' | '.join(changed)}. Their outputs may "
            "not match the code any more. Resume with --force (force=True) to reuse them anyway (the unfinished "
            f"steps run with the current code), or start a new run, `mloop pipelines run {spec}`, which reuses from "
            "the cache only what is unchanged."
        )
    if record.status is RunStatus.RUNNING:  # its process died (kill -9, power loss): record what happened
        for r in steps.values():
            if r.status is RunStatus.RUNNING:
                client.store.end_run(r.id, RunStatus.KILLED, actor=client.actor, tags={TAG.STATUS: "killed"})
        client.store.end_run(record.id, RunStatus.KILLED, actor=client.actor)
    from mloop.pipelines.trigger import TRIGGER_TAGS

    # a resumed published run runs the same published version: say so, and who resumed it
    carried = {k: record.tags[k] for k in (TRIGGER_TAGS.PUBLISHED, TRIGGER_TAGS.VERSION) if k in record.tags}
    if carried:
        carried[TRIGGER_TAGS.BY] = f"user:{client.actor}"
    run_tags = {**carried, **dict(tags or {}), TAG.RESUMED_FROM: record.id}
    result = run_pipeline(client, pipeline, params, executor=executor, tags=run_tags, reuse=finished)
    return replace(result, resumed_from=record.id)
