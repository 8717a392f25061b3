"""The event part of the Store contract: one event per state change, none for no change, a gap-free cursor.

Every state-changing method of every store protocol is listed in its module's ``WRITES`` with the event it
records (:func:`mloop.store.protocols.all_writes`). :data:`WRITE_CALLS` below calls each of them once with valid
arguments, so a new write method fails :meth:`EventStoreContract.test_every_write_is_exercised` until it is
added here with its event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from mloop.entities import (
    ActionClaim,
    AlertChange,
    ArtifactEntry,
    LineageEdge,
    ManifestEntry,
    Metric,
    ModelFile,
    PipelineParam,
    RunRecord,
    RunStatus,
    new_id,
    now_ms,
)
from mloop.errors import AlreadyExists, Conflict, NotFound
from mloop.store import Store
from mloop.store.protocols import ArtifactEvents, ExperimentEvents, RunEvents, all_writes

__all__ = ["WRITE_CALLS", "EventStoreContract"]

ME = "tester"
_DIGEST = "blake3:" + "c" * 64
_FILES = [ManifestEntry("a.csv", 3, _DIGEST)]
_MODEL_FILES = (ModelFile("model.pkl", 10, _DIGEST),)

Step = Callable[[Store, dict[str, Any]], Any]


def _nothing(store: Store, st: dict[str, Any]) -> None:
    return None


def _second_run(store: Store, st: dict[str, Any]) -> None:
    st["run2"] = store.create_run(st["exp"].id, name="r2", actor=ME).id


def _deleted_run(store: Store, st: dict[str, Any]) -> None:
    store.delete_run(st["run2"], actor=ME)


def _second_dataset_version(store: Store, st: dict[str, Any]) -> None:
    store.create_dataset_version("d", files=[ManifestEntry("b.csv", 4, _DIGEST)], manifest_digest="m:2", actor=ME)


def _second_model_version(store: Store, st: dict[str, Any]) -> None:
    store.create_model_version("m", flavor="python", files=_MODEL_FILES, actor=ME)


def _publish(store: Store, digest: str) -> Any:
    return store.create_pipeline_version("p", digest=digest, code_digest=digest, file="f.py", variable="p",
                                         files=_FILES, actor=ME, params=[PipelineParam("s.n", "int", 1)])  # fmt: skip


def _second_pipeline_version(store: Store, st: dict[str, Any]) -> None:
    _publish(store, "sha256:" + "2" * 64)


def _finished_run(store: Store, st: dict[str, Any]) -> None:
    """One cached-step-like run under ``st["run"]`` with one lineage edge from it."""
    run = RunRecord(new_id(), st["exp"].id, "cached", RunStatus.FINISHED, now_ms(), now_ms(), st["run"], ME,
                    tags={"k": "v"})  # fmt: skip
    store.record_finished_runs([run], lineage=[LineageEdge(f"run:{st['run']}", run.ref, "input", ME, 0)], actor=ME)


def _set(key: str, value: Any) -> Step:
    def step(store: Store, st: dict[str, Any]) -> Any:
        st[key] = value(store, st)

    return step


# method -> (set-up, the write). Run in this order: later writes use what earlier ones made.
WRITE_CALLS: dict[str, tuple[Step, Step]] = {
    "set_setting": (_nothing, lambda s, st: s.set_setting("k", "v", actor=ME)),
    "create_experiment": (_nothing, _set("exp", lambda s, st: s.create_experiment("e", actor=ME))),
    "get_or_create_experiment": (_nothing, lambda s, st: s.get_or_create_experiment("e2", actor=ME)),
    "create_run": (_nothing, _set("run", lambda s, st: s.create_run(st["exp"].id, name="r", actor=ME).id)),
    "log_batch": (_nothing, lambda s, st: s.log_batch(st["run"], metrics=[Metric("m", 1.0)], params={"p": "1"})),
    "record_artifacts": (_nothing, lambda s, st: s.record_artifacts(st["run"], [ArtifactEntry("a", _DIGEST, 3)],
                                                                     actor=ME)),
    "end_run": (_nothing, lambda s, st: s.end_run(st["run"], RunStatus.FINISHED, actor=ME)),
    "delete_run": (_second_run, lambda s, st: s.delete_run(st["run2"], actor=ME)),
    "restore_run": (_nothing, lambda s, st: s.restore_run(st["run2"], actor=ME)),
    "purge_deleted_runs": (_deleted_run, lambda s, st: s.purge_deleted_runs(actor=ME)),
    "put_environment": (_nothing, lambda s, st: s.put_environment("sha256:" + "e" * 64, {"python": "3.11"})),
    "append_event": (_nothing, lambda s, st: s.append_event("custom.thing", "x:1", actor=ME)),
    "create_dataset_version": (_nothing, lambda s, st: s.create_dataset_version("d", files=_FILES,
                                                                                 manifest_digest="m:1", actor=ME)),
    "set_dataset_alias": (_nothing, lambda s, st: s.set_dataset_alias("d", "prod", 1, actor=ME)),
    "delete_dataset_version": (_second_dataset_version, lambda s, st: s.delete_dataset_version("d", 2, actor=ME)),
    "add_lineage": (_nothing, lambda s, st: s.add_lineage("data:d/1", f"run:{st['run']}", "input", actor=ME)),
    "create_model_version": (_nothing, lambda s, st: s.create_model_version("m", flavor="python",
                                                                             files=_MODEL_FILES, actor=ME)),
    "move_model_alias": (_nothing, lambda s, st: s.move_model_alias("m", "prod", 1, expected=None, actor=ME)),
    "set_model_version_status": (_second_model_version,
                                 lambda s, st: s.set_model_version_status("m", 2, "archived", actor=ME)),
    "set_model_version_tags": (_nothing, lambda s, st: s.set_model_version_tags("m", 1, {"k": "v"}, actor=ME)),
    "add_evaluation": (_nothing, lambda s, st: s.add_evaluation("m", 1, data_ref="data:d/1", task="classification",
                                                                metrics={"accuracy": 1.0}, actor=ME, rows=3)),
    "add_approval": (_nothing, lambda s, st: s.add_approval("m", 1, alias="prod", actor=ME)),
    "create_pipeline_version": (_nothing, lambda s, st: _publish(s, "sha256:" + "1" * 64)),
    "set_pipeline_alias": (_second_pipeline_version, lambda s, st: s.set_pipeline_alias("p", "prod", 2, actor=ME)),
    "create_schedule": (_nothing, lambda s, st: s.create_schedule("sch", pipeline="p", cron="* * * * *", actor=ME,
                                                                  anchor_at=0)),
    "pause_schedule": (_nothing, lambda s, st: s.pause_schedule("sch", actor=ME)),
    "resume_schedule": (_nothing, lambda s, st: s.resume_schedule("sch", actor=ME, anchor_at=0)),
    "claim_schedule_fire": (_nothing, lambda s, st: s.claim_schedule_fire("sch", 60_000, expected_anchor=0,
                                                                          actor=ME)),
    "skip_schedule_fires": (_nothing, lambda s, st: s.skip_schedule_fires("sch", 600_000, expected_anchor=60_000,
                                                                          actor=ME, missed=9)),
    "delete_schedule": (_nothing, lambda s, st: s.delete_schedule("sch", actor=ME)),
    "record_finished_runs": (_nothing, _finished_run),
    "create_endpoint": (_nothing, lambda s, st: s.create_endpoint("ep", spec={"traffic": {"model:m/1": 100}},
                                                                  actor=ME, cause="test")),
    "update_endpoint": (_nothing, lambda s, st: s.update_endpoint("ep", spec={"traffic": {"model:m/2": 100}},
                                                                  actor=ME, expected_generation=1)),
    "set_endpoint_status": (_nothing, lambda s, st: s.set_endpoint_status("ep", {"phase": "running"}, actor=ME)),
    "delete_endpoint": (_nothing, lambda s, st: s.delete_endpoint("ep", actor=ME)),
    "create_monitor": (_nothing, lambda s, st: s.create_monitor("mon", spec={"endpoint": "ep"}, actor=ME)),
    "update_monitor": (_nothing, lambda s, st: s.update_monitor("mon", actor=ME, paused=True)),
    "record_monitor_window": (_nothing, lambda s, st: s.record_monitor_window(
        "mon", results=[], cursor={"end": 1}, expected_cursor={}, actor=ME,
        alerts=[AlertChange("drift", "x", "opened", {"value": 1.0})])),
    "delete_monitor": (_nothing, lambda s, st: s.delete_monitor("mon", actor=ME)),
    "create_automation": (_nothing, lambda s, st: s.create_automation("au", spec={"on": "x.y"}, actor=ME,
                                                                      anchor_at=0)),
    "update_automation": (_nothing, lambda s, st: s.update_automation("au", actor=ME, paused=True)),
    "claim_automation_actions": (_nothing, lambda s, st: st.update(action=s.claim_automation_actions(
        [ActionClaim("au", "event:1", 1), ActionClaim("au", "event:2", 2, status="skipped",
                                                      outcome={"reason": "cool-down"})],
        cursor=2, expected_cursor=0, actor=ME)[0].id)),
    "claim_automation_fire": (_nothing, lambda s, st: s.claim_automation_fire("au", 60_000, expected_anchor=0,
                                                                              actor=ME)),
    "start_automation_action": (_nothing, lambda s, st: s.start_automation_action(st["action"], actor=ME)),
    "finish_automation_action": (_nothing, lambda s, st: s.finish_automation_action(
        st["action"], status="succeeded", actor=ME, outcome={"ok": True})),
    "delete_automation": (_nothing, lambda s, st: s.delete_automation("au", actor=ME)),
}  # fmt: skip


def _last_id(store: Store) -> int:
    last = 0
    cursor = None
    while True:
        page = store.list_events(cursor=cursor, limit=1000)
        if page.items:
            last = page.items[-1].id
        if page.next_cursor is None:
            return last
        cursor = page.next_cursor


def _since(store: Store, after: int) -> list[str]:
    return [e.type for e in store.list_events(after=after, limit=1000).items]


class EventStoreContract:
    """Events: exactly one per state change, in its transaction; readable by a cursor that never skips."""

    def test_every_write_is_exercised(self, store: Store) -> None:
        assert list(WRITE_CALLS) == [m for m in WRITE_CALLS if m in all_writes()]
        assert set(WRITE_CALLS) == set(all_writes()), "add the new write to WRITE_CALLS with its event"

    def test_every_store_write_emits_exactly_one_event(self, store: Store) -> None:
        writes = all_writes()
        state: dict[str, Any] = {}
        seen: dict[str, list[str]] = {}
        for method, (setup, write) in WRITE_CALLS.items():
            setup(store, state)
            before = _last_id(store)
            write(store, state)
            seen[method] = _since(store, before)
        expected = {m: [] if e is None else list(e) if isinstance(e, tuple) else ["custom.thing" if e == "*" else e]
                    for m, e in writes.items()}  # fmt: skip
        assert seen == expected

    def test_no_event_without_a_change(self, store: Store) -> None:
        exp = store.create_experiment("e", actor=ME)
        run = store.create_run(exp.id, name="r", actor=ME).id
        store.create_dataset_version("d", files=_FILES, manifest_digest="m:1", actor=ME)
        store.add_lineage("data:d/1", f"run:{run}", "input", actor=ME)
        store.create_model_version("m", flavor="python", files=_MODEL_FILES, actor=ME)
        store.move_model_alias("m", "prod", 1, expected=None, actor=ME)
        before = _last_id(store)
        with pytest.raises(AlreadyExists):
            store.create_experiment("e", actor=ME)  # refused: rolled back, no event
        store.get_or_create_experiment("e", actor=ME)  # exists: no change
        store.create_dataset_version("d", files=_FILES, manifest_digest="m:1", actor=ME)  # same content
        store.add_lineage("data:d/1", f"run:{run}", "input", actor=ME)  # already recorded
        with pytest.raises(Conflict):
            store.move_model_alias("m", "prod", 1, expected=None, actor=ME)  # lost the compare-and-swap
        with pytest.raises(NotFound):
            store.end_run("f" * 32, RunStatus.FINISHED, actor=ME)
        assert _since(store, before) == []

    def test_cursor_never_skips_under_concurrent_writers(self, store: Store) -> None:
        exp = store.create_experiment("e", actor=ME)
        start = _last_id(store)
        seen: list[int] = []
        done = threading.Event()
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            try:
                for i in range(25):
                    store.create_run(exp.id, name=f"w{worker}-{i}", actor=ME)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def read() -> None:
            cursor = start
            while True:
                finished = done.is_set()
                items = store.list_events(after=cursor, limit=50).items
                seen.extend(e.id for e in items)
                cursor = items[-1].id if items else cursor
                if finished and not items:
                    return

        reader = threading.Thread(target=read)
        reader.start()
        writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for th in writers:
            th.start()
        for th in writers:
            th.join()
        done.set()
        reader.join()
        assert not errors
        everything = [e.id for e in store.list_events(after=start, limit=1000).items]
        assert len(everything) == 100
        assert seen == everything  # each exactly once, in order: nothing committed behind the cursor

    def test_every_state_change_is_an_event(self, store: Store) -> None:
        run_id = store.create_run(store.get_or_create_experiment("exp", actor=ME).id, name="r", actor=ME).id
        store.record_artifacts(run_id, [ArtifactEntry("a", "blake3:" + "a" * 64, 1, 1)], actor=ME)
        store.end_run(run_id, RunStatus.FINISHED, actor=ME)
        store.delete_run(run_id, actor=ME)
        store.restore_run(run_id, actor=ME)
        events = store.list_events().items
        assert [e.type for e in events] == [
            ExperimentEvents.CREATED,
            RunEvents.STARTED,
            ArtifactEvents.LOGGED,
            RunEvents.FINISHED,
            RunEvents.DELETED,
            RunEvents.RESTORED,
        ]
        assert all(e.actor == ME for e in events)
        assert [e.id for e in events] == sorted(e.id for e in events)
        assert events[3].payload == {"status": "FINISHED"}
        mine = store.list_events(subject=f"run:{run_id}", types=[RunEvents.FINISHED]).items
        assert [e.type for e in mine] == [RunEvents.FINISHED]
        later = store.list_events(after=events[2].id).items
        assert [e.id for e in later] == [e.id for e in events[3:]]
        page = store.list_events(limit=4)
        assert len(page.items) == 4 and page.next_cursor
        rest = store.list_events(cursor=page.next_cursor)
        assert [e.id for e in [*page.items, *rest.items]] == [e.id for e in events]

    def test_append_event(self, store: Store) -> None:
        ev = store.append_event("custom.thing", "model:churn/1", actor="bot", payload={"n": 1})
        assert store.list_events(types=["custom.thing"]).items == [ev]
