"""The automation part of the Store contract: rules, actions claimed once per cause with the cursor moved in the
same transaction, cron fires claimed once, action life cycle and its events."""

from __future__ import annotations

import pytest

from mloop.entities import ActionClaim
from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.store import Store
from mloop.store.protocols.automations import AutomationEvents
from mloop.testing.threads import in_threads

__all__ = ["AutomationStoreContract"]

ME = "tester"
SPEC = {"on": "monitor.alert", "where": "payload.state == 'opened'", "do": {"action": "notify", "log": "x"}}


class AutomationStoreContract:
    def test_automation_create_read_update_delete(self, store: Store) -> None:
        made = store.create_automation("retrain", spec=SPEC, actor=ME)
        assert made.ref == "automation:retrain" and dict(made.spec) == SPEC and not made.paused
        assert store.get_automation("retrain") == made and made.anchor_at is None
        with pytest.raises(AlreadyExists, match="mloop automations delete retrain"):
            store.create_automation("retrain", spec=SPEC, actor=ME)
        assert store.update_automation("retrain", actor=ME, spec=SPEC) == made  # no change, no event
        assert store.update_automation("retrain", actor=ME, paused=True).paused
        store.create_automation("a0", spec=SPEC, actor=ME)
        page = store.list_automations(limit=1)
        assert [a.name for a in page.items] == ["a0"] and page.next_cursor is not None
        assert [a.name for a in store.list_automations(cursor=page.next_cursor).items] == ["retrain"]
        types = [e.type for e in store.list_events(subject="automation:retrain").items]
        assert types == [AutomationEvents.CREATED, AutomationEvents.UPDATED]
        store.delete_automation("retrain", actor=ME)
        with pytest.raises(NotFound, match="mloop automations list"):
            store.get_automation("retrain")
        with pytest.raises(InvalidInput):
            store.create_automation("bad name!", spec=SPEC, actor=ME)

    def test_claims_move_the_cursor_once(self, store: Store) -> None:
        store.create_automation("r", spec=SPEC, actor=ME)
        assert store.get_automation_cursor() == 0
        made = store.claim_automation_actions([ActionClaim("r", "event:5", 5, depth=2)], cursor=7,
                                              expected_cursor=0, actor=ME)  # fmt: skip
        assert [(a.cause, a.event_id, a.depth, a.status, a.attempts) for a in made] == [("event:5", 5, 2, "pending", 0)]
        assert store.get_automation_cursor() == 7
        with pytest.raises(Conflict, match="another engine"):  # a second engine that read the old cursor
            store.claim_automation_actions([ActionClaim("r", "event:6", 6)], cursor=7, expected_cursor=0, actor=ME)
        assert store.list_automation_actions(cause="event:6") == []  # refused whole: nothing recorded
        with pytest.raises(Conflict):  # the same cause twice, even with the right cursor: refused whole
            store.claim_automation_actions([ActionClaim("r", "event:5", 5)], cursor=9, expected_cursor=7, actor=ME)
        assert store.get_automation_cursor() == 7
        store.claim_automation_actions([], cursor=9, expected_cursor=7, actor=ME)  # nothing matched: cursor only
        assert store.get_automation_cursor() == 9
        with pytest.raises(InvalidInput, match="only moves forward"):
            store.claim_automation_actions([], cursor=3, expected_cursor=9, actor=ME)

    def test_concurrent_engines_claim_each_batch_once(self, store: Store) -> None:
        store.create_automation("r", spec=SPEC, actor=ME)

        def claim(worker: int) -> str:
            try:
                store.claim_automation_actions([ActionClaim("r", "event:1", 1)], cursor=1, expected_cursor=0,
                                               actor=f"engine-{worker}")  # fmt: skip
                return "claimed"
            except Conflict:
                return "lost"

        assert sorted(in_threads(claim, [(w,) for w in range(4)])) == ["claimed", "lost", "lost", "lost"]
        assert len(store.list_automation_actions(automation="r")) == 1

    def test_action_life_cycle(self, store: Store) -> None:
        store.create_automation("r", spec=SPEC, actor=ME)
        skip, run = store.claim_automation_actions(
            [ActionClaim("r", "event:1", 1, status="skipped", outcome={"reason": "cool-down"}),
             ActionClaim("r", "event:2", 2)], cursor=2, expected_cursor=0, actor=ME)  # fmt: skip
        assert skip.status == "skipped" and skip.outcome == {"reason": "cool-down"} and skip.duration_ms == 0
        with pytest.raises(Conflict):
            store.start_automation_action(skip.id, actor=ME)
        started = store.start_automation_action(run.id, actor=ME)
        assert started.status == "running" and started.attempts == 1 and started.started_at is not None
        again = store.start_automation_action(run.id, actor=ME)  # resumed after a crash: one more attempt
        assert again.attempts == 2
        waiting = store.finish_automation_action(run.id, status="waiting_approval", actor=ME, outcome={"gate": 1})
        assert waiting.status == "waiting_approval"
        assert store.start_automation_action(run.id, actor=ME).attempts == 3  # the approval arrived
        done = store.finish_automation_action(run.id, status="succeeded", actor=ME, outcome={"run": "x"})
        assert done.status == "succeeded" and done.outcome == {"run": "x"} and done.duration_ms is not None
        with pytest.raises(Conflict, match="succeeded already"):
            store.finish_automation_action(run.id, status="failed", actor=ME, error="late")
        with pytest.raises(InvalidInput, match="finishes as one of"):
            store.finish_automation_action(skip.id, status="pending", actor=ME)
        assert [a.id for a in store.list_automation_actions(automation="r")] == [run.id, skip.id]
        assert [a.id for a in store.list_automation_actions(statuses=["skipped"])] == [skip.id]
        assert store.get_automation_action(run.id) == done
        with pytest.raises(NotFound, match="mloop automations history"):
            store.get_automation_action("0" * 32)
        store.delete_automation("r", actor=ME)
        assert len(store.list_automation_actions(automation="r")) == 2  # the history outlives the rule
        finished = list(store.list_events(types=[AutomationEvents.ACTION_FINISHED]).items)
        assert [e.payload["status"] for e in finished] == ["waiting_approval", "succeeded"]
        assert finished[-1].payload["event"] == 2 and finished[-1].subject == "automation:r"

    def test_cron_fire_claimed_once(self, store: Store) -> None:
        made = store.create_automation("nightly", spec={**SPEC, "on": {"cron": "0 2 * * *"}}, actor=ME, anchor_at=0)
        assert made.anchor_at == 0
        fire = store.claim_automation_fire("nightly", 60_000, expected_anchor=0, actor=ME)
        assert fire is not None and fire.cause == "cron:60000" and fire.status == "pending"
        assert store.claim_automation_fire("nightly", 60_000, expected_anchor=0, actor=ME) is None
        assert store.get_automation("nightly").anchor_at == 60_000
        store.update_automation("nightly", actor=ME, paused=True)
        resumed = store.update_automation("nightly", actor=ME, paused=False, anchor_at=500_000)
        assert resumed.anchor_at == 500_000 and not resumed.paused
