"""Cached steps are written together (``record_finished_runs``) yet the store sees what one call per write gave.

The runner keeps a pipeline run's cached step runs and writes them in one transaction before its next write. The
event log must still read as before: per step run ``run.started``, a ``lineage.recorded`` for each upstream step
run, ``run.finished``; upstream runs before the runs that read them; the pipeline run's start first, its end last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline_cases import write

from mloop.entities import RunStatus
from mloop.pipelines import LocalExecutor, Pipeline, PipelineResult
from mloop.pipelines.results import TAG
from mloop.tracking.client import Client

UPSTREAM = {"a": set(), "b": {"a"}, "c": {"b"}, "d": set(), "e": {"a"}}  # flow.py's DAG


def _last_event(client: Client) -> int:
    items = client.store.list_events(limit=100_000).items
    return items[-1].id if items else 0


def _check_log(client: Client, result: PipelineResult, after: int) -> list[tuple[str, str]]:
    """The invariants of a pipeline run's events; returns them as (type, step or "pipeline")."""
    events = client.store.list_events(after=after, limit=10_000).items
    run_ids = {s.run_id: n for n, s in result.steps.items()}
    named = [(e.type, "pipeline" if e.subject == f"run:{result.run_id}" else run_ids[e.subject[4:]]) for e in events]
    assert named[0] == ("run.started", "pipeline") and named[-1] == ("run.finished", "pipeline")
    position = {(t, who): i for i, (t, who) in enumerate(named)}
    for step, ups in UPSTREAM.items():
        started, finished = position[("run.started", step)], position[("run.finished", step)]
        mine = f"run:{result.steps[step].run_id}"
        edges = [e for e in events if e.type == "lineage.recorded" and e.subject == mine]
        assert all(started < events.index(e) < finished for e in edges)
        assert sorted(e.payload["source"] for e in edges) == sorted(f"run:{result.steps[u].run_id}" for u in ups)
        for u in ups:  # an upstream step run is finished before its readers start
            assert position[("run.finished", u)] < started
    return named


def test_a_fully_cached_run_records_every_step_run_edge_and_event(
    client: Client, load: Callable[..., Pipeline]
) -> None:
    pool = LocalExecutor(max_workers=1)
    first = load().run(client=client, compute=pool)
    before = _last_event(client)
    again = load().run(client=client, compute=pool)
    assert {s.status for s in again.steps.values()} == {"cached"}
    named = _check_log(client, again, before)
    steps = [who for t, who in named if who != "pipeline"]
    assert len(named) == 2 + 2 * 5 + 3  # the pipeline run, 5 step runs, 3 lineage edges (b, c, e)
    for step in "abcde":  # each step's events are one block: started, its edges, finished
        block = [i for i, who in enumerate(steps) if who == step]
        assert block == list(range(block[0], block[0] + len(block)))
    for name, s in again.steps.items():
        run = client.store.get_run(str(s.run_id))
        assert run.status is RunStatus.FINISHED and run.parent_id == again.run_id and run.end_time is not None
        assert run.name.endswith(f".{name}") and run.experiment_id == client.get_run(str(again.run_id)).experiment_id
        assert run.tags[TAG.STATUS] == "cached" and run.tags[TAG.CACHED_FROM] == first.steps[name].run_id
        assert run.tags[TAG.KEY] == first.steps[name].key == s.key
        assert run.tags[TAG.OUTPUTS] and run.tags[TAG.REASON] == s.reason
    assert client.store.get_run(str(again.steps["a"].run_id)).params == {"n": "3"}


def test_cached_steps_are_written_before_a_step_that_runs(
    client: Client, load: Callable[..., Pipeline], project: Path
) -> None:
    pool = LocalExecutor(max_workers=1)
    load().run(client=client, compute=pool)
    write(project / "deep.py", "def scale(x):\n    return x * 3\n")  # b (and so c) must run; a, d, e are cached
    before = _last_event(client)
    result = load().run(client=client, compute=pool)
    assert {n: s.status for n, s in result.steps.items()} == {"a": "cached", "b": "ran", "c": "ran", "d": "cached",
                                                              "e": "cached"}  # fmt: skip
    named = _check_log(client, result, before)
    assert named.index(("run.finished", "a")) < named.index(("run.started", "b"))
    # e (cached, begun while b ran) is written before b's end, as it was when each cached step was written at once
    assert named.index(("run.finished", "e")) < named.index(("run.finished", "b"))
    lineage: Any = client.store.list_lineage(f"run:{result.steps['b'].run_id}", direction="up")
    assert [e.source for e in lineage] == [f"run:{result.steps['a'].run_id}"]
