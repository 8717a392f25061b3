"""``mloop gc`` frees the bytes of deleted runs; ``mloop events list`` shows the audit log."""

from __future__ import annotations

import json

from cli_cases import Invoke, Seeded

from mloop.artifacts import open_artifact_store


def test_gc_frees_a_deleted_runs_artifacts(mloop: Invoke, seeded: Seeded) -> None:
    run_id = seeded.runs["beta"]
    entries = json.loads(mloop("runs", "artifacts", run_id, "--json").stdout)
    unique = next(e for e in entries if e["path"] == "data/beta.bin")
    blobs = open_artifact_store(seeded.artifact_uri)
    assert blobs.exists(unique["digest"])

    nothing = json.loads(mloop("gc", "--grace", "0", "--json").stdout)
    assert nothing["purged_runs"] == [] and nothing["bytes_freed"] == 0

    mloop("runs", "delete", run_id)
    preview = json.loads(mloop("gc", "--dry-run", "--grace", "0", "--json").stdout)
    assert preview["dry_run"] is True and preview["purged_runs"] == [run_id]
    assert preview["bytes_freed"] >= unique["size"]
    assert blobs.exists(unique["digest"])  # a dry run changes nothing
    assert run_id in {r["run_id"] for r in json.loads(mloop("runs", "list", "--deleted", "--json").stdout)}

    report = json.loads(mloop("gc", "--grace", "0", "--json").stdout)
    assert report["dry_run"] is False and report["purged_runs"] == [run_id]
    assert report["blobs_removed"] >= 1 and report["bytes_freed"] >= unique["size"]
    assert not blobs.exists(unique["digest"])
    assert mloop("runs", "show", run_id, code=3).stderr.startswith("error: ")
    # the other runs' artifacts are intact
    other = seeded.runs["alpha"]
    assert len(json.loads(mloop("runs", "artifacts", other, "--json").stdout)) == 2


def test_gc_human_output(mloop: Invoke, seeded: Seeded) -> None:
    mloop("runs", "delete", seeded.runs["gamma"])
    out = mloop("gc", "--dry-run", "--grace", "0").stdout
    assert "Would purge 1 deleted run(s)" in out and "kB" in out and "Nothing was changed" in out
    out = mloop("gc", "--grace", "0").stdout
    assert "Purged 1 deleted run(s)" in out and "freed 5.0 kB" in out
    assert seeded.runs["gamma"] in out


def test_gc_keep_deleted_runs(mloop: Invoke, seeded: Seeded) -> None:
    mloop("runs", "delete", seeded.runs["gamma"])
    report = json.loads(mloop("gc", "--grace", "0", "--keep-deleted-runs", "--json").stdout)
    assert report["purged_runs"] == [] and report["bytes_freed"] == 0
    mloop("runs", "restore", seeded.runs["gamma"])


def test_gc_rejects_negative_grace(mloop: Invoke, seeded: Seeded) -> None:
    assert "--grace" in mloop("gc", "--grace", "-1", code=2).stderr


def test_events_list(mloop: Invoke, seeded: Seeded) -> None:
    run_id = seeded.runs["alpha"]
    mloop("runs", "delete", run_id)
    mloop("runs", "restore", run_id)
    events = json.loads(mloop("events", "list", "--json").stdout)
    types = [e["type"] for e in events]
    assert types[0] == "workspace.initialised"
    assert "run.started" in types and types[-2:] == ["run.deleted", "run.restored"]
    assert all(set(e) == {"id", "type", "subject", "actor", "time", "payload"} for e in events)

    only = json.loads(mloop("events", "list", "--type", "run.deleted", "--json").stdout)
    assert [e["subject"] for e in only] == [f"run:{run_id}"]

    about = json.loads(mloop("events", "list", "--subject", run_id[-8:], "--json").stdout)
    types = [e["type"] for e in about]
    assert types[0] == "run.started" and types[-3:] == ["run.finished", "run.deleted", "run.restored"]
    assert types.count("artifact.logged") == 2
    assert all(e["subject"] == f"run:{run_id}" for e in about)

    newest = json.loads(mloop("events", "list", "--max", "1", "--json").stdout)
    assert [e["type"] for e in newest] == ["run.restored"]

    out = mloop("events", "list", "--max", "3").stdout
    assert "run.restored" in out and "newest 3 of" in out
