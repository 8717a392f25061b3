"""Real processes: SIGTERM flushes every buffered value, atexit ends runs, concurrent writers lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mloop.entities import RunStatus
from mloop.store import open_store
from mloop.tracking.client import Client


def _env(uri: str, artifacts: Path) -> dict[str, str]:
    open_store(uri).close()  # create the store up front, as `mloop init` would: MLOOP_URI must name one
    return {**os.environ, "MLOOP_URI": uri, "MLOOP_ARTIFACT_URI": str(artifacts)}


def _single_run(uri: str) -> tuple[str, RunStatus, int]:
    store = open_store(uri)
    runs = store.search_runs().items
    assert len(runs) == 1
    run = runs[0]
    n = len(store.get_metric_history(run.id, "m"))
    store.close()
    return run.id, run.status, n


def test_sigterm_flushes_and_marks_killed(sqlite_uri: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time, mloop
        with mloop.start_run("sig") as run:
            for i in range(3000):
                run.log_metric("m", float(i), step=i)
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        env=_env(sqlite_uri, tmp_path / "a"),
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    _, status, n = _single_run(sqlite_uri)
    assert status is RunStatus.KILLED
    assert n == 3000  # nothing was lost from the buffer


def test_run_without_with_is_ended_at_exit(sqlite_uri: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import mloop
        run = mloop.start_run("atexit")
        for i in range(1234):
            run.log_metric("m", float(i), step=i)
        """
    )
    subprocess.run([sys.executable, "-c", script], env=_env(sqlite_uri, tmp_path / "a"), check=True, timeout=60)
    _, status, n = _single_run(sqlite_uri)
    assert status is RunStatus.FINISHED and n == 1234


def test_kill_9_leaves_only_whole_batches(sqlite_uri: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import mloop
        with mloop.start_run("k9") as run:
            i = 0
            while True:
                run.log_metric("m", float(i), step=i)
                i += 1
                if i % 5000 == 0:
                    run.flush()
                    print(i, flush=True)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        env=_env(sqlite_uri, tmp_path / "a"),
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for _ in range(3):
            proc.stdout.readline()
        proc.kill()
        proc.wait(timeout=30)
    _, status, n = _single_run(sqlite_uri)
    assert status is RunStatus.RUNNING  # it never ended; it is visible as exactly what it wrote
    assert n >= 15000
    client = Client(sqlite_uri, str(tmp_path / "a"))
    steps = [m.step for m in client.get_metric_history(client.search_runs()[0], "m")]
    assert steps == list(range(len(steps)))  # a prefix, no holes


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_writers_lose_nothing(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    uri = str(request.getfixturevalue("sqlite_uri" if backend == "sqlite" else "postgres_uri"))
    open_store(uri).close()  # migrate once up front, as `mloop init` would
    script = textwrap.dedent(
        """
        import sys, mloop
        with mloop.start_run("conc", name=sys.argv[1]) as run:
            for i in range(3000):
                run.log_metric("m", float(i), step=i)
                if i % 500 == 0:
                    run.flush()
        """
    )
    env = _env(uri, tmp_path / "a")
    procs = [
        subprocess.Popen([sys.executable, "-c", script, f"w{k}"], env=env, stderr=subprocess.PIPE, text=True)
        for k in range(6)
    ]
    deadline = time.monotonic() + 120
    for p in procs:
        _, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        assert p.returncode == 0, err
        assert "locked" not in err
    store = open_store(uri)
    runs = store.search_runs().items
    assert len(runs) == 6
    for run in runs:
        assert run.status is RunStatus.FINISHED
        assert len(store.get_metric_history(run.id, "m")) == 3000
    store.close()
