"""The published-pipeline and schedule part of the Store contract (and the scheduler's store-wide lock)."""

from __future__ import annotations

import pytest

from mloop.entities import ManifestEntry, PipelineParam, PipelineVersion
from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.store import Store
from mloop.store.protocols.schedules import ScheduleEvents
from mloop.testing.threads import in_threads

__all__ = ["PipelineEventsContract", "PipelineStoreContract", "ScheduleStoreContract"]

ME = "tester"
_D = "sha256:" + "d" * 64
FILES = (ManifestEntry("flow.py", 10, _D), ManifestEntry("pkg/helpers.py", 5, "sha256:" + "e" * 64))
PARAMS = (PipelineParam("a.n", "int", 3), PipelineParam("fit.C", "float", None, required=True))


def _publish(store: Store, name: str, digest: str) -> tuple[PipelineVersion, bool]:
    return store.create_pipeline_version(
        name, digest=digest, code_digest="sha256:" + digest[-1] * 64, file="flow.py", variable="flow", files=FILES,
        actor=ME, source="/src/flow.py", params=PARAMS, steps=("a", "fit"), description="first",
    )  # fmt: skip


class PipelineStoreContract:
    def test_publish_versions_dedupe_and_read(self, store: Store) -> None:
        v1, created = _publish(store, "train", "sha256:" + "1" * 64)
        assert created and v1.ref == "pipeline:train/1"
        same, created = _publish(store, "train", "sha256:" + "1" * 64)
        assert not created and same == v1
        v2, created = _publish(store, "train", "sha256:" + "2" * 64)
        assert created and v2.version == 2
        got = store.get_pipeline_version("train", 1)
        assert got == v1 and got.files == FILES and got.params == PARAMS and got.steps == ("a", "fit")
        assert (got.file, got.variable, got.source, got.description) == ("flow.py", "flow", "/src/flow.py", "first")
        assert store.get_pipeline_version("train").version == 2
        with pytest.raises(NotFound, match="latest is 2"):
            store.get_pipeline_version("train", 9)
        with pytest.raises(NotFound, match="mloop pipelines publish"):
            store.get_pipeline_version("ghost")
        page = store.list_pipeline_versions("train", limit=1)
        rest = store.list_pipeline_versions("train", cursor=page.next_cursor)
        assert [v.version for v in [*page.items, *rest.items]] == [2, 1]
        (p,) = store.list_pipelines().items
        assert (p.name, p.latest_version, p.version_count) == ("train", 2, 2)
        assert {f.digest for f in FILES} <= store.referenced_digests()
        with pytest.raises(InvalidInput):
            store.create_pipeline_version("bad name!", digest="x", code_digest="y", file="f.py", variable="v",
                                          files=FILES, actor=ME)  # fmt: skip
        with pytest.raises(InvalidInput):
            store.create_pipeline_version("empty", digest="x", code_digest="y", file="f.py", variable="v", files=(),
                                          actor=ME)  # fmt: skip

    def test_pipeline_aliases(self, store: Store) -> None:
        _publish(store, "p", "sha256:" + "1" * 64)
        _publish(store, "p", "sha256:" + "2" * 64)
        store.set_pipeline_alias("p", "prod", 1, actor=ME)
        assert store.get_pipeline_version("p", alias="prod").version == 1
        assert store.set_pipeline_alias("p", "prod", 2, actor=ME).aliases == ("prod",)
        assert store.get_pipeline_version("p", 1).aliases == ()
        with pytest.raises(NotFound, match="no alias 'staging'"):
            store.get_pipeline_version("p", alias="staging")
        with pytest.raises(InvalidInput):
            store.set_pipeline_alias("p", "latest", 1, actor=ME)

    def test_concurrent_publishes(self, store: Store) -> None:
        digests = ["sha256:" + c * 64 for c in "12312"]
        results = in_threads(lambda d: _publish(store, "busy", d), [(d,) for d in digests])
        assert not [r for r in results if isinstance(r, BaseException)]
        versions = store.list_pipeline_versions("busy").items
        assert sorted(v.version for v in versions) == [1, 2, 3]
        assert len({v.digest for v in versions}) == 3


class ScheduleStoreContract:
    def test_schedule_crud(self, store: Store) -> None:
        s = store.create_schedule("nightly", pipeline="train", cron="0 3 * * *", actor=ME, params={"fit.C": 0.5},
                                  missed="run-once", anchor_at=1000)  # fmt: skip
        assert (s.name, s.target, s.params, s.missed, s.paused, s.anchor_at) == (
            "nightly", "train", {"fit.C": 0.5}, "run-once", False, 1000)  # fmt: skip
        pinned = store.create_schedule("pinned", pipeline="train", version=2, cron="*/5 * * * *", actor=ME)
        assert pinned.target == "train/2" and pinned.missed == "skip"
        with pytest.raises(AlreadyExists, match="nightly"):
            store.create_schedule("nightly", pipeline="train", cron="0 3 * * *", actor=ME)
        with pytest.raises(InvalidInput, match="policy"):
            store.create_schedule("x", pipeline="train", cron="0 3 * * *", actor=ME, missed="always")
        assert [x.name for x in store.list_schedules().items] == ["nightly", "pinned"]
        page = store.list_schedules(limit=1)
        assert [x.name for x in store.list_schedules(cursor=page.next_cursor).items] == ["pinned"]
        assert store.pause_schedule("nightly", actor=ME).paused
        resumed = store.resume_schedule("nightly", actor=ME, anchor_at=5000)
        assert not resumed.paused and resumed.anchor_at == 5000
        store.delete_schedule("pinned", actor=ME)
        with pytest.raises(NotFound, match="mloop schedules list"):
            store.get_schedule("pinned")
        types = [e.type for e in store.list_events(types=[ScheduleEvents.PAUSED, ScheduleEvents.RESUMED]).items]
        assert types == [ScheduleEvents.PAUSED, ScheduleEvents.RESUMED]
        before = len(store.list_events().items)
        store.resume_schedule("nightly", actor=ME)  # already active: no change, no event
        assert len(store.list_events().items) == before

    def test_a_fire_is_claimed_once(self, store: Store) -> None:
        store.create_schedule("s", pipeline="p", cron="* * * * *", actor=ME, anchor_at=0)
        fire = store.claim_schedule_fire("s", 60_000, expected_anchor=0, actor=ME, missed=2)
        assert fire is not None and (fire.fire_time, fire.missed) == (60_000, 2)
        assert store.claim_schedule_fire("s", 60_000, expected_anchor=0, actor=ME) is None  # stale anchor
        got = store.get_schedule("s")
        assert (got.anchor_at, got.last_fire_at) == (60_000, 60_000)
        assert store.skip_schedule_fires("s", 300_000, expected_anchor=60_000, actor=ME, missed=4) is not None
        assert store.skip_schedule_fires("s", 300_000, expected_anchor=60_000, actor=ME, missed=4) is None
        assert store.get_schedule("s").anchor_at == 300_000
        store.pause_schedule("s", actor=ME)
        assert store.claim_schedule_fire("s", 360_000, expected_anchor=300_000, actor=ME) is None  # paused
        assert [f.fire_time for f in store.list_schedule_fires("s")] == [60_000]
        with pytest.raises(InvalidInput):
            store.claim_schedule_fire("s", 10, expected_anchor=300_000, actor=ME)

    def test_racing_claims_one_wins(self, store: Store) -> None:
        store.create_schedule("race", pipeline="p", cron="* * * * *", actor=ME, anchor_at=0)
        got = in_threads(lambda: store.claim_schedule_fire("race", 60_000, expected_anchor=0, actor=ME), [()] * 4)
        assert not [g for g in got if isinstance(g, BaseException)]
        assert len([g for g in got if g is not None]) == 1
        assert len(store.list_events(types=[ScheduleEvents.FIRED]).items) == 1

    def test_exclusive_lock_refuses_a_second_holder(self, store: Store) -> None:
        lock = store.try_exclusive_lock("scheduler", holder="mloop scheduler host-a pid 1")
        assert lock.held()
        try:
            with pytest.raises(Conflict, match="host-a"):
                store.try_exclusive_lock("scheduler", holder="mloop scheduler host-b pid 2")
        finally:
            lock.release()
        assert not lock.held()
        again = store.try_exclusive_lock("scheduler", holder="mloop scheduler host-b pid 2")
        again.release()
        again.release()  # releasing twice is harmless


class PipelineEventsContract:
    """Writes of published pipelines and schedules that change nothing record no event."""

    def test_no_event_without_a_pipeline_or_schedule_change(self, store: Store) -> None:
        _publish(store, "p", "sha256:" + "1" * 64)
        store.create_schedule("s", pipeline="p", cron="* * * * *", actor=ME, anchor_at=0)
        store.claim_schedule_fire("s", 60_000, expected_anchor=0, actor=ME)
        store.pause_schedule("s", actor=ME)
        before = store.list_events(types=None, limit=1000).items[-1].id
        _publish(store, "p", "sha256:" + "1" * 64)  # the same definition
        store.pause_schedule("s", actor=ME)  # already paused
        assert store.claim_schedule_fire("s", 120_000, expected_anchor=60_000, actor=ME) is None  # paused
        assert store.claim_schedule_fire("s", 60_000, expected_anchor=0, actor=ME) is None  # claimed before
        assert store.skip_schedule_fires("s", 60_000, expected_anchor=60_000, actor=ME, missed=1) is None  # no move
        with pytest.raises(AlreadyExists):
            store.create_schedule("s", pipeline="p", cron="* * * * *", actor=ME)
        with pytest.raises(NotFound):
            store.delete_schedule("ghost", actor=ME)
        assert store.list_events(after=before).items == []
