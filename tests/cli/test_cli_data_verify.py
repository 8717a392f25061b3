"""``mloop data get --verify`` and the integrity check of mloop's local copies, through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_cases import Invoke

from mloop.workspace import init_workspace, open_workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    workspace = init_workspace(root)
    monkeypatch.setenv("MLOOP_URI", workspace.settings.store_uri)
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(workspace.settings.artifact_uri))
    monkeypatch.chdir(root)
    return root


def test_get_refuses_an_edited_local_copy(mloop: Invoke, ws: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the original text\n")
    mloop("data", "add", str(tmp_path / "notes.txt"), "--name", "notes")
    mloop("data", "get", "data:notes/1", "--dest", "first")
    local = open_workspace().settings.local_dir
    [copy] = list(local.glob("materialised/*/notes.txt"))
    st = copy.stat()
    copy.chmod(0o644)
    copy.write_text("the 0riginal text\n")  # same size
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same time: only --verify can see it
    mloop("data", "get", "data:notes/1", "--dest", "second")
    assert (ws / "second" / "notes.txt").read_text() == "the 0riginal text\n"
    err = mloop("data", "get", "data:notes/1", "--dest", "third", "--verify", code=6).stderr
    assert str(copy) in err and "Delete" in err
    assert not (ws / "third").exists()
