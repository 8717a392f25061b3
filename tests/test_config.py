"""Settings resolution order: argument > MLOOP_URI > nearest workspace upwards > ~/.mloop."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import find_workspace, resolve_settings
from mloop.errors import WorkspaceError
from mloop.store import open_store
from mloop.workspace import init_workspace, open_workspace


def test_argument_beats_env_beats_workspace(tmp_path: Path) -> None:
    init_workspace(tmp_path / "proj")
    deep = tmp_path / "proj" / "src" / "pkg"
    deep.mkdir(parents=True)
    env = {"MLOOP_URI": "sqlite:////elsewhere/env.db"}
    assert resolve_settings("sqlite:////arg.db", cwd=deep, env=env).store_uri == "sqlite:////arg.db"
    assert resolve_settings(cwd=deep, env=env).store_uri == "sqlite:////elsewhere/env.db"
    found = resolve_settings(cwd=deep, env={})
    assert found.workspace == tmp_path / "proj" / ".mloop"
    assert found.store_uri == f"sqlite:///{tmp_path / 'proj' / '.mloop' / 'mloop.db'}"
    assert found.artifact_uri == str(tmp_path / "proj" / ".mloop" / "artifacts")
    assert find_workspace(deep) == tmp_path / "proj" / ".mloop"


def test_default_workspace_in_home(tmp_path: Path) -> None:
    s = resolve_settings(cwd=tmp_path, env={}, home=tmp_path / "home")
    assert s.workspace == tmp_path / "home" / ".mloop"
    assert s.sources["store_uri"].startswith("default")
    ws = open_workspace(cwd=tmp_path)  # MLOOP_HOME points into a temp dir (conftest)
    assert ws.store.search_runs().items == []
    assert ws.settings.workspace is not None
    assert (ws.settings.workspace / "config.toml").is_file()
    ws.close()


def test_actor_and_env_artifacts(tmp_path: Path) -> None:
    s = resolve_settings(cwd=tmp_path, env={"MLOOP_USER": "alice", "MLOOP_ARTIFACT_URI": "s3://b/p"})
    assert s.actor == "alice"
    assert s.artifact_uri == "s3://b/p"


def test_relative_paths_survive_a_moved_workspace(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "a")
    with ws:
        ws.store.set_setting("marker", "1", actor="tester")
    (tmp_path / "a").rename(tmp_path / "b")
    moved = open_workspace(cwd=tmp_path / "b")
    assert moved.store.get_setting("marker") == "1"
    moved.close()


def test_bad_workspace_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".mloop").mkdir()
    (tmp_path / ".mloop" / "config.toml").write_text("[store\nuri=")
    with pytest.raises(WorkspaceError, match="not valid TOML"):
        resolve_settings(cwd=tmp_path, env={})
    (tmp_path / ".mloop" / "config.toml").write_text("[store]\nuri = 3\n")
    with pytest.raises(WorkspaceError, match="must be a string"):
        resolve_settings(cwd=tmp_path, env={})


def test_init_records_artifact_root_in_the_store(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    uri = ws.settings.store_uri
    ws.close()
    # A teammate who only has the store URI finds the artifact root through it.
    other = open_workspace(uri, cwd=tmp_path.parent)
    assert other.artifacts.uri.endswith("artifacts")
    other.close()


def test_missing_artifact_root_is_a_clear_error(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'bare.db'}"
    open_store(uri).close()  # a bare store (an explicit URI must name an existing store)
    ws = open_workspace(uri, cwd=tmp_path)
    with pytest.raises(WorkspaceError, match="MLOOP_ARTIFACT_URI"):
        _ = ws.artifacts
    ws.close()


def test_fsync_setting(tmp_path: Path) -> None:
    assert resolve_settings(cwd=tmp_path, env={"MLOOP_HOME": str(tmp_path)}).fsync is False
    assert resolve_settings(cwd=tmp_path, env={"MLOOP_HOME": str(tmp_path), "MLOOP_FSYNC": "1"}).fsync is True
