"""``mloop data``: add, list, versions, show, diff, get, alias, split and delete, on a real SQLite workspace."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_cases import Invoke, Seeded

from mloop.tracking.client import Client
from mloop.workspace import init_workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """An empty workspace selected through MLOOP_URI / MLOOP_ARTIFACT_URI; the working folder is its root."""
    root = tmp_path / "ws"
    workspace = init_workspace(root)
    monkeypatch.setenv("MLOOP_URI", workspace.settings.store_uri)
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(workspace.settings.artifact_uri))
    monkeypatch.chdir(root)
    return Seeded(root, workspace.settings.store_uri, str(workspace.settings.artifact_uri), {})


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def write_sensors(path: Path, rows: int = 200, *, extra_column: bool = False) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "temp", "site", "label", *(["humidity"] if extra_column else [])])
        for i in range(rows):
            w.writerow([i, 20 + (i % 7) * 0.5, ["north", "south"][i % 2], int(i % 4 == 0),
                        *([50 + i % 10] if extra_column else [])])  # fmt: skip
    return path


@pytest.fixture
def docs(ws: Seeded, tmp_path: Path) -> Path:
    return write_folder(tmp_path / "docs", {"a.txt": "alpha\n", "b.txt": "beta\n", "sub/c.txt": "gamma\n"})


@pytest.fixture
def sensors(ws: Seeded, tmp_path: Path, mloop: Invoke) -> Path:
    path = write_sensors(tmp_path / "sensors.csv")
    mloop("data", "add", str(path), "--name", "sensors", "-m", "first dump")
    return path


def test_add_folder_then_readd_unchanged(mloop: Invoke, docs: Path) -> None:
    out = mloop("data", "add", str(docs), "--name", "docs", "--message", "first").stdout
    assert "Created data:docs/1 (3 files, 17 B, 17 B hashed and copied in " in out and "MB/s)" in out

    again = mloop("data", "add", str(docs), "--name", "docs").stdout
    assert "Unchanged: identical to data:docs/1; no new version" in again
    added = json.loads(mloop("data", "add", str(docs), "--name", "docs", "--json").stdout)
    assert added["created"] is False and added["ref"] == "data:docs/1" and added["hashed_bytes"] == 0

    versions = json.loads(mloop("data", "versions", "docs", "--json").stdout)
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["message"] == "first" and versions[0]["file_count"] == 3 and versions[0]["kind"] == "files"
    (listed,) = json.loads(mloop("data", "list", "--json").stdout)
    assert listed["id"] == versions[0]["dataset_id"]
    assert {k: listed[k] for k in ("name", "latest_version", "version_count")} == {
        "name": "docs",
        "latest_version": 1,
        "version_count": 1,
    }

    (docs / "d.txt").write_text("delta\n")
    out = mloop("data", "add", str(docs), "--name", "docs", "-m", "more").stdout
    assert "Created data:docs/2 (4 files, 23 B, 6 B hashed and copied in " in out  # the stat cache skipped the rest
    listed = json.loads(mloop("data", "list", "--json").stdout)
    assert [(d["name"], d["latest_version"], d["version_count"]) for d in listed] == [("docs", 2, 2)]
    table = mloop("data", "versions", "data:docs").stdout
    assert "more" in table and "first" in table and "2 version(s) of docs" in table
    assert "docs" in mloop("data", "list").stdout


def test_show_files_and_json(mloop: Invoke, docs: Path) -> None:
    mloop("data", "add", str(docs), "--name", "docs")
    shown = json.loads(mloop("data", "show", "data:docs/1", "--json").stdout)
    assert shown["ref"] == "data:docs/1" and shown["private"] is False and shown["profile"] is None
    assert [f["path"] for f in shown["files"]] == ["a.txt", "b.txt", "sub/c.txt"]
    assert shown["files_shown"] == 3 and shown["file_count"] == 3
    assert all(f["digest"].count(":") == 1 for f in shown["files"])

    out = mloop("data", "show", "docs", "--files", "2").stdout  # the bare name means the latest version
    assert "Dataset version data:docs/1" in out and "Showing 2 of 3 files" in out and "sub/c.txt" not in out


def test_table_schema_and_profile(mloop: Invoke, ws: Seeded, tmp_path: Path) -> None:
    path = write_sensors(tmp_path / "sensors.csv")
    out = mloop("data", "add", str(path), "--name", "sensors").stdout
    assert "Created data:sensors/1 (1 files" in out and "Table: 200 rows (csv)" in out

    shown = json.loads(mloop("data", "show", "data:sensors@latest", "--json").stdout)
    assert (shown["kind"], shown["format"], shown["rows"]) == ("table", "csv", 200)
    columns = {c["name"]: c for c in shown["profile"]["columns"]}
    assert list(columns) == ["t", "temp", "site", "label"]
    assert columns["t"]["min"] == 0 and columns["t"]["max"] == 199 and columns["t"]["missing"] == 0
    assert dict(columns["site"]["top"]) == {"north": 100, "south": 100}

    out = mloop("data", "show", "data:sensors/1").stdout
    assert "table (csv)" in out and "Profile (200 rows, 4 columns)" in out
    for text in ("column", "type", "missing", "mean", "top values", "int64", "north (100)", "199"):
        assert text in out, text
    versions = json.loads(mloop("data", "versions", "sensors", "--json").stdout)
    assert versions[0]["rows"] == 200 and versions[0]["format"] == "csv"


def test_diff_files_rows_and_schema(mloop: Invoke, docs: Path, tmp_path: Path) -> None:
    mloop("data", "add", str(docs), "--name", "docs")
    (docs / "a.txt").write_text("alpha, edited\n")
    (docs / "e.txt").write_text("epsilon\n")
    (docs / "b.txt").unlink()
    mloop("data", "add", str(docs), "--name", "docs")
    d = json.loads(mloop("data", "diff", "data:docs/1", "data:docs/2", "--json").stdout)
    assert [e["path"] for e in d["added"]] == ["e.txt"]
    assert [e["path"] for e in d["removed"]] == ["b.txt"]
    assert [c["path"] for c in d["changed"]] == ["a.txt"] and d["changed"][0]["size"] == [6, 14]
    assert d["unchanged"] == 1 and d["schema"] is None
    out = mloop("data", "diff", "docs/1", "docs/2").stdout
    assert "data:docs/1 → data:docs/2" in out and "1 added, 1 removed, 1 changed, 1 unchanged" in out

    (tmp_path / "t").mkdir()
    table = write_sensors(tmp_path / "t" / "sensors.csv")
    mloop("data", "add", str(table), "--name", "sensors")
    write_sensors(table, rows=250, extra_column=True)
    mloop("data", "add", str(table), "--name", "sensors")
    d = json.loads(mloop("data", "diff", "data:sensors/1", "data:sensors/2", "--json").stdout)
    assert d["rows"] == [200, 250] and [c["path"] for c in d["changed"]] == ["sensors.csv"]
    assert "humidity" in json.dumps(d["schema"])
    out = mloop("data", "diff", "data:sensors/1", "data:sensors/2").stdout
    assert "Rows: 200 → 250 (+50)" in out and "humidity" in out


def test_get_writes_verified_files(mloop: Invoke, ws: Seeded, docs: Path, sensors: Path) -> None:
    mloop("data", "add", str(docs), "--name", "docs")
    out = mloop("data", "get", "data:docs/1").stdout
    target = ws.root / "docs-v1"
    assert f"Wrote data:docs/1 to {target} (3 files" in out
    for rel in ("a.txt", "b.txt", "sub/c.txt"):
        assert (target / rel).read_text() == (docs / rel).read_text()
    (target / "a.txt").write_text("mine now\n")  # ordinary writable files, not the read-only cache
    err = mloop("data", "get", "data:docs/1", code=4).stderr
    assert "already exists" in err and "--dest" in err

    got = json.loads(mloop("data", "get", "data:sensors@latest", "--dest", "out", "--json").stdout)
    assert got == {"ref": "data:sensors/1", "dest": str(ws.root / "out"), "files": 1, "bytes": sensors.stat().st_size}
    assert (ws.root / "out" / "sensors.csv").read_bytes() == sensors.read_bytes()

    nested = write_folder(ws.root.parent / "nested", {"deep/er/only.txt": "one file, two folders down\n"})
    mloop("data", "add", str(nested), "--name", "nested")
    mloop("data", "get", "nested", "--dest", "n")
    assert (ws.root / "n" / "deep" / "er" / "only.txt").read_text() == "one file, two folders down\n"


def test_alias_then_show_through_it(mloop: Invoke, docs: Path) -> None:
    mloop("data", "add", str(docs), "--name", "docs")
    (docs / "a.txt").write_text("v2\n")
    mloop("data", "add", str(docs), "--name", "docs")
    assert "data:docs@prod → data:docs/1" in mloop("data", "alias", "docs", "1", "prod").stdout
    shown = json.loads(mloop("data", "show", "data:docs@prod", "--json").stdout)
    assert shown["version"] == 1 and shown["aliases"] == ["prod"]
    versions = json.loads(mloop("data", "versions", "docs", "--json").stdout)
    assert [v["aliases"] for v in versions] == [[], ["prod"]]
    mloop("data", "alias", "docs", "2", "prod")  # aliases move
    assert json.loads(mloop("data", "show", "data:docs@prod", "--json").stdout)["version"] == 2
    assert "cannot be set" in mloop("data", "alias", "docs", "1", "latest", code=2).stderr
    assert "no alias 'nope'" in mloop("data", "show", "data:docs@nope", code=3).stderr


def test_split_and_private_holdout(mloop: Invoke, sensors: Path) -> None:
    out = mloop("data", "split", "data:sensors/1", "--holdout", "0.2", "--seed", "7", "--stratify", "label").stdout
    assert "Split data:sensors/1 (200 rows, 0.2 held back, stratified by label, seed 7)" in out
    assert "data:sensors-train/1" in out and "data:sensors-holdout/1" in out and "private holdout" in out

    again = json.loads(mloop("data", "split", "sensors", "--holdout", "0.2", "--seed", "7", "--stratify", "label",
                             "--json").stdout)  # fmt: skip
    assert again["created"] is False and again["source"] == "data:sensors/1"
    assert (again["train"]["rows"], again["holdout"]["rows"]) == (160, 40)
    assert again["holdout"]["private"] is True and again["train"]["private"] is False
    assert again["holdout"]["role"] == "holdout" and again["holdout"]["source"] == "data:sensors/1"
    assert (
        "Unchanged: this split already exists"
        in mloop("data", "split", "sensors", "--holdout", "0.2", "--seed", "7", "--stratify", "label").stdout
    )

    shown = mloop("data", "show", "data:sensors-holdout/1").stdout
    assert "yes: holdout" in shown and "private holdout" in shown
    assert json.loads(mloop("data", "show", "data:sensors-holdout/1", "--json").stdout)["private"] is True
    err = mloop("data", "get", "data:sensors-holdout/1", code=8).stderr  # reading it is refused
    assert "data:sensors-holdout/1 is a private holdout" in err

    timed = json.loads(mloop("data", "split", "sensors", "--holdout", "0.1", "--by-time", "t", "--json").stdout)
    assert timed["created"] is True and timed["holdout"]["version"] == 2 and timed["holdout"]["rows"] == 20
    assert "no column 'nope'" in mloop("data", "split", "sensors", "--stratify", "nope", code=2).stderr
    assert "between 0 and 1" in mloop("data", "split", "sensors", "--holdout", "1.5", code=2).stderr


def test_delete_then_gc_frees_bytes(mloop: Invoke, ws: Seeded, docs: Path) -> None:
    mloop("data", "add", str(docs), "--name", "docs")
    (docs / "big.bin").write_bytes(b"\x01" * 50_000)
    mloop("data", "add", str(docs), "--name", "docs")
    assert json.loads(mloop("gc", "--grace", "0", "--json").stdout)["bytes_freed"] == 0  # all referenced

    out = mloop("data", "delete", "docs@latest").stdout  # the data: prefix may be left out
    assert "Deleted data:docs/2." in out and "mloop gc" in out
    assert "no version 2; latest is 1" in mloop("data", "show", "data:docs/2", code=3).stderr
    report = json.loads(mloop("gc", "--grace", "0", "--json").stdout)
    assert report["blobs_removed"] >= 2 and report["bytes_freed"] >= 50_000  # the file and the manifest
    got = ws.root / "again"
    mloop("data", "get", "docs/1", "--dest", str(got))  # version 1 is intact
    assert sorted(p.name for p in got.rglob("*.txt")) == ["a.txt", "b.txt", "c.txt"]


def test_delete_refused_when_a_model_depends_on_it(mloop: Invoke, ws: Seeded, sensors: Path) -> None:
    client = Client(ws.store_uri, ws.artifact_uri)
    try:
        client.store.add_lineage("data:sensors/1", "model:churn/1", "training data", actor="test")
    finally:
        client.close()
    err = mloop("data", "delete", "data:sensors/1", code=5).stderr
    assert "model:churn/1" in err and "--force" in err
    assert "Deleted data:sensors/1." in mloop("data", "delete", "data:sensors/1", "--force").stdout


def test_errors_name_the_value_and_the_fix(mloop: Invoke, docs: Path) -> None:
    mloop("data", "add", str(docs), "--name", "docs")
    err = mloop("data", "show", "data:no good", code=2).stderr
    assert err.startswith("error: Invalid reference 'data:no good'") and "data:<name>/<version>" in err
    assert "not a dataset reference" in mloop("data", "show", "run:0123456789abcdef", code=2).stderr
    assert "is not a dataset name" in mloop("data", "versions", "docs/1", code=2).stderr
    assert "not a dataset reference" in mloop("data", "delete", "run:0123456789abcdef", code=2).stderr
    assert "No dataset named 'nope'" in mloop("data", "show", "data:nope/1", code=3).stderr
    assert "mloop data list" in mloop("data", "versions", "nope", code=3).stderr
    err = mloop("data", "show", "data:docs/9", code=3).stderr
    assert "no version 9; latest is 1" in err and "mloop data versions docs" in err
    assert "no such file or folder" in mloop("data", "add", "missing/", "--name", "x", code=3).stderr
    assert "Invalid reference" in mloop("data", "add", str(docs), "--name", "bad name", code=2).stderr
    assert "--name" in mloop("data", "add", str(docs), code=2).stderr


def test_link_then_unprotect_before_editing(mloop: Invoke, docs: Path) -> None:
    """--link shares each source with its blob (read-only); unprotect gives the files back their own writable
    copies, so editing one in place leaves the version intact."""
    import os
    import stat

    added = json.loads(mloop("data", "add", str(docs), "--name", "docs", "--link", "--json").stdout)
    assert added["stored_as"] == "linked"
    assert os.stat(docs / "a.txt").st_nlink == 2 and not os.stat(docs / "a.txt").st_mode & stat.S_IWUSR
    out = json.loads(mloop("data", "unprotect", str(docs), "--json").stdout)
    assert sorted(Path(p).name for p in out["copied"]) == ["a.txt", "b.txt", "c.txt"] and out["unchanged"] == 0
    assert os.stat(docs / "a.txt").st_nlink == 1 and os.stat(docs / "a.txt").st_mode & stat.S_IWUSR
    with open(docs / "a.txt", "a") as handle:  # an in-place edit: the stored version must not change
        handle.write("more\n")
    target = Path("fetched")
    mloop("data", "get", "data:docs/1", "--dest", str(target))
    assert (target / "a.txt").read_text() == "alpha\n"
    again = mloop("data", "unprotect", str(docs / "b.txt")).stdout
    assert "Unprotected 0 file(s); 1 were already private and writable." in again
    assert "nope.txt" in mloop("data", "unprotect", str(docs / "nope.txt"), code=3).stderr
