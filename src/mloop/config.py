"""Settings resolution: flag > environment > workspace file > default.

This is the only module that reads ``os.environ``. A *workspace* is a folder holding ``.mloop/`` with a
``config.toml``; its metadata store and artifact folder live beside that file and are referred to by relative
paths, so a copied or moved workspace keeps working.

Resolution of the metadata store URI:

1. an explicit ``uri=`` argument (the CLI's ``--uri``),
2. the ``MLOOP_URI`` environment variable,
3. the nearest workspace found upwards from the current directory,
4. the default workspace ``~/.mloop`` (created on first use).

The artifact root comes from ``artifact_uri=`` / ``MLOOP_ARTIFACT_URI`` / the workspace file, or, when none is
given, from what the metadata store itself records (set once by ``mloop init``), so a team needs to share only
one URI.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, WorkspaceError, shown

__all__ = [
    "CONFIG_NAME",
    "WORKSPACE_DIRNAME",
    "Settings",
    "check_local_path",
    "find_workspace",
    "resolve_settings",
    "workspace_config_text",
]

WORKSPACE_DIRNAME = ".mloop"
CONFIG_NAME = "config.toml"
DEFAULT_DB_NAME = "mloop.db"
DEFAULT_ARTIFACT_DIR = "artifacts"


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``sources`` says where each value came from (for ``mloop info``)."""

    store_uri: str
    artifact_uri: str | None
    workspace: Path | None
    actor: str
    strict: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)
    home: Path | None = None  # the default workspace (~/.mloop or MLOOP_HOME)
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # actor -> roles ([roles] in the file)
    policies: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # model -> alias -> policy text
    fsync: bool = False  # MLOOP_FSYNC: flush every new dataset blob to disk before recording the version
    automations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [automations.NAME] tables

    @property
    def local_dir(self) -> Path:
        """Where per-machine state (the stat cache, materialised datasets) lives for this workspace."""
        return self.workspace or self.home or Path.home() / WORKSPACE_DIRNAME


def find_workspace(start: Path) -> Path | None:
    """Return the nearest folder at or above ``start`` that holds ``.mloop/config.toml``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / WORKSPACE_DIRNAME / CONFIG_NAME).is_file():
            return folder / WORKSPACE_DIRNAME
    return None


def workspace_config_text(store_uri: str | None = None, artifact_uri: str | None = None) -> str:
    """The text of a new workspace's ``config.toml``."""
    store = store_uri or f"sqlite:///{DEFAULT_DB_NAME}"
    artifacts = artifact_uri or DEFAULT_ARTIFACT_DIR
    return (
        "# mloop workspace. Relative paths are relative to this folder.\n"
        "[store]\n"
        f"uri = {_toml_str(store)}\n\n"
        "[artifacts]\n"
        f"uri = {_toml_str(artifacts)}\n"
    )


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _read_workspace_file(ws: Path) -> dict[str, object]:
    path = ws / CONFIG_NAME
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise WorkspaceError(
            f"Workspace file {path} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}). Save it as UTF-8, or delete it and run `mloop init` again."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(
            f"Workspace file {path} is not valid TOML ({exc}). Fix it, or delete it and run `mloop init` again."
        ) from exc
    except OSError as exc:
        raise WorkspaceError(
            f"Workspace file {path} cannot be read ({exc.strerror or exc}). Check its permissions."
        ) from exc


def _section_value(doc: Mapping[str, object], section: str, key: str) -> str | None:
    sec = doc.get(section)
    if isinstance(sec, Mapping):
        value = sec.get(key)
        if value is not None and not isinstance(value, str):
            raise WorkspaceError(f"[{section}] {key} must be a string in the workspace file, got {value!r}.")
        return value
    return None


def _absolutise(uri: str, base: Path) -> str:
    """Make a workspace-relative sqlite path or local folder absolute."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if path and not path.startswith("/") and path != ":memory:":
            return "sqlite:///" + str((base / path).resolve())
        return uri
    if "://" in uri:
        return uri
    p = Path(uri).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def resolve_settings(
    uri: str | None = None,
    artifact_uri: str | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    use_env_uris: bool = True,
) -> Settings:
    """Resolve settings. ``env`` defaults to ``os.environ``; ``home`` to the user's home folder.

    ``use_env_uris=False`` ignores ``MLOOP_URI``/``MLOOP_ARTIFACT_URI`` (``mloop init DIR`` uses DIR's own).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if not use_env_uris:
        environ = {k: v for k, v in environ.items() if k not in {"MLOOP_URI", "MLOOP_ARTIFACT_URI"}}
    sources: dict[str, str] = {}
    workspace: Path | None = None
    doc: Mapping[str, object] = {}
    home_dir = Path(environ.get("MLOOP_HOME") or (home or Path.home()) / WORKSPACE_DIRNAME)

    if uri:
        store_uri, sources["store_uri"] = uri, "argument"
    elif environ.get("MLOOP_URI"):
        store_uri, sources["store_uri"] = environ["MLOOP_URI"], "MLOOP_URI"
    else:
        workspace = find_workspace(cwd or Path.cwd())
        if workspace is None:
            workspace = home_dir
            sources["store_uri"] = "default (~/.mloop)"
        else:
            sources["store_uri"] = f"workspace {workspace}"
        if (workspace / CONFIG_NAME).is_file():
            doc = _read_workspace_file(workspace)
        store_uri = _absolutise(_section_value(doc, "store", "uri") or f"sqlite:///{DEFAULT_DB_NAME}", workspace)

    if workspace is None and not doc:
        # An explicit store URI still honours the nearest workspace file's team settings (roles, policies, user).
        nearest = find_workspace(cwd or Path.cwd())
        if nearest is not None:
            doc = _read_workspace_file(nearest)

    _check_text("store URI", store_uri, sources["store_uri"])
    if store_uri.startswith("sqlite:///") and workspace is None:
        store_uri = _absolutise(store_uri, (cwd or Path.cwd()))

    art: str | None
    if artifact_uri:
        art, sources["artifact_uri"] = artifact_uri, "argument"
    elif environ.get("MLOOP_ARTIFACT_URI"):
        art, sources["artifact_uri"] = environ["MLOOP_ARTIFACT_URI"], "MLOOP_ARTIFACT_URI"
    elif workspace is not None:
        art = _absolutise(_section_value(doc, "artifacts", "uri") or DEFAULT_ARTIFACT_DIR, workspace)
        sources["artifact_uri"] = f"workspace {workspace}"
    else:
        art = None  # taken from the metadata store (recorded by `mloop init`)
        sources["artifact_uri"] = "metadata store"
    if art is not None:
        _check_text("artifact URI", art, sources["artifact_uri"])
    if art is not None and "://" not in art:
        art = _absolutise(art, cwd or Path.cwd())

    if environ.get("MLOOP_USER"):
        actor, sources["actor"] = environ["MLOOP_USER"], "MLOOP_USER"
    elif _section_value(doc, "user", "name"):
        actor, sources["actor"] = str(_section_value(doc, "user", "name")), "workspace file [user] name"
    else:
        actor, sources["actor"] = _default_user(), "login name"
    strict = environ.get("MLOOP_STRICT", "").lower() in {"1", "true", "yes"}
    fsync = environ.get("MLOOP_FSYNC", "").lower() in {"1", "true", "yes"}
    return Settings(
        store_uri,
        art,
        workspace,
        actor,
        strict,
        sources,
        home_dir,
        _roles(doc),
        _policies(doc),
        fsync,
        _automations(doc),
    )


def check_local_path(path: str | os.PathLike[str], what: str = "path") -> None:
    """Refuse a path no file system can hold (a NUL byte, or bytes that are not UTF-8) with InvalidInput."""
    _check_text(what, os.fspath(path), "the command line or the caller")


def _check_text(what: str, value: str, source: str) -> None:
    """A NUL byte or text that is not UTF-8 (bytes decoded with surrogateescape) can name no file or database."""
    try:
        value.encode()
        ok = "\x00" not in value
    except UnicodeEncodeError:
        ok = False
    if not ok:
        error = WorkspaceError if source.startswith("workspace") else InvalidInput
        raise error(
            f"The {what} {shown(value)} (from {source}) holds a NUL byte or text that is not UTF-8. "
            "Give a path or URI of plain text."
        )


def _roles(doc: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    section = doc.get("roles")
    if not isinstance(section, Mapping):
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for actor, value in section.items():
        roles = [value] if isinstance(value, str) else value
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise WorkspaceError(f"[roles] {actor} must be a role name or a list of them, got {value!r}.")
        out[str(actor)] = tuple(roles)
    return out


def _policies(doc: Mapping[str, object]) -> dict[str, dict[str, str]]:
    section = doc.get("policies")
    if not isinstance(section, Mapping):
        return {}
    out: dict[str, dict[str, str]] = {}
    for model, aliases in section.items():
        if not isinstance(aliases, Mapping) or not all(isinstance(v, str) for v in aliases.values()):
            raise WorkspaceError(
                f'[policies.{model}] must map aliases to policy strings, e.g. production = "approvals(1)".'
            )
        out[str(model)] = {str(k): str(v) for k, v in aliases.items()}
    return out


def _automations(doc: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    """``[automations.NAME]`` tables, as written (checked when applied: mloop.automation.api.apply_config)."""
    section = doc.get("automations")
    if section is None:
        return {}
    if not isinstance(section, Mapping) or not all(isinstance(v, Mapping) for v in section.values()):
        raise WorkspaceError(
            '[automations] holds one table per automation, e.g. [automations.retrain] with on = "monitor.alert" '
            'and do = { action = "run_pipeline", pipeline = "train" }.'
        )
    return {str(k): dict(v) for k, v in section.items()}


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
