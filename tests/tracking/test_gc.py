"""Garbage collection: purge deleted runs, free unreferenced blobs, respect the grace period, find corruption."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mloop.errors import IntegrityError
from mloop.tracking.client import Client
from mloop.tracking.gc import collect_garbage


def _blob_path(client: Client, digest: str) -> Path:
    algo, hexd = digest.split(":")
    return Path(client.artifacts.uri) / "blobs" / algo / hexd[:2] / hexd[2:]


def test_gc_frees_only_what_nothing_references(client: Client) -> None:
    with client.start_run("gc") as keep:
        keep.log_bytes(b"shared" * 100, "a.bin")
    with client.start_run("gc") as gone:
        gone.log_bytes(b"shared" * 100, "same-content.bin")
        gone.log_bytes(b"only-here" * 1000, "b.bin")
    client.delete_run(gone)
    dry = collect_garbage(client, dry_run=True, grace_s=0)
    assert dry.purged_runs == [gone.id] and dry.blobs_removed == 1 and dry.bytes_freed == 9000
    assert client.get_run(gone).deleted  # nothing changed
    report = collect_garbage(client, grace_s=0)
    assert report.purged_runs == [gone.id]
    assert report.blobs_removed == 1 and report.bytes_freed == 9000
    assert client.read_artifact(keep, "a.bin") == b"shared" * 100
    assert [e.type for e in client.events(types=["artifacts.collected"])] == ["artifacts.collected"]


def test_grace_period_protects_recent_and_reused_blobs(client: Client) -> None:
    blob = client.artifacts.put_bytes(b"orphan")
    assert collect_garbage(client, grace_s=3600).blobs_removed == 0
    path = _blob_path(client, blob.digest)
    old = time.time() - 7200
    os.utime(path, (old, old))
    client.artifacts.put_bytes(b"orphan")  # a dedup hit freshens the blob
    assert collect_garbage(client, grace_s=3600).blobs_removed == 0
    os.utime(path, (old, old))
    assert collect_garbage(client, grace_s=3600).blobs_removed == 1


def test_verify_removes_corrupt_blobs(client: Client) -> None:
    with client.start_run("gc") as run:
        entry = run.log_bytes(b"precious" * 100, "p.bin")
    path = _blob_path(client, entry.digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"p\.bin"):
        client.read_artifact(run, "p.bin")
    assert collect_garbage(client, grace_s=0).corrupt == []  # without --verify nothing is read
    report = collect_garbage(client, grace_s=0, verify=True)
    assert report.corrupt == [entry.digest]
    with client.start_run("gc") as again:
        again.log_bytes(b"precious" * 100, "p.bin")  # the good copy is stored anew
    assert client.read_artifact(run, "p.bin") == b"precious" * 100
