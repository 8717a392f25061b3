"""The demo's process handling: SIGTERM becomes KeyboardInterrupt while it runs, every process it started is
stopped newest first even when stopping one fails, and the scheduler it starts is a real one that holds the lock."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mloop.cli.demo.children import Children, interruptible
from mloop.cli.demo.show import describe_event, print_gate
from mloop.entities import Event
from mloop.errors import Conflict
from mloop.pipelines.scheduler import LOCK_NAME
from mloop.tracking.client import Client
from mloop.workspace import init_workspace


def test_sigterm_and_sighup_interrupt_the_demo_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with pytest.raises(KeyboardInterrupt, match=signal.Signals(signum).name), interruptible():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # interrupted long before
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_all_stops_newest_first_and_a_failure_skips_nothing(tmp_path: Path) -> None:
    client = Client(workspace=init_workspace(tmp_path / "ws"))
    try:
        children = Children(client, tmp_path)
        calls: list[str] = []

        def fails() -> bool:
            calls.append("b")
            raise OSError("no such process")

        children._stops += [("a", lambda: calls.append("a") is None), ("b", fails), ("c", lambda: False)]
        errors = children.stop_all()
        assert calls == ["b", "a"] and errors == ["b: no such process"]
        assert children.stopped == ["a"]  # "c" had nothing running; "b" failed
        assert children.stop_all() == [] and children.stopped == ["a"]  # a second call has nothing left
    finally:
        client.close()


@pytest.mark.slow
def test_the_scheduler_it_starts_holds_the_lock_and_stops(tmp_path: Path) -> None:
    client = Client(workspace=init_workspace(tmp_path / "ws"))
    try:
        children = Children(client, tmp_path / "ws")
        process = children.start_scheduler(interval=0.5)
        assert process.poll() is None and children.pids["scheduler"] == process.pid
        with pytest.raises(Conflict, match=f"pid {process.pid} "):  # it holds the store's scheduler lock
            client.store.try_exclusive_lock(LOCK_NAME, holder="test")
        assert children.stop_all() == [] and children.stopped == ["scheduler"]
        assert process.returncode == 0  # stopped by SIGTERM: it stopped its loop and exited cleanly
        client.store.try_exclusive_lock(LOCK_NAME, holder="test").release()  # and released the lock
    finally:
        client.close()


def _event(kind: str, payload: dict[str, object], subject: str = "monitor:sensors") -> Event:
    return Event(1, kind, subject, "automation:x/1", 0, payload)


def test_the_loop_is_shown_one_line_an_event_and_still_open_alerts_are_not_news() -> None:
    figures = {"value": 0.83, "threshold": 0.5, "rows": 600}
    opened = describe_event(_event("monitor.alert", {"state": "opened", "signal": "dataset_drift", "figures": figures}))
    assert opened == ("alert opened: dataset_drift = 0.83 vs threshold 0.50 on 600 rows", "red")
    assert describe_event(_event("monitor.alert", {"state": "still_open", "signal": "dataset_drift"})) is None
    moved = describe_event(_event("model.alias_moved", {"version": 2, "reason": "promote"}, "model:sensors@production"))
    assert moved is not None and moved[0].startswith("model:sensors@production → version 2 (promote")
    assert describe_event(_event("run.started", {})) is None


def test_the_gate_table_shows_each_check() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    report = {"checks": [{"check": "min_metric('roc_auc', 0.7)", "passed": False, "measured": "0.5043",
                          "required": ">= 0.7"}, {"check": "evaluated()", "passed": True, "measured": "data:h/2",
                                                  "required": "an evaluation"}]}  # fmt: skip
    print_gate(console, report, title="gate")
    text = console.export_text()
    assert "FAIL" in text and "PASS" in text and "0.5043" in text and "min_metric('roc_auc', 0.7)" in text
