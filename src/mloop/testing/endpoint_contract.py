"""The endpoint part of the Store contract: spec generations with compare-and-swap, status reports, events."""

from __future__ import annotations

import pytest

from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.store import Store
from mloop.store.protocols.endpoints import DeploymentEvents
from mloop.testing.threads import in_threads

__all__ = ["EndpointStoreContract"]

ME = "tester"
SPEC = {"traffic": [{"model": "model:churn/1", "weight": 100}], "port": 0}


class EndpointStoreContract:
    def test_create_read_list_delete(self, store: Store) -> None:
        made = store.create_endpoint("churn-api", spec=SPEC, actor=ME, cause="cli")
        assert made.ref == "deployment:churn-api" and made.generation == 1 and dict(made.spec) == SPEC
        assert made.status == {} and made.status_at is None and made.actor == ME
        assert store.get_endpoint("churn-api") == made
        with pytest.raises(AlreadyExists, match="churn-api"):
            store.create_endpoint("churn-api", spec=SPEC, actor=ME)
        store.create_endpoint("a-first", spec=SPEC, actor=ME)
        page = store.list_endpoints(limit=1)
        assert [e.name for e in page.items] == ["a-first"] and page.next_cursor
        assert [e.name for e in store.list_endpoints(cursor=page.next_cursor).items] == ["churn-api"]
        gone = store.delete_endpoint("churn-api", actor=ME, cause="test")
        assert gone.name == "churn-api"
        with pytest.raises(NotFound, match="mloop deploy list"):
            store.get_endpoint("churn-api")
        with pytest.raises(NotFound):
            store.delete_endpoint("churn-api", actor=ME)

    def test_bad_input_is_refused(self, store: Store) -> None:
        with pytest.raises(InvalidInput):
            store.create_endpoint("bad name!", spec=SPEC, actor=ME)
        with pytest.raises(InvalidInput, match="JSON"):
            store.create_endpoint("ep", spec={"x": float("nan")}, actor=ME)
        store.create_endpoint("ep", spec=SPEC, actor=ME)
        with pytest.raises(InvalidInput, match="not a spec change"):
            store.update_endpoint("ep", spec=SPEC, actor=ME, event="deployment.created")
        with pytest.raises(InvalidInput, match="not a status event"):
            store.set_endpoint_status("ep", {}, actor=ME, event="deployment.updated")

    def test_spec_generations_and_compare_and_swap(self, store: Store) -> None:
        store.create_endpoint("ep", spec=SPEC, actor=ME)
        same = store.update_endpoint("ep", spec=SPEC, actor=ME)
        assert same.generation == 1  # no change, no new generation
        spec2 = {**SPEC, "traffic": [{"model": "model:churn/2", "weight": 100}]}
        two = store.update_endpoint("ep", spec=spec2, actor="bob", cause="cli", expected_generation=1)
        assert two.generation == 2 and dict(two.spec) == spec2
        with pytest.raises(Conflict, match="generation 2, expected 1"):
            store.update_endpoint("ep", spec=SPEC, actor=ME, expected_generation=1)
        assert store.get_endpoint("ep").spec == spec2
        step = store.update_endpoint("ep", spec=spec2, actor="rollout", event=DeploymentEvents.ROLLOUT_STEP,
                                     payload={"step": 1, "canary_percent": 50})  # fmt: skip
        assert step.generation == 3  # a rollout event is recorded even when the spec is unchanged
        events = store.list_events(subject="deployment:ep").items
        assert [e.type for e in events] == [DeploymentEvents.CREATED, DeploymentEvents.UPDATED,
                                            DeploymentEvents.ROLLOUT_STEP]  # fmt: skip
        assert events[1].actor == "bob" and events[1].payload["cause"] == "cli"
        assert events[1].payload["generation"] == 2 and events[1].payload["spec"] == spec2
        assert events[2].payload["canary_percent"] == 50

    def test_status_reports(self, store: Store) -> None:
        store.create_endpoint("ep", spec=SPEC, actor=ME)
        before = store.list_events(subject="deployment:ep").items
        got = store.set_endpoint_status("ep", {"phase": "running", "pid": 123}, actor="supervisor")
        assert got.status == {"phase": "running", "pid": 123} and got.status_at is not None
        assert got.generation == 1  # the status never changes the spec's generation
        assert store.list_events(subject="deployment:ep").items == before  # a routine report: no event
        store.set_endpoint_status(
            "ep",
            {"phase": "crashed"},
            actor="supervisor",
            event=DeploymentEvents.STATUS_CHANGED,
            payload={"phase": "crashed", "exit": -9},
        )
        last = store.list_events(subject="deployment:ep").items[-1]
        assert last.type == DeploymentEvents.STATUS_CHANGED and last.payload == {"phase": "crashed", "exit": -9}
        with pytest.raises(NotFound):
            store.set_endpoint_status("nope", {}, actor=ME)

    def test_concurrent_writers_with_the_same_generation_one_wins(self, store: Store) -> None:
        store.create_endpoint("ep", spec=SPEC, actor=ME)

        def write(i: int) -> str:
            try:
                store.update_endpoint("ep", spec={**SPEC, "port": i + 1}, actor=ME, expected_generation=1)
                return "won"
            except Conflict:
                return "lost"

        outcomes = in_threads(write, [(i,) for i in range(4)])
        assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
        assert store.get_endpoint("ep").generation == 2
