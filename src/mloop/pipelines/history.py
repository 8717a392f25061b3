"""Reading past pipeline runs: why a step was reused or run (``explain``), and its captured logs."""

from __future__ import annotations

import json
from typing import Any

from mloop.entities import RunRecord
from mloop.errors import InvalidInput, NotFound
from mloop.pipelines.cache import explain_change, last_step_run
from mloop.pipelines.cachekey import CacheKey, differences
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client

__all__ = ["explain_step", "pipeline_run", "step_logs", "step_runs"]


def pipeline_run(client: Client, run: str) -> RunRecord:
    """The pipeline run ``run`` (an id or a unique start or end of one); a step run's id names its pipeline run."""
    record = client.get_run(client.resolve_run_id(run))
    if record.tags.get(TAG.KIND) == "step":
        raise InvalidInput(
            f"Run {record.id} is step {record.tags.get(TAG.STEP)!r} of pipeline run {record.parent_id}, not a "
            f"pipeline run. Use the pipeline run's id: {record.parent_id}."
        )
    if record.tags.get(TAG.KIND) != "pipeline":
        raise InvalidInput(
            f"Run {record.id} is not a pipeline run (no tag {TAG.KIND}=pipeline). "
            f"List pipeline runs with `mloop runs list --filter \"tags.`{TAG.KIND}` = 'pipeline'\"`."
        )
    return record


def step_runs(client: Client, run: str) -> tuple[RunRecord, dict[str, RunRecord]]:
    """The pipeline run and its step runs by step name."""
    record = pipeline_run(client, run)
    page = client.store.search_runs(
        experiment_ids=[record.experiment_id], max_results=10_000, order_by=["start_time ASC"],
        filter=f"parent_id = '{record.id}' and tags.`{TAG.KIND}` = 'step'",
    )  # fmt: skip
    return record, {r.tags[TAG.STEP]: r for r in page.items}


def _step(client: Client, run: str, step: str) -> tuple[RunRecord, RunRecord]:
    record, steps = step_runs(client, run)
    if step not in steps:
        raise NotFound(
            f"Pipeline run {record.id} has no step run {step!r}; it has {sorted(steps) or 'none'} (steps skipped "
            "after a failure have no run)."
        )
    return record, steps[step]


def explain_step(client: Client, run: str, step: str) -> dict[str, Any]:
    """Why ``step`` of pipeline run ``run`` was reused or run: which key components changed since the run before."""
    record, child = _step(client, run, step)
    run_id, pipeline = record.id, record.tags[TAG.PIPELINE]
    key = CacheKey.from_json(child.tags.get(TAG.KEY_JSON, "{}"))
    previous = last_step_run(client, record.experiment_id, pipeline, step, before=child.start_time)
    old = {} if previous is None else json.loads(previous.tags.get(TAG.KEY_JSON, "{}"))
    changes = [] if previous is None else differences(old, dict(key.components))
    tags = child.tags
    return {
        "run_id": run_id, "step": step, "step_run_id": child.id, "status": tags.get(TAG.STATUS, child.status.value),
        "reason": tags.get(TAG.REASON, ""), "key": tags.get(TAG.KEY), "cached_from": tags.get(TAG.CACHED_FROM),
        "previous_run_id": None if previous is None else previous.id,
        "changes": [{"component": c, "change": w} for c, w in changes],
        "summary": explain_change(previous, key), "components": dict(key.components),
    }  # fmt: skip


def step_logs(client: Client, run: str, step: str | None = None) -> dict[str, dict[str, str]]:
    """Captured ``logs/*`` (stdout, stderr, error; ``.N`` for retry attempts) of each step run, or of one.

    A cached step's logs are those of the run whose outputs it reused."""
    chosen = {step: _step(client, run, step)[1]} if step is not None else step_runs(client, run)[1]
    out: dict[str, dict[str, str]] = {}
    for name, r in chosen.items():
        made_by = r.tags.get(TAG.CACHED_FROM) or r.id  # a cached step shows the logs of the run it reused
        logs = [a for a in client.list_artifacts(made_by) if a.path.startswith("logs/")]
        out[name] = {
            a.path.removeprefix("logs/"): client.read_artifact(made_by, a.path).decode(errors="replace") for a in logs
        }
    return out
