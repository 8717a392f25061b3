"""The scheduler: a due schedule fires exactly once (a fake "now"), missed-run policies, one scheduler per store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mloop.errors import Conflict
from mloop.pipelines import publish
from mloop.pipelines.events import SchedulerEvents
from mloop.pipelines.scheduler import Scheduler, serve
from mloop.pipelines.schedules import create_schedule, pause_schedule, show_schedule
from mloop.pipelines.trigger import TRIGGER_TAGS
from mloop.store.protocols.schedules import ScheduleEvents
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000


@pytest.fixture
def published(client: Client, project: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    for module in ("helpers", "deep"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    publish(client, f"{project / 'flow.py'}:flow")
    return client


def test_a_due_schedule_fires_exactly_once(published: Client) -> None:
    c = published
    create_schedule(c, "every5", pipeline="flow", cron="*/5 * * * *", params={"n": 2}, start_ms=T0)
    scheduler = Scheduler(c)
    assert scheduler.tick(now=T0 + 4 * MIN) == []  # not due yet
    (fire,) = scheduler.tick(now=T0 + 5 * MIN + 10_000)
    assert (fire.schedule, fire.fire_time, fire.status, fire.missed) == ("every5", T0 + 5 * MIN, "started", 0)
    assert scheduler.tick(now=T0 + 5 * MIN + 20_000) == []  # claimed: never again
    assert Scheduler(c).tick(now=T0 + 5 * MIN + 30_000) == []  # nor after a restart
    assert [p.name for p in scheduler.logs.glob("*.log")] == [f"every5-{T0 + 5 * MIN}.log"]  # while it runs
    (done,) = scheduler.reap(block=True)
    assert done.status == "finished", done.error
    assert not list(scheduler.logs.glob("*"))  # a finished fire leaves no log, spec or result file behind
    run = c.get_run(done.run_id or "")
    assert run.tags[TRIGGER_TAGS.BY] == "schedule:every5"
    assert run.tags[TRIGGER_TAGS.FIRE_TIME] == "2026-01-01T00:05:00Z"
    assert run.tags[TRIGGER_TAGS.PUBLISHED] == "pipeline:flow/1" and run.params["a.n"] == "2"
    schedule, (claimed,) = show_schedule(c, "every5")
    assert claimed.fire_time == T0 + 5 * MIN and schedule.last_fire_at == T0 + 5 * MIN
    assert schedule.next_fire_at == T0 + 10 * MIN
    assert len(c.store.list_events(types=[ScheduleEvents.FIRED]).items) == 1


def test_missed_runs_skip_or_run_once(published: Client) -> None:
    c = published
    for name, missed in (("late-skip", "skip"), ("late-once", "run-once"), ("recent-skip", "skip")):
        create_schedule(c, name, pipeline="flow", cron="*/5 * * * *", missed=missed, start_ms=T0)
    pause_schedule(c, "recent-skip")
    scheduler = Scheduler(c, grace_s=60)
    down_until = T0 + 24 * 60 * MIN + 4 * MIN  # down for a day: 288 fire times passed, the newest 4 minutes ago
    fires = {f.schedule: f for f in scheduler.tick(now=down_until)}
    assert (fires["late-skip"].status, fires["late-skip"].missed) == ("skipped", 288)
    assert (fires["late-once"].status, fires["late-once"].missed) == ("started", 287)
    assert fires["late-once"].fire_time == T0 + 24 * 60 * MIN  # one run, for the newest missed time
    assert "recent-skip" not in fires  # paused
    assert c.store.get_schedule("late-skip").anchor_at == T0 + 24 * 60 * MIN and not c.store.list_schedule_fires(
        "late-skip")  # fmt: skip
    assert scheduler.tick(now=down_until + 1000) == []
    (done,) = scheduler.reap(block=True)
    assert done.status == "finished", done.error
    # under `skip`, a fire time at most `grace` late still fires (earlier missed ones are counted, not run)
    create_schedule(c, "slightly-late", pipeline="flow", cron="*/5 * * * *", start_ms=T0)
    second = Scheduler(c, grace_s=60)
    (fire,) = second.tick(now=T0 + 15 * MIN + 30_000)
    assert (fire.status, fire.fire_time, fire.missed) == ("started", T0 + 15 * MIN, 2)
    assert second.reap(block=True)[0].status == "finished"
    assert [e.type for e in c.store.list_events(types=[ScheduleEvents.MISSED]).items] == [ScheduleEvents.MISSED]


def test_a_fire_that_cannot_start_fails_once_with_an_event(published: Client, project: Path) -> None:
    c = published
    create_schedule(c, "follows", pipeline="flow", cron="*/5 * * * *", params={"d.k": 2}, start_ms=T0)
    (project / "flow.py").write_text((project / "flow.py").read_text().replace("k: int = 1", "width: int = 1")
                                     .replace('"d" * k', '"d" * width'))  # fmt: skip
    publish(c, f"{project / 'flow.py'}:flow")  # version 2 has no parameter d.k any more
    scheduler = Scheduler(c)
    (fire,) = scheduler.tick(now=T0 + 5 * MIN)
    assert fire.status == "failed" and "Unknown parameter 'd.k' for pipeline:flow/2" in (fire.error or "")
    assert scheduler.tick(now=T0 + 5 * MIN) == [] and not scheduler.children  # claimed: not retried
    (event,) = c.store.list_events(types=[SchedulerEvents.FIRE_FAILED]).items
    assert event.subject == "schedule:follows" and event.payload["fire_time"] == T0 + 5 * MIN
    c.store.create_schedule("garbled", pipeline="flow", cron="99 * * * *", actor="x", anchor_at=T0)  # unchecked
    fires = {f.schedule: f for f in scheduler.tick(now=T0 + 10 * MIN)}  # the other schedules keep firing
    assert fires["follows"].fire_time == T0 + 10 * MIN and fires["follows"].status == "failed"
    assert "Recreate the schedule" in (fires["garbled"].error or "")
    assert scheduler.tick(now=T0 + 10 * MIN) == []  # reported once


def test_serve_once_is_refused_while_another_holds_the_lock(published: Client) -> None:
    lock = published.store.try_exclusive_lock("scheduler", holder="mloop scheduler pid 4242 on elsewhere")
    try:
        with pytest.raises(Conflict, match=r"Another scheduler already runs.*pid 4242 on elsewhere.*stop that one"):
            serve(published, once=True)
    finally:
        lock.release()
    assert serve(published, once=True) == []  # free again: nothing is due


def _mloop(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mloop.cli.app", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _second_is_refused(cwd: Path, held: Callable[[], bool]) -> None:
    first = _mloop(cwd, "scheduler", "--interval", "1")
    try:
        _wait_for(lambda: held() or first.poll() is not None, "the first scheduler's lock")
        assert first.poll() is None, first.communicate()
        second = _mloop(cwd, "scheduler", "--once")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 5, out + err  # Conflict
        assert "Another scheduler already runs" in err and f"pid {first.pid}" in err, err
        first.send_signal(signal.SIGTERM)  # clean stop: releases the lock
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    third = _mloop(cwd, "scheduler", "--once")
    out, err = third.communicate(timeout=60)
    assert third.returncode == 0, out + err


def test_second_scheduler_refused_on_sqlite(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    lock_file = tmp_path / ".mloop" / "mloop.db.scheduler.lock"
    _second_is_refused(tmp_path, lambda: lock_file.exists() and lock_file.read_text().startswith("mloop scheduler"))


def test_second_scheduler_refused_on_postgresql(tmp_path: Path, postgres_uri: str) -> None:
    from sqlalchemy import create_engine, text

    init_workspace(tmp_path, store_uri=postgres_uri, artifact_uri=str(tmp_path / "artifacts")).close()
    engine = create_engine(postgres_uri.replace("postgresql://", "postgresql+psycopg://"))
    key = zlib.crc32(b"mloop:scheduler")

    def held() -> bool:
        with engine.connect() as conn:
            q = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = :k AND classid = 0"
            return bool(conn.execute(text(q), {"k": key}).scalar())

    try:
        _second_is_refused(tmp_path, held)
    finally:
        engine.dispose()
    assert os.environ.get("MLOOP_URI") is None


def test_sigterm_stops_the_scheduler_and_its_running_fire(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = project / "started"
    (project / "slow.py").write_text(
        "import pathlib, time\nfrom mloop.pipelines import Pipeline, step\n\n\n@step\ndef nap() -> int:\n"
        f"    pathlib.Path({str(started)!r}).touch()\n    time.sleep(120)\n    return 1\n\n\n"
        "slow = Pipeline('slow', [nap])\n"
    )
    client = Client(workspace=init_workspace(project))
    try:
        publish(client, f"{project / 'slow.py'}:slow")
        # one missed fire (1 January, run once) and no other within the test: a minute boundary must not add one
        create_schedule(client, "naps", pipeline="slow", cron="0 0 1 1 *", missed="run-once",
                        start_ms=int(time.time() * 1000) - 400 * 24 * 60 * MIN)  # fmt: skip
        scheduler = _mloop(project, "scheduler", "--interval", "1")
        try:
            _wait_for(lambda: started.exists() or scheduler.poll() is not None, "the scheduled run's step")
            scheduler.send_signal(signal.SIGTERM)
            out, err = scheduler.communicate(timeout=60)
            assert scheduler.returncode == 1, out + err  # its one fire did not finish
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
                scheduler.communicate()
        runs = {r.tags.get("mloop.pipeline.kind"): r for r in client.store.search_runs().items}
        assert runs["pipeline"].status.value == "KILLED" and runs["step"].status.value == "KILLED"
        assert runs["pipeline"].tags[TRIGGER_TAGS.BY] == "schedule:naps"
        (event,) = client.store.list_events(types=[SchedulerEvents.RUN_FAILED]).items
        assert event.payload["run"] == runs["pipeline"].id
    finally:
        client.close()


def test_a_lost_postgresql_lock_stops_the_scheduler(tmp_path: Path, postgres_uri: str) -> None:
    from sqlalchemy import create_engine, text

    from mloop.errors import StoreUnavailable

    client = Client(workspace=init_workspace(tmp_path, store_uri=postgres_uri, artifact_uri=str(tmp_path / "a")))
    engine = create_engine(postgres_uri.replace("postgresql://", "postgresql+psycopg://"))
    key = zlib.crc32(b"mloop:scheduler")
    ticks: list[int] = []

    def drop_the_lock_connection(*_: object) -> None:
        ticks.append(1)
        if len(ticks) == 1:  # after the first tick: the server ends the lock's connection (a restart, a network cut)
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                  "AND objid = :k AND classid = 0"), {"k": key})  # fmt: skip
                conn.commit()

    try:
        with pytest.raises(StoreUnavailable, match="lost its lock"):
            serve(client, interval_s=0.2, on_status=drop_the_lock_connection)
        assert len(ticks) == 1
        serve(client, once=True)  # the lock is free: a new scheduler starts
    finally:
        engine.dispose()
        client.close()


def test_old_fire_logs_are_pruned(published: Client) -> None:
    import os

    scheduler = Scheduler(published)
    scheduler.logs.mkdir(parents=True, exist_ok=True)
    old, recent = scheduler.logs / "nightly-1.log", scheduler.logs / "nightly-2.log"
    old.write_text("failed long ago")
    recent.write_text("failed yesterday")
    os.utime(old, (0, 0))  # 1970
    os.utime(recent, (time.time() - 86400, time.time() - 86400))
    Scheduler(published)  # a scheduler prunes at start
    assert not old.exists() and recent.exists()
    assert scheduler.prune_logs(keep_days=0.5) == 1 and not recent.exists()
