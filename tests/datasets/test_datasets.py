"""Datasets end to end on a real workspace: versions, dedup, the stat cache, reading, integrity, concurrency."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import mloop
from mloop.datasets.dataset import Dataset, get_dataset
from mloop.datasets.diff import diff_versions
from mloop.entities import ManifestEntry
from mloop.errors import IntegrityError, InvalidInput, NotFound
from mloop.tracking.client import Client


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_add_version_dedup_and_stat_cache(client: Client, tmp_path: Path) -> None:
    src = _folder(tmp_path / "raw", {"a.bin": b"a" * 1000, "sub/b.bin": b"b" * 2000, ".git/x": b"skip"})
    first = Dataset.add(src, "raw", message="first", client=client)
    assert first.created and first.dataset.ref == "data:raw/1"
    assert [(e.path, e.size) for e in first.dataset.files()] == [("a.bin", 1000), ("sub/b.bin", 2000)]
    assert first.stats.hashed_files == 2 and first.dataset.info.message == "first"

    again = Dataset.add(src, "raw", client=client)
    assert not again.created and again.dataset.ref == "data:raw/1"
    assert again.stats.hashed_files == 0  # the stat cache knew every file

    (src / "sub/b.bin").write_bytes(b"c" * 2000)
    second = Dataset.add(src, "raw", client=client)
    assert second.created and second.dataset.version == 2
    assert second.stats.hashed_files == 1

    other = Dataset.add(src, "copy-of-raw", client=client)  # same bytes, other name: no new blobs
    assert other.created and other.stats.hashed_files == 0
    blobs = {b.digest for b in client.artifacts.iter_blobs()}
    assert len(blobs) == 3 + 2  # 3 distinct files + 2 manifests (raw v2 and copy-of-raw share one)

    diff = diff_versions(get_dataset("data:raw/1"), get_dataset("data:raw@latest"))
    assert [c[0].path for c in diff.changed] == ["sub/b.bin"] and diff.unchanged == 1
    assert not diff.added and not diff.removed


def test_copied_workspace_keeps_its_stat_cache(client: Client, tmp_path: Path) -> None:
    src = _folder(tmp_path / "raw", {f"f{i}.txt": str(i).encode() * 100 for i in range(20)})
    Dataset.add(src, "raw", client=client)
    client.close()
    shutil.copytree(tmp_path / "ws", tmp_path / "ws-copy")
    copied = Client(workspace=mloop.init_workspace(tmp_path / "ws-copy"))
    again = Dataset.add(src, "raw", client=copied)
    assert not again.created and again.stats.hashed_files == 0
    copied.close()


def test_read_back_verified(client: Client, tmp_path: Path) -> None:
    src = _folder(tmp_path / "raw", {"x/y.txt": b"hello", "z.txt": b"world"})
    ds = Dataset.add(src, "raw", client=client).dataset
    root = ds.path()
    assert (root / "x/y.txt").read_bytes() == b"hello" and (root / "z.txt").read_bytes() == b"world"
    single = Dataset.add(src / "z.txt", "one-file", client=client).dataset
    assert single.path().read_bytes() == b"world"


def test_corrupt_blob_is_detected_and_nothing_partial_is_left(client: Client, tmp_path: Path) -> None:
    src = _folder(tmp_path / "raw", {"a.txt": b"alpha" * 100, "b.txt": b"beta" * 100})
    ds = Dataset.add(src, "raw", client=client).dataset
    digest = next(e.digest for e in ds.files() if e.path == "b.txt")
    algo, hexd = digest.split(":")
    blob = Path(client.artifacts.uri) / "blobs" / algo / hexd[:2] / hexd[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"BETA" * 100)
    with pytest.raises(IntegrityError, match=r"data:raw/1/b\.txt"):
        ds.path()
    materialised = client.workspace.settings.local_dir / "materialised"
    assert not any(materialised.iterdir())


def test_manifest_paths_are_confined(client: Client) -> None:
    blob = client.artifacts.put_bytes(b"evil")
    client.store.create_dataset_version(
        "evil", files=[ManifestEntry("../../escape.txt", 4, blob.digest)], manifest_digest="m:evil", actor="x"
    )
    with pytest.raises(InvalidInput, match=r"\.\."):
        get_dataset("data:evil/1").path()


def test_concurrent_adds_of_the_same_name(client: Client, tmp_path: Path) -> None:
    folders = [_folder(tmp_path / f"src{i}", {"data.txt": f"content {i}".encode()}) for i in range(4)]
    results = []
    errors: list[BaseException] = []

    def add(folder: Path) -> None:
        try:
            results.append(Dataset.add(folder, "shared", client=client))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f,)) for f in [*folders, folders[0]]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.dataset.version for r in results if r.created) == [1, 2, 3, 4]


def test_errors_name_the_value(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nowhere"):
        Dataset.add(tmp_path / "nowhere", "x", client=client)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no files"):
        Dataset.add(tmp_path / "empty", "x", client=client)
    with pytest.raises(InvalidInput, match="reference"):
        Dataset.add(tmp_path, "bad name", client=client)
    with pytest.raises(NotFound, match="ghost"):
        get_dataset("data:ghost/1")
    with pytest.raises(InvalidInput, match="not a dataset"):
        get_dataset("model:x/1")


def test_link_mode_shares_the_bytes_and_protects_them(client: Client, tmp_path: Path) -> None:
    import os
    import stat

    src = _folder(tmp_path / "raw", {"a.bin": b"a" * 5000, "sub/b.bin": b"b" * 7000})
    result = Dataset.add(src, "linked", client=client, link=True)
    assert result.created and result.stats.hashed_files == 2 and result.stats.stored_as == "linked"
    for entry in result.dataset.files():
        algo, hexd = entry.digest.split(":")
        blob = Path(client.artifacts.uri) / "blobs" / algo / hexd[:2] / hexd[2:]
        assert os.stat(blob).st_ino == os.stat(src / entry.path).st_ino  # one copy on disk
        assert not os.stat(src / entry.path).st_mode & stat.S_IWUSR  # the source is read-only now
    assert (result.dataset.path() / "sub" / "b.bin").read_bytes() == b"b" * 7000
    again = Dataset.add(src, "linked", client=client, link=True)
    assert not again.created and again.stats.stored_as == "unchanged"


def test_blob_torn_by_a_power_cut_is_stored_again(client: Client, tmp_path: Path) -> None:
    """The stat cache knows the file, but its blob is empty (a power cut before writeback): the next add
    notices the size, stores the bytes again, and the dataset reads back whole."""
    import os

    data = os.urandom(3000)
    src = _folder(tmp_path / "raw", {"a.bin": data})
    first = Dataset.add(src, "torn", client=client)
    digest = first.dataset.files()[0].digest
    algo, hexd = digest.split(":")
    blob = Path(client.artifacts.uri) / "blobs" / algo / hexd[:2] / hexd[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"")
    (src / "b.bin").write_bytes(b"new")  # a new version, so the add cannot short-cut to the old one
    second = Dataset.add(src, "torn", client=client, fsync=True)
    assert second.created and second.stats.hashed_files == 2
    assert (second.dataset.path() / "a.bin").read_bytes() == data


def test_adding_plain_files_imports_only_what_it_needs(tmp_path: Path) -> None:
    """Only tables pay for pyarrow (~0.4 s of imports), only remote stores for fsspec, only PostgreSQL users
    for its dialect: a folder of other files is versioned locally without any of them."""
    import subprocess
    import sys

    _folder(tmp_path / "raw", {"a.bin": b"a" * 10, "b.txt": b"b"})
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-c", f"import mloop; mloop.init_workspace({str(ws)!r})"], check=True)  # migrates
    code = (
        "import sys, pathlib, mloop\n"
        "from mloop.workspace import open_workspace\n"
        f"client = mloop.Client(workspace=open_workspace(cwd=pathlib.Path({str(ws)!r})))\n"
        f"assert mloop.Dataset.add({str(tmp_path / 'raw')!r}, 'plain', client=client).created\n"
        "heavy = ('pyarrow', 'pandas', 'fsspec', 'sqlalchemy.dialects.postgresql', 'alembic')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


def test_unprotect_copies_shared_or_read_only_files_only(tmp_path: Path) -> None:
    import os
    import stat

    from mloop.datasets.protect import unprotect
    from mloop.errors import InvalidInput, NotFound

    src = _folder(tmp_path / "raw", {"a.bin": b"a", "sub/b.bin": b"b", "c.bin": b"c", ".git/x": b"x"})
    os.link(src / "a.bin", tmp_path / "elsewhere")  # shared, writable
    (src / "sub" / "b.bin").chmod(0o444)  # private, read-only
    mtime = os.stat(src / "sub" / "b.bin").st_mtime_ns
    done = unprotect([src])
    assert sorted(p.name for p in done.copied) == ["a.bin", "b.bin"]
    assert [p.name for p in done.unchanged] == ["c.bin"]  # .git is skipped, like `data add` does
    assert os.stat(src / "a.bin").st_nlink == 1 and (tmp_path / "elsewhere").read_bytes() == b"a"
    assert os.stat(src / "sub" / "b.bin").st_mode & stat.S_IWUSR
    assert os.stat(src / "sub" / "b.bin").st_mtime_ns == mtime and (src / "sub" / "b.bin").read_bytes() == b"b"
    assert not list(src.rglob("*.unprotect"))
    with pytest.raises(NotFound, match="nope"):
        unprotect([src / "nope"])
    (tmp_path / "link").symlink_to(src / "c.bin")
    with pytest.raises(InvalidInput, match="symbolic link"):
        unprotect([tmp_path / "link"])
