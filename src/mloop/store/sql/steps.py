"""Pipeline step runs in the SQL store: the cache's one read and the one write of a pipeline run's cached steps.

A fully cached pipeline run records a step run per step (started and finished at once, with its lineage edges).
Written one store call at a time that was three short transactions a step; :meth:`record_finished_runs` writes
them all in one, with the same rows and the same events in the same order (``run.started``, each new
``lineage.recorded``, ``run.finished`` per run). ``mloop.store.direct`` implements both methods again on the
``sqlite3`` connection alone; the Store contract suite runs on both and compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select

from mloop.entities import LineageEdge, RunRecord, RunStatus
from mloop.errors import InvalidInput
from mloop.store.protocols.lineage import LineageEvents
from mloop.store.protocols.runs import RunEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked
from mloop.store.sql.runs import _write_values
from mloop.store.sql.stepchecks import check_finished_runs, missing_experiment, missing_run, tagged_filter, taken

__all__ = ["StepRunsMixin"]


class StepRunsMixin:
    engine: Engine
    search_runs: Callable[..., Any]  # SearchMixin's, beside this one in SqlStore

    @checked("experiment_id", "limit")
    def recent_tagged_runs(self, experiment_id: str, tags: Mapping[str, str], *, limit: int) -> list[RunRecord]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")
        page = self.search_runs(
            experiment_ids=[experiment_id], filter=tagged_filter(tags), order_by=["start_time DESC"], max_results=limit
        )
        return list(page.items)

    @checked("actor")
    def record_finished_runs(
        self, runs: Sequence[RunRecord], *, lineage: Sequence[LineageEdge] = (), actor: str
    ) -> None:
        edges = check_finished_runs(runs, lineage)
        if not runs:
            return
        parents = sorted({r.parent_id for r in runs if r.parent_id is not None} - {r.id for r in runs})
        experiments = sorted({r.experiment_id for r in runs})

        def write(conn: Connection) -> None:
            for exp in experiments:
                if conn.execute(select(t.experiments.c.id).where(t.experiments.c.id == exp)).first() is None:
                    raise missing_experiment(exp)
            for parent in parents:
                if conn.execute(select(t.runs.c.id).where(t.runs.c.id == parent)).first() is None:
                    raise missing_run(parent)
            for r in runs:
                conn.execute(t.runs.insert().values(
                    id=r.id, experiment_id=r.experiment_id, name=r.name.strip(), status=RunStatus.RUNNING.value,
                    start_time=r.start_time, parent_id=r.parent_id, actor=r.actor,
                    environment_digest=r.environment_digest, deleted=False,
                ))  # fmt: skip
                _write_values(conn, r.id, r.params, r.tags, (), new_run=True)
                write_event(conn, RunEvents.STARTED, r.ref, actor=actor,
                            payload={"experiment_id": r.experiment_id, "name": r.name.strip(),
                                     "parent_id": r.parent_id})  # fmt: skip
                for e in edges[r.ref]:
                    key = (t.lineage.c.source == e.source, t.lineage.c.target == e.target,
                           t.lineage.c.relation == e.relation)  # fmt: skip
                    if conn.execute(select(t.lineage.c.source).where(*key)).first() is not None:
                        continue
                    conn.execute(t.lineage.insert().values(source=e.source, target=e.target, relation=e.relation,
                                                           actor=e.actor, created_at=e.created_at))  # fmt: skip
                    write_event(conn, LineageEvents.RECORDED, e.target, actor=actor,
                                payload={"source": e.source, "relation": e.relation})  # fmt: skip
                status = RunStatus(r.status).value
                conn.execute(t.runs.update().where(t.runs.c.id == r.id).values(status=status, end_time=r.end_time))
                write_event(conn, RunEvents.FINISHED, r.ref, actor=actor, payload={"status": status})

        from sqlalchemy.exc import IntegrityError as SAIntegrityError

        try:
            run_in_transaction(self.engine, write)
        except SAIntegrityError as exc:  # a run id that exists already
            raise taken(runs) from exc
