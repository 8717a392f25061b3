"""``mloop init`` and ``mloop info`` on real folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_cases import Invoke

from mloop.store import open_store


def test_init_creates_workspace(mloop: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "project"
    out = mloop("init", str(target)).stdout
    ws = target / ".mloop"
    assert (ws / "config.toml").is_file()
    assert (ws / "mloop.db").is_file()
    assert (ws / "artifacts").is_dir()
    assert "Initialised workspace" in out
    assert str(ws / "mloop.db") in out and str(ws / "artifacts") in out

    again = mloop("init", str(target), "--store", "sqlite:///elsewhere.db").stdout
    assert "already initialised" in again
    assert "configuration was kept" in again


def test_init_defaults_to_current_folder(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mloop("init")
    assert (tmp_path / ".mloop" / "config.toml").is_file()
    info = json.loads(mloop("info", "--json").stdout)
    assert info["workspace"] == str(tmp_path / ".mloop")
    assert info["store_uri"] == f"sqlite:///{tmp_path / '.mloop' / 'mloop.db'}"
    assert info["sources"]["store_uri"] == f"workspace {tmp_path / '.mloop'}"


def test_init_with_artifacts_folder(mloop: Invoke, tmp_path: Path) -> None:
    arts = tmp_path / "blobs"
    mloop("init", str(tmp_path / "p"), "--artifacts", str(arts))
    assert arts.is_dir()


def test_init_on_a_file_fails(mloop: Invoke, tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    result = mloop("init", str(file), code=10)
    assert result.stderr.startswith("error: ")
    assert str(file) in result.stderr and "folder" in result.stderr


def test_info_reports_sources(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    open_store(uri).close()  # a store made by `mloop init` elsewhere
    monkeypatch.setenv("MLOOP_URI", uri)
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(tmp_path / "arts"))
    monkeypatch.setenv("MLOOP_USER", "ada")
    info = json.loads(mloop("info", "--json").stdout)
    assert info["store_uri"] == uri
    assert info["sources"] == {"store_uri": "MLOOP_URI", "artifact_uri": "MLOOP_ARTIFACT_URI", "actor": "MLOOP_USER"}
    assert info["actor"] == "ada"
    table = mloop("info").stdout
    assert "MLOOP_URI" in table and uri in table and "ada" in table


def test_info_artifacts_recorded_in_store(mloop: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mloop("init", str(tmp_path / "team"))
    uri = f"sqlite:///{tmp_path / 'team' / '.mloop' / 'mloop.db'}"
    monkeypatch.chdir(tmp_path)
    info = json.loads(mloop("--uri", uri, "info", "--json").stdout)
    assert info["artifact_uri"] == str(tmp_path / "team" / ".mloop" / "artifacts")
    assert info["sources"]["artifact_uri"] == "metadata store"
