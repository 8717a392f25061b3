"""A workspace: resolved settings plus the metadata store and the artifact store they point at.

``open_workspace()`` follows the resolution order of :mod:`mloop.config`; the stores are opened lazily and
once. ``init_workspace()`` creates ``.mloop/`` with its config file, database and artifact folder and records
the artifact root in the metadata store, so a team shares a single ``MLOOP_URI``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.config import (
    CONFIG_NAME,
    WORKSPACE_DIRNAME,
    Settings,
    check_local_path,
    resolve_settings,
    workspace_config_text,
)
from mloop.errors import WorkspaceError

if TYPE_CHECKING:
    from mloop.artifacts import ArtifactStore
    from mloop.store import Store

__all__ = ["ARTIFACT_SETTING", "WORKSPACE_INITIALISED", "Workspace", "init_workspace", "open_workspace"]

ARTIFACT_SETTING = "artifact_uri"
WORKSPACE_INITIALISED = "workspace.initialised"  # the event of `mloop init` (recording the artifact root)


class Workspace:
    """Settings plus lazily opened stores. Close it (or use it as a context manager) to release connections."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def actor(self) -> str:
        return self.settings.actor

    @cached_property
    def store(self) -> Store:
        """The metadata store. Only a workspace creates one: ``mloop init``, or the default ``~/.mloop`` on first
        use. A store named by ``uri=`` / ``--uri`` / ``MLOOP_URI`` must exist already (:class:`WorkspaceError`
        naming ``mloop init`` otherwise, and nothing is created)."""
        from mloop.store import open_store

        workspace = self.settings.workspace
        if workspace is None:
            from mloop.store.sql.engine import require_schema

            require_schema(self.settings.store_uri)
        elif not (workspace / CONFIG_NAME).exists():
            _write_config(workspace, None, None)  # first use of the default ~/.mloop
        return open_store(self.settings.store_uri)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from mloop.artifacts import open_artifact_store

        uri = self.settings.artifact_uri or self.store.get_setting(ARTIFACT_SETTING)
        if not uri:
            raise WorkspaceError(
                f"No artifact store is configured for {self.settings.store_uri!r}. Set MLOOP_ARTIFACT_URI "
                "(a folder or s3://bucket/prefix) or run `mloop init --store URI --artifacts URI` once."
            )
        from mloop.guard import BlobReadGuard

        store = open_artifact_store(uri)
        store.read_guard = BlobReadGuard(self.store, self.actor)  # private holdouts: see mloop.guard
        return store

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace(store={self.settings.store_uri!r}, artifacts={self.settings.artifact_uri!r})"


def open_workspace(uri: str | None = None, artifact_uri: str | None = None, *, cwd: Path | None = None) -> Workspace:
    return Workspace(resolve_settings(uri, artifact_uri, cwd=cwd))


def _write_config(ws_dir: Path, store_uri: str | None, artifact_uri: str | None) -> None:
    ws_dir.mkdir(parents=True, exist_ok=True)
    tmp = ws_dir / (CONFIG_NAME + ".tmp")
    tmp.write_text(workspace_config_text(store_uri, artifact_uri))
    tmp.replace(ws_dir / CONFIG_NAME)
    ignore = ws_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# mloop workspace data: versioned by mloop, not by git\n*\n")


def init_workspace(
    directory: Path | str = ".",
    *,
    store_uri: str | None = None,
    artifact_uri: str | None = None,
) -> Workspace:
    """Create a workspace in ``directory`` (idempotent) and return it opened.

    With no URIs the workspace is self-contained: ``.mloop/mloop.db`` (SQLite, WAL) and ``.mloop/artifacts``.
    """
    check_local_path(directory, "workspace folder")
    directory = Path(directory).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise WorkspaceError(f"{directory} is a file; give `mloop init` a folder.")
    ws_dir = directory / WORKSPACE_DIRNAME
    config = ws_dir / CONFIG_NAME
    if not config.exists():
        _write_config(ws_dir, store_uri, artifact_uri)
    ws = Workspace(resolve_settings(cwd=directory, use_env_uris=False))
    root = ws.settings.artifact_uri
    if root and "://" not in root:
        Path(root).mkdir(parents=True, exist_ok=True)
    store = ws.store
    if root and store.get_setting(ARTIFACT_SETTING) is None:
        store.set_setting(ARTIFACT_SETTING, root, actor=ws.actor, event=WORKSPACE_INITIALISED,
                          subject=f"workspace:{directory.name or 'root'}",
                          payload={"store": ws.settings.store_uri, "artifacts": root})  # fmt: skip
    return ws
