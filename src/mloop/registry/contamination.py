"""Holdout contamination: did the run that made a model see the holdout it is evaluated on?

A model version is *contaminated* for holdout ``H`` when the run that trained it (or any parent run, e.g. the
pipeline run around a step; or an *upstream* run, whose outputs it consumed: the steps before it in a pipeline):

- read ``H`` (lineage ``input``), or tried to and was refused (lineage ``read-denied``: the attempt alone
  means the training code reached for it, and what it did after the refusal is invisible to mloop);
- read a dataset version holding any of ``H``'s files byte for byte (same digest);
- read a version ``H`` was made from (the data it was split from holds the holdout's rows; not counted for
  upstream runs, since splitting is what a pipeline's preparing step does with it), or one made from ``H``;
- was started in a process that had read ``H`` through ``holdout_access`` (lineage ``override-read``);
- or a ``dataset.holdout_read`` event other than an evaluation's names that run.

The promotion gate runs this check on every promotion, whatever the policy says (see
:func:`mloop.registry.gates.uncontaminated`). It sees what went through mloop; docs/datasets.md says plainly
what the embedded mode cannot see (a process that opens the raw files on disk itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mloop.entities import Event, ModelVersion
from mloop.errors import NotFound
from mloop.guard import EVALUATION, OVERRIDE_READ, READ_DENIED, HoldoutEvents
from mloop.refs import parse_ref

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["contamination"]

_MAX_DEPTH = 50
_MAX_UPSTREAM = 1000


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _holdout_reads(client: Context, holdout: str) -> Iterator[Event]:
    cursor = None
    while True:
        page = client.store.list_events(types=[HoldoutEvents.READ], subject=holdout, cursor=cursor,
                                        limit=1000)  # fmt: skip
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _runs(client: Context, run_id: str | None) -> Iterator[str]:
    seen: set[str] = set()
    while run_id is not None and run_id not in seen and len(seen) < _MAX_DEPTH:
        seen.add(run_id)
        yield run_id
        try:
            run_id = client.store.get_run(run_id).parent_id
        except NotFound:
            return


def _upstream(client: Context, runs: list[str]) -> list[str]:
    """Runs whose outputs ``runs`` consumed (``run: -> run:`` lineage, e.g. a pipeline step's upstream steps),
    transitively, other than ``runs``; at most :data:`_MAX_UPSTREAM`."""
    seen, frontier = set(runs), list(runs)
    found: list[str] = []
    while frontier and len(found) < _MAX_UPSTREAM:
        for edge in client.store.list_lineage(f"run:{frontier.pop()}", direction="up"):
            other = edge.source.removeprefix("run:")
            if edge.source.startswith("run:") and other not in seen:
                seen.add(other)
                found.append(other)
                frontier.append(other)
    return found


def _lineage_closure(client: Context, ref: str, direction: str) -> set[str]:
    """Every data ref reachable from ``ref`` upstream or downstream (datasets only, bounded)."""
    found: set[str] = set()
    frontier = [ref]
    while frontier and len(found) < 10_000:
        current = frontier.pop()
        for edge in client.store.list_lineage(current, direction=direction):
            other = edge.source if direction == "up" else edge.target
            if other.startswith("data:") and other not in found and other != ref:
                found.add(other)
                frontier.append(other)
    return found


def _digests(client: Context, data_ref: str) -> set[str]:
    r = parse_ref(data_ref, default_kind="data")
    try:
        version = client.store.get_dataset_version(r.name, r.version, r.alias)
        return {e.digest for e in client.store.list_dataset_files(version.name, version.version)}
    except NotFound:
        return set()


def contamination(client: Context, version: ModelVersion, holdout: str) -> list[str]:
    """Findings (empty when clean) that ``version``'s training touched ``holdout`` (``data:<name>/<n>``)."""
    runs = list(_runs(client, version.run_id))
    if not runs:
        return []
    upstream = set(_upstream(client, runs))
    runs += sorted(upstream)
    holdout_files = _digests(client, holdout)
    sources = _lineage_closure(client, holdout, "up")
    derived = _lineage_closure(client, holdout, "down")
    findings: list[str] = []
    for run_id in runs:
        run_ref = f"run:{run_id}"
        for edge in client.store.list_lineage(run_ref, direction="up"):
            data = edge.source
            if not data.startswith("data:"):
                continue
            when = _when(edge.created_at)
            if data == holdout:
                verb = {READ_DENIED: "tried to read (refused)",
                        OVERRIDE_READ: "was started after holdout_access read"}.get(edge.relation, "read")  # fmt: skip
                findings.append(f"{run_ref} {verb} {holdout} at {when}")
            elif edge.relation in (READ_DENIED, OVERRIDE_READ):
                continue
            elif data in sources and run_id not in upstream:
                findings.append(f"{run_ref} read {data}, which {holdout} was split from, at {when}")
            elif data in derived:
                findings.append(f"{run_ref} read {data}, made from {holdout}, at {when}")
            elif holdout_files and holdout_files & _digests(client, data):
                findings.append(f"{run_ref} read {data}, which holds files identical to {holdout}'s, at {when}")
    refs = {f"run:{r}" for r in runs}
    for event in _holdout_reads(client, holdout):
        if event.payload.get("run") in refs and event.payload.get("via") != EVALUATION:
            how = event.payload.get("via") or "an unaudited path"
            findings.append(f"{event.payload['run']} read {holdout} through {how} at {_when(event.time)}")
    return findings
