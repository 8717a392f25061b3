"""The monitor part of the Store contract: spec, pause, windows recorded once (cursor CAS), alerts and events."""

from __future__ import annotations

import pytest

from mloop.entities import AlertChange, MonitorResult
from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from mloop.store import Store
from mloop.store.protocols.monitors import MonitorEvents
from mloop.testing.threads import in_threads

__all__ = ["MonitorStoreContract"]

ME = "tester"
SPEC = {"endpoint": "churn-api", "window": {"every": "1h"}}


def _result(start: int, signal: str = "drift", feature: str = "age", value: float = 0.1) -> MonitorResult:
    return MonitorResult(start, start + 100, signal, feature, value, 0.2, "ok" if value < 0.2 else "breach", 50,
                         {"method": "psi"})  # fmt: skip


class MonitorStoreContract:
    def test_create_read_update_delete(self, store: Store) -> None:
        made = store.create_monitor("m1", spec=SPEC, actor=ME)
        assert made.ref == "monitor:m1" and dict(made.spec) == SPEC and made.cursor == {} and not made.paused
        assert store.get_monitor("m1") == made
        with pytest.raises(AlreadyExists, match="m1"):
            store.create_monitor("m1", spec=SPEC, actor=ME)
        assert store.update_monitor("m1", actor=ME, spec=SPEC) == made  # no change
        paused = store.update_monitor("m1", actor=ME, paused=True)
        assert paused.paused and store.update_monitor("m1", actor=ME, spec={**SPEC, "x": 1}).spec["x"] == 1
        store.create_monitor("a0", spec=SPEC, actor=ME)
        page = store.list_monitors(limit=1)
        assert [m.name for m in page.items] == ["a0"] and page.next_cursor
        events = [e.type for e in store.list_events(subject="monitor:m1").items]
        assert events == [MonitorEvents.CREATED, MonitorEvents.UPDATED, MonitorEvents.UPDATED]
        store.delete_monitor("m1", actor=ME)
        with pytest.raises(NotFound, match="mloop monitors list"):
            store.get_monitor("m1")
        with pytest.raises(InvalidInput):
            store.create_monitor("bad name!", spec=SPEC, actor=ME)

    def test_windows_are_recorded_once_with_their_results(self, store: Store) -> None:
        store.create_monitor("m", spec=SPEC, actor=ME)
        one = store.record_monitor_window("m", results=[_result(0), _result(0, feature="plan", value=0.5)],
                                          cursor={"end": 100}, expected_cursor={}, actor=ME)  # fmt: skip
        assert one.cursor == {"end": 100}
        with pytest.raises(Conflict, match="already"):  # a second computation of the same window loses
            store.record_monitor_window("m", results=[_result(0)], cursor={"end": 100}, expected_cursor={}, actor=ME)
        store.record_monitor_window("m", results=[_result(100, value=float("nan"))], cursor={"end": 200},
                                    expected_cursor={"end": 100}, actor=ME)  # fmt: skip
        got = store.list_monitor_results("m")
        assert [(r.window_start, r.feature) for r in got] == [(0, "age"), (0, "plan"), (100, "age")]
        assert got[1].status == "breach" and got[1].detail == {"method": "psi"} and got[2].value is None
        assert [r.window_start for r in store.list_monitor_results("m", since=100)] == [100]
        assert [r.feature for r in store.list_monitor_results("m", feature="plan")] == ["plan"]
        assert store.list_events(subject="monitor:m", types=[MonitorEvents.ALERT]).items == []  # data, no event
        with pytest.raises(InvalidInput, match="status"):
            store.record_monitor_window("m", results=[MonitorResult(0, 1, "s", "", 1.0, None, "bad", 1)],
                                        cursor={"end": 300}, expected_cursor={"end": 200}, actor=ME)  # fmt: skip

    def test_alerts_open_continue_and_resolve_with_one_event_each(self, store: Store) -> None:
        store.create_monitor("m", spec=SPEC, actor=ME)
        opened = AlertChange("drift", "age", "opened", {"value": 0.5, "threshold": 0.2})
        store.record_monitor_window("m", results=[], cursor={"end": 1}, expected_cursor={}, alerts=[opened], actor=ME)
        [alert] = store.list_monitor_alerts("m", state="open")
        assert (alert.signal, alert.feature, alert.windows, alert.figures["value"]) == ("drift", "age", 1, 0.5)
        still = AlertChange("drift", "age", "still_open", {"value": 0.6})
        store.record_monitor_window("m", results=[], cursor={"end": 2}, expected_cursor={"end": 1}, alerts=[still],
                                    actor=ME)  # fmt: skip
        assert store.list_monitor_alerts("m")[0].windows == 2
        resolved = AlertChange("drift", "age", "resolved", {"value": 0.1})
        ghost = AlertChange("drift", "plan", "resolved", {})  # nothing open: no change, no event
        store.record_monitor_window("m", results=[], cursor={"end": 3}, expected_cursor={"end": 2},
                                    alerts=[resolved, ghost], actor=ME)  # fmt: skip
        [done] = store.list_monitor_alerts("m")
        assert done.state == "resolved" and done.resolved_at is not None and done.id == alert.id
        assert store.list_monitor_alerts(state="open") == []
        events = store.list_events(subject="monitor:m", types=[MonitorEvents.ALERT]).items
        assert [e.payload["state"] for e in events] == ["opened", "still_open", "resolved"]
        assert events[0].payload["figures"] == {"value": 0.5, "threshold": 0.2} and events[0].actor == ME

    def test_concurrent_recorders_of_one_window_one_wins(self, store: Store) -> None:
        store.create_monitor("m", spec=SPEC, actor=ME)

        def record(i: int) -> str:
            try:
                alerts = [AlertChange("drift", "age", "opened", {"i": i})]
                store.record_monitor_window("m", results=[_result(0)], cursor={"end": 100}, expected_cursor={},
                                            alerts=alerts, actor=ME)  # fmt: skip
                return "won"
            except Conflict:
                return "lost"

        assert sorted(in_threads(record, [(i,) for i in range(4)])) == ["lost", "lost", "lost", "won"]
        assert len(store.list_monitor_results("m")) == 1 and len(store.list_monitor_alerts("m")) == 1
