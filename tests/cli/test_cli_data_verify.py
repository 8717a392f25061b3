"""``mloop data get --verify`` and the integrity check of mloop's local copies, through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from cli_cases import Invoke, Seeded
from test_cli_data import ws  # noqa: F401  (the fixture)

from mloop.workspace import open_workspace


def test_get_refuses_an_edited_local_copy(mloop: Invoke, ws: Seeded, tmp_path: Path) -> None:  # noqa: F811
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
    assert (ws.root / "second" / "notes.txt").read_text() == "the 0riginal text\n"
    err = mloop("data", "get", "data:notes/1", "--dest", "third", "--verify", code=6).stderr
    assert str(copy) in err and "Delete" in err
    assert not (ws.root / "third").exists()
