"""What the step-run store methods refuse, and how they say it: shared by the SQL store and the direct SQLite one.

Pure (no SQLAlchemy): :mod:`mloop.store.direct` imports it on the ``sqlite3`` path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mloop.entities import LineageEdge, RunRecord, RunStatus
from mloop.errors import Conflict, InvalidInput, NotFound, shown
from mloop.store.sql.inputs import check_key, check_text, validate_name

__all__ = ["check_finished_runs", "missing_experiment", "missing_run", "tagged_filter", "taken"]


def _quote(text: str) -> str:
    """A quoted string of the filter language (a backslash escapes the next character)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tagged_filter(tags: Mapping[str, str]) -> str:
    """The ``search_runs`` filter that :meth:`~StepRunsMixin.recent_tagged_runs` answers."""
    if not tags:
        raise InvalidInput("recent_tagged_runs needs at least one tag to match; got none.")
    for key, value in tags.items():
        check_key("tag", key)
        if "`" in key:
            raise InvalidInput(f"Invalid tag key {shown(key)} for a tag match: it contains a backtick.")
        check_text("tag value", value)
    return " and ".join(f"tags.`{k}` = {_quote(v)}" for k, v in tags.items()) + " and status = 'FINISHED'"


def missing_experiment(experiment_id: str) -> NotFound:
    return NotFound(f"No experiment with id {experiment_id!r}. Create it first or pass its name.")


def missing_run(run_id: str) -> NotFound:
    return NotFound(f"No run with id {run_id!r}. List runs with `mloop runs list`.")


def taken(runs: Sequence[RunRecord]) -> Conflict:
    return Conflict(
        f"A run id among {shown([r.id for r in runs])} exists already; record_finished_runs writes new runs only "
        "(make ids with mloop.entities.new_id)."
    )


def check_finished_runs(runs: Sequence[RunRecord], lineage: Sequence[LineageEdge]) -> dict[str, list[LineageEdge]]:
    """Refuse what ``record_finished_runs`` cannot write (before any write); each run's incoming edges."""
    edges: dict[str, list[LineageEdge]] = {r.ref: [] for r in runs}
    if len(edges) != len(runs):
        raise InvalidInput("record_finished_runs got the same run id twice; give each run once.")
    for r in runs:
        validate_name("run", r.name)
        if not RunStatus(r.status).terminal or r.end_time is None:
            raise InvalidInput(
                f"record_finished_runs writes finished runs: run {r.id} has status {RunStatus(r.status).value} and "
                f"end time {r.end_time}. Give a final status (FINISHED, FAILED, KILLED) and an end time."
            )
        for key, value in r.params.items():
            check_key("param", key)
            check_text("param value", value)
        for key, value in r.tags.items():
            check_key("tag", key)
            check_text("tag value", value)
    for e in lineage:
        if e.target not in edges:
            raise InvalidInput(
                f"Lineage edge {e.source} -> {e.target} does not end at one of the runs written; "
                "record other edges with add_lineage."
            )
        for what, value in (("lineage source", e.source), ("lineage relation", e.relation)):
            check_text(what, value)
        edges[e.target].append(e)
    return edges
