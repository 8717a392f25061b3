"""Finding a reusable earlier step run, and saying why a step was or was not reused.

The cache is the run history itself: a step run records its key (``mloop.step.key``), the key's components
and its outputs' digests as tags, so a hit is a finished step run of the same pipeline with the same key,
accepted by the step's cache policy, whose output blobs all still exist in the artifact store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mloop.entities import RunRecord, RunStatus, now_ms
from mloop.pipelines.cachekey import CacheKey, differences
from mloop.pipelines.policies import CachePolicy
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client

__all__ = ["Lookup", "Prefetched", "explain_change", "last_step_run", "lookup", "outputs_of"]


def _quote(text: str) -> str:
    """A quoted string of the filter language (a backslash escapes the next character)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def outputs_of(run: RunRecord) -> dict[str, dict[str, Any]]:
    text = run.tags.get(TAG.OUTPUTS)
    return dict(json.loads(text)) if text else {}


@dataclass(frozen=True)
class Lookup:
    hit: RunRecord | None
    reason: str


def _step_runs(client: Client, experiment_id: str, pipeline: str, step: str, extra: str = "") -> list[RunRecord]:
    flt = (f"tags.`{TAG.PIPELINE}` = {_quote(pipeline)} and tags.`{TAG.STEP}` = {_quote(step)} "
           f"and status = 'FINISHED'{extra}")  # fmt: skip
    page = client.store.search_runs(
        experiment_ids=[experiment_id], filter=flt, order_by=["start_time DESC"], max_results=20
    )
    return list(page.items)


def last_step_run(
    client: Client, experiment_id: str, pipeline: str, step: str, *, before: int | None = None
) -> RunRecord | None:
    """The newest finished run of ``step`` (started before ``before``, if given) that recorded a key."""
    extra = "" if before is None else f" and start_time < {before}"
    return next((r for r in _step_runs(client, experiment_id, pipeline, step, extra) if r.tags.get(TAG.KEY)), None)


def explain_change(previous: RunRecord | None, key: CacheKey) -> str:
    """What differs between ``previous``'s key and ``key``, in words."""
    if previous is None:
        return "no earlier run of this step"
    old = previous.tags.get(TAG.KEY_JSON)
    if not old:
        return f"earlier run {previous.id} recorded no key"
    diffs = differences(json.loads(old), dict(key.components))
    if not diffs:
        return f"same key as run {previous.id}"
    return "; ".join(f"{component}: {what}" for component, what in diffs)


def lookup(client: Client, experiment_id: str, pipeline: str, step: str, key: CacheKey, policy: CachePolicy) -> Lookup:
    """A reusable finished run with ``key``, or why there is none (the change since the last run)."""
    if not policy.enabled:
        return Lookup(None, "cache disabled for this step (cache=False)")
    candidates = _step_runs(client, experiment_id, pipeline, step, f" and tags.`{TAG.KEY}` = {_quote(key.digest)}")
    return _choose(client, experiment_id, pipeline, step, key, policy, candidates)


def _choose(
    client: Client, experiment_id: str, pipeline: str, step: str, key: CacheKey, policy: CachePolicy,
    candidates: list[RunRecord], last: dict[str, RunRecord] | None = None,
) -> Lookup:  # fmt: skip
    refusals = []
    for run in candidates:
        if run.status is not RunStatus.FINISHED or run.tags.get(TAG.STATUS) not in ("ran", "cached"):
            continue  # e.g. a run ended FINISHED at exit by its process without ever storing its outputs
        refusal = policy.refusal(run, now_ms=now_ms(), actor=client.actor)
        if refusal is not None:
            refusals.append(refusal)
            continue
        outputs = outputs_of(run)
        missing = [name for name, o in outputs.items() if not client.artifacts.exists(o["digest"])]
        if missing:
            refusals.append(f"outputs {missing} of run {run.id} are missing from the artifact store")
            continue
        return Lookup(run, f"same key as run {run.tags.get(TAG.CACHED_FROM) or run.id}")
    if refusals:
        return Lookup(None, refusals[0])
    previous = last.get(step) if last is not None else last_step_run(client, experiment_id, pipeline, step)
    return Lookup(None, explain_change(previous, key))


class Prefetched:
    """:func:`lookup` for every step of one pipeline run, starting from one query instead of one per step.

    The first lookup reads the newest ``per_step * steps`` finished step runs of the pipeline (newest first, as
    :func:`lookup` orders them). A step whose key is among them gets the answer :func:`lookup` would give (the
    newest acceptable run). When the window holds the pipeline's whole history, a miss is answered from it too;
    otherwise a miss falls back to :func:`lookup`'s own query, so an older hit beyond the window is still found.
    """

    def __init__(self, client: Client, experiment_id: str, pipeline: str, steps: int, per_step: int = 5) -> None:
        self.client, self.experiment_id, self.pipeline = client, experiment_id, pipeline
        self.limit = max(1, min(1000, per_step * steps))
        self._by_key: dict[tuple[str, str], list[RunRecord]] = {}
        self._last: dict[str, RunRecord] = {}  # each step's newest run (what explain_change compares with)
        self._complete: bool | None = None  # None: not read yet

    def _read(self) -> None:
        tags = {TAG.PIPELINE: self.pipeline, TAG.KIND: "step"}  # FINISHED ones, newest first (one query)
        runs = self.client.store.recent_tagged_runs(self.experiment_id, tags, limit=self.limit)
        for run in runs:
            step, digest = run.tags.get(TAG.STEP), run.tags.get(TAG.KEY)
            if step is not None and digest is not None:
                self._by_key.setdefault((step, digest), []).append(run)
                self._last.setdefault(step, run)
        self._complete = len(runs) < self.limit

    def lookup(self, step: str, key: CacheKey, policy: CachePolicy) -> Lookup:
        if not policy.enabled:
            return Lookup(None, "cache disabled for this step (cache=False)")
        if self._complete is None:
            self._read()
        candidates = self._by_key.get((step, key.digest), [])
        found = _choose(self.client, self.experiment_id, self.pipeline, step, key, policy, candidates, self._last)
        if found.hit is None and not self._complete:  # older runs beyond the window may still be acceptable
            return lookup(self.client, self.experiment_id, self.pipeline, step, key, policy)
        return found
