"""Issue 8, item 2: a dataset's local copy is verified on every read, like a model's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mloop
from mloop.datasets.dataset import Dataset
from mloop.errors import IntegrityError
from mloop.tracking.client import Client


@pytest.fixture
def table(client: Client, tmp_path: Path) -> Dataset:
    path = tmp_path / "readings.csv"
    path.write_text("t,temp\n" + "".join(f"{i},{20 + i % 5}\n" for i in range(100)))
    return Dataset.add(path, "readings", client=client).dataset


def _local_copy(ds: Dataset) -> Path:
    file = ds.path()
    assert file.name == "readings.csv"
    return file


def _edit(file: Path, data: bytes, *, keep_stat: bool = False) -> None:
    st = file.stat()
    file.chmod(0o644)
    file.write_bytes(data)
    if keep_stat:  # an edit that restores the size and the modification time slips past the cheap check
        os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_an_edited_copy_is_refused_naming_the_file_and_the_fix(table: Dataset) -> None:
    file = _local_copy(table)
    original = file.read_bytes()
    _edit(file, original.replace(b"0,20", b"0,99", 1))
    with pytest.raises(IntegrityError) as info:
        table.to_pandas()
    message = str(info.value)
    assert str(file) in message and "data:readings/1/readings.csv" in message
    assert f"Delete {file.parent}" in message  # the fix
    with pytest.raises(IntegrityError):
        table.path()


def test_deleting_the_copy_repairs_it(table: Dataset) -> None:
    file = _local_copy(table)
    _edit(file, b"t,temp\n1,1\n")
    with pytest.raises(IntegrityError):
        table.to_pandas()
    import shutil

    shutil.rmtree(file.parent)
    assert len(table.to_pandas()) == 100


def test_a_same_size_same_mtime_edit_is_caught_by_verify(table: Dataset) -> None:
    file = _local_copy(table)
    original = file.read_bytes()
    _edit(file, original.replace(b"0,20", b"0,21", 1), keep_stat=True)
    assert table.to_pandas()["temp"].iloc[0] == 21  # the cheap check cannot see it (documented)
    with pytest.raises(IntegrityError, match=r"readings\.csv"):
        table.to_pandas(verify=True)


def test_a_missing_file_or_stamp_is_handled(table: Dataset) -> None:
    file = _local_copy(table)
    stamp = file.parent.with_name(file.parent.name + ".stamp.json")
    assert stamp.is_file()
    stamp.unlink()  # e.g. killed between publishing the folder and its stamp: everything is re-hashed
    assert len(table.to_pandas()) == 100 and stamp.is_file()
    file.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        table.to_pandas()


def test_untouched_copies_are_reused_without_rehashing(table: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    _local_copy(table)
    from mloop.datasets import materialise

    def boom(*args: object, **kwargs: object) -> str:
        raise AssertionError("an unchanged copy must not be re-hashed")

    monkeypatch.setattr(materialise, "hash_file", boom)
    assert len(table.to_pandas()) == 100
    assert mloop.get_dataset("data:readings/1").path().is_file()
