"""``mloop.datasets.export``: a version's files copied into a folder as ordinary files (``mloop data get``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import mloop
from mloop.datasets.export import ExportResult, export_version
from mloop.errors import AccessDenied, AlreadyExists, InvalidInput, NotFound
from mloop.tracking.client import Client

FILES = {"a.txt": "alpha\n", "b.txt": "beta\n", "sub/c.txt": "gamma\n"}


def _folder(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def docs(client: Client, tmp_path: Path) -> str:
    mloop.Dataset.add(_folder(tmp_path / "docs", FILES), "docs", client=client)
    return "data:docs/1"


def test_export_copies_every_file_as_an_ordinary_writable_file(client: Client, docs: str, tmp_path: Path) -> None:
    result = export_version(client, docs, tmp_path / "out")
    assert isinstance(result, ExportResult)
    assert result.ref == docs and result.dest == (tmp_path / "out").resolve() and result.size == 17
    assert sorted(p.relative_to(result.dest).as_posix() for p in result.written) == sorted(FILES)
    for rel, text in FILES.items():
        out = result.dest / rel
        assert out.read_text() == text and not out.is_symlink()
        assert os.stat(out).st_mode & stat.S_IWUSR  # the store's copy is read-only; this one is the user's
    assert result.to_dict() == {"ref": docs, "dest": str(result.dest), "files": 3, "bytes": 17}


def test_default_destination_is_name_and_version_in_the_working_folder(
    client: Client, docs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = export_version(client, "docs@latest", verify=True)
    assert result.dest == (tmp_path / "docs-v1").resolve() and (tmp_path / "docs-v1" / "sub" / "c.txt").is_file()


def test_existing_files_are_never_overwritten(client: Client, docs: str, tmp_path: Path) -> None:
    _folder(tmp_path / "out", {"sub/c.txt": "mine\n"})
    with pytest.raises(AlreadyExists, match=r"sub/c.txt already exists \(1 of the files would be overwritten\)"):
        export_version(client, docs, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["c.txt"]  # nothing written
    assert (tmp_path / "out" / "sub" / "c.txt").read_text() == "mine\n"


def test_a_one_file_version_keeps_its_relative_path(client: Client, tmp_path: Path) -> None:
    mloop.Dataset.add(_folder(tmp_path / "one", {"deep/only.txt": "one\n"}), "one", client=client)
    result = export_version(client, "data:one/1", tmp_path / "out")
    assert [p.relative_to(result.dest).as_posix() for p in result.written] == ["deep/only.txt"]
    assert (tmp_path / "out" / "deep" / "only.txt").read_text() == "one\n"


def test_private_holdouts_and_bad_references_are_refused(client: Client, tmp_path: Path) -> None:
    mloop.Dataset.add(_folder(tmp_path / "h", {"h.txt": "secret\n"}), "holdout", client=client, private=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "h.txt").write_text("mine\n")
    with pytest.raises(AccessDenied):  # refused before the overwrite check: nothing says what the files are
        export_version(client, "data:holdout/1", tmp_path / "out")
    assert (tmp_path / "out" / "h.txt").read_text() == "mine\n"
    with pytest.raises(NotFound):
        export_version(client, "data:nope/1", tmp_path / "out2")
    with pytest.raises(InvalidInput):
        export_version(client, "model:churn/1", tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
