"""No wrong answer that looks like success: a missing store, an unknown reference, an unreachable store and
non-finite metrics are all reported as what they are."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_cases import Invoke, Seeded
from test_cli_data import write_sensors, ws  # noqa: F401  (fixtures)

from mloop.errors import WorkspaceError
from mloop.tracking.client import Client
from mloop.workspace import init_workspace, open_workspace


# a store URI that names nothing is an error naming `mloop init`, and creates nothing -----------------------
def test_missing_sqlite_store_given_by_uri(mloop: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    err = mloop("--uri", f"sqlite:///{db}", "runs", "list", code=10).stderr
    assert str(db) in err and "mloop init" in err
    assert not (tmp_path / "nonexistent").exists()


def test_missing_sqlite_store_given_by_env(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "x.db"
    monkeypatch.setenv("MLOOP_URI", f"sqlite:///{db}")
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(tmp_path / "arts"))
    err = mloop("experiments", "list", code=10).stderr
    assert str(db) in err and "mloop init" in err and "MLOOP_URI" in err
    assert not db.exists()


def test_sqlite_file_without_mloop_schema(mloop: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    sqlite3.connect(db).close()  # an empty SQLite database, not an mloop store
    err = mloop("--uri", f"sqlite:///{db}", "runs", "list", code=10).stderr
    assert str(db) in err and "mloop init" in err
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # nothing was migrated into it


def test_library_refuses_a_missing_store_too(tmp_path: Path) -> None:
    workspace = open_workspace(f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    with pytest.raises(WorkspaceError, match="mloop init"):
        _ = workspace.store
    assert not (tmp_path / "x.db").exists()


def test_initialised_stores_open_as_before(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mloop("init", str(tmp_path / "team"))
    uri = f"sqlite:///{tmp_path / 'team' / '.mloop' / 'mloop.db'}"
    assert "No runs" in mloop("--uri", uri, "runs", "list").stdout
    # the nearest workspace keeps working even when its database file went missing (it is recreated) ...
    (tmp_path / "team" / ".mloop" / "mloop.db").unlink()
    monkeypatch.chdir(tmp_path / "team")
    assert "No runs" in mloop("runs", "list").stdout
    # ... and the default ~/.mloop (MLOOP_HOME) is still created on first use
    monkeypatch.chdir(tmp_path)
    assert "No runs" in mloop("runs", "list").stdout


def test_postgres_without_schema_needs_init(mloop: Invoke, postgres_uri: str, tmp_path: Path) -> None:
    err = mloop("--uri", postgres_uri, "runs", "list", code=10).stderr
    assert "mloop init --store" in err
    mloop("init", str(tmp_path / "team"), "--store", postgres_uri, "--artifacts", str(tmp_path / "arts"))
    assert "No runs" in mloop("--uri", postgres_uri, "runs", "list").stdout


# mloop info ------------------------------------------------------------------------------------------------
def test_info_fails_when_the_store_is_missing(mloop: Invoke, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    result = mloop("--uri", uri, "--artifacts", str(tmp_path / "a"), "info", code=10)
    assert uri in result.stdout  # what was resolved is still shown
    assert "mloop init" in result.stderr
    result = mloop("--uri", uri, "info", "--json", code=10)
    info = json.loads(result.stdout)
    assert info["store_uri"] == uri and "mloop init" in info["error"]


def test_info_fails_when_the_store_is_unreachable(mloop: Invoke) -> None:
    result = mloop("--uri", "postgresql://nobody@127.0.0.1:1/none", "info", "--json", code=9)
    assert json.loads(result.stdout)["error"]
    assert "cannot be used" in result.stderr


# lineage of something that does not exist is NotFound ------------------------------------------------------
def test_lineage_of_unknown_refs(mloop: Invoke, ws: Seeded, tmp_path: Path) -> None:  # noqa: F811
    mloop("data", "add", str(write_sensors(tmp_path / "s.csv", rows=10)), "--name", "s")
    assert "No dataset named 'nope'" in mloop("lineage", "data:nope/1", code=3).stderr
    assert "'s' has no version 9" in mloop("lineage", "data:s/9", code=3).stderr
    assert "nope" in mloop("lineage", "model:nope/1", code=3).stderr
    assert "nope" in mloop("lineage", "model:nope@production", code=3).stderr
    assert "nope" in mloop("lineage", "experiment:nope", code=3).stderr
    assert "No pipeline named 'p'" in mloop("lineage", "pipeline:p/1", code=3).stderr  # published pipelines
    assert "No endpoint named 'd'" in mloop("lineage", "deployment:d", code=3).stderr
    assert "No monitor named 'm'" in mloop("lineage", "monitor:m", code=3).stderr
    assert mloop("lineage", "run:0123456789abcdef", code=3).stderr


# non-finite numbers stay distinguishable in --json ---------------------------------------------------------
def test_json_keeps_nan_and_infinities(mloop: Invoke, ws: Seeded) -> None:  # noqa: F811
    client = Client(workspace=open_workspace())
    with client.start_run("odd", "r") as run:
        run.log_metrics({"nan": float("nan"), "up": float("inf"), "down": float("-inf"), "ok": 0.5})
    client.close()
    rows = json.loads(mloop("runs", "list", "--json").stdout)
    assert rows[0]["metrics.nan"] == "NaN"
    assert rows[0]["metrics.up"] == "Infinity" and rows[0]["metrics.down"] == "-Infinity"
    assert rows[0]["metrics.ok"] == 0.5


def test_init_workspace_still_creates(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "new")
    assert workspace.store.search_runs().items == []
    workspace.close()
