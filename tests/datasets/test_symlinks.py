"""Symbolic links inside an added folder: followed only when they stay inside it, refused otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mloop.datasets.dataset import Dataset
from mloop.datasets.snapshot import scan
from mloop.errors import InvalidInput
from mloop.tracking.client import Client


def _folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("beta\n")
    return root


def test_link_inside_the_folder_is_stored_as_its_content(client: Client, tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    (src / "sub" / "a-again.txt").symlink_to("../a.txt")  # relative, resolves inside
    (src / "b-abs.txt").symlink_to(src / "sub" / "b.txt")  # absolute, resolves inside
    result = Dataset.add(src, "linked", client=client)
    files = {e.path: e.size for e in result.dataset.files()}
    assert files == {"a.txt": 6, "b-abs.txt": 5, "sub/a-again.txt": 6, "sub/b.txt": 5}


def test_link_outside_the_folder_is_refused(client: Client, tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the data\n")
    (src / "sub" / "leak.txt").symlink_to(secret)
    with pytest.raises(InvalidInput) as info:
        Dataset.add(src, "leaky", client=client)
    message = str(info.value)
    assert str(src / "sub" / "leak.txt") in message and str(secret) in message
    assert "outside" in message and "copy" in message  # says what to do
    assert client.store.list_datasets().items == []  # no version was made


def test_dangling_and_escaping_relative_links_are_refused(tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    (src / "gone.txt").symlink_to(src / "missing.txt")
    with pytest.raises(InvalidInput, match=r"gone\.txt"):
        scan(src)
    os.unlink(src / "gone.txt")
    (tmp_path / "other.txt").write_text("x")
    (src / "up.txt").symlink_to("../other.txt")
    with pytest.raises(InvalidInput, match=r"up\.txt"):
        scan(src)


def test_link_through_a_linked_root_stays_inside(tmp_path: Path) -> None:
    src = _folder(tmp_path / "real")
    (src / "again.txt").symlink_to(src / "a.txt")
    (tmp_path / "alias").symlink_to(src, target_is_directory=True)
    _, files = scan(tmp_path / "alias")  # the folder given through a link: its links still point inside it
    assert [f.rel for f in files] == ["a.txt", "again.txt", "sub/b.txt"]


def test_linked_folders_are_still_not_followed(tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.txt").write_text("x")
    (src / "linked-dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _, files = scan(src)
    assert [f.rel for f in files] == ["a.txt", "sub/b.txt"]
