"""Files and folders as step values: a ``pathlib.Path`` output is stored by content, an input arrives as a Path.

A step (a function step returning a ``Path``, or a script step's declared outputs) hands over a file or a
folder; it is stored in the artifact store **file by file** (each file a content-addressed blob, deduplicated
like a dataset snapshot) plus one small **manifest** blob, which is the output's digest::

    {"format": "mloop.path/1", "kind": "folder", "files": [["sub/a.txt", "sha256:...", 12, false], ...]}
    {"format": "mloop.path/1", "kind": "file", "name": "metrics.json", "files": [["metrics.json", ...]]}

The manifest is canonical JSON of the relative paths, digests, sizes and executable bits, so the same content
always has the same digest: a folder's own name is not part of it (a step writing to a fresh temporary folder
each time is still cached downstream), a file's name is (its extension means something). Empty folders and
symbolic links themselves are not kept (a link is stored as the file it points to), like git.

Downstream the value is loaded as a ``pathlib.Path`` to a **read-only materialised copy** in the step
attempt's scratch folder, valid while the step runs (copy it elsewhere to keep it). Storing and loading need
the artifact store of the attempt: the worker calls :func:`use_store` at the start of each attempt (which runs in
a fresh ``contextvars`` context); the scope also owns the scratch folder, removed when the attempt ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound, shown

if TYPE_CHECKING:
    from mloop.artifacts import ArtifactStore

__all__ = [
    "FORMAT",
    "Scope",
    "attempt",
    "current_scope",
    "is_path",
    "load_path",
    "restore",
    "save_path",
    "scratch_folder",
    "store_path",
    "use_store",
]

FORMAT = "mloop.path/1"


class Scope:
    """The artifact store of one step attempt and its scratch folder (removed when the scope is dropped)."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.scratch = Path(tempfile.mkdtemp(prefix="mloop-step-"))
        self.close = weakref.finalize(self, _remove, str(self.scratch))  # at the latest when garbage-collected

    def folder(self, prefix: str) -> Path:
        """A new empty folder inside the scratch folder."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.scratch))


def _remove(path: str) -> None:
    if os.path.isdir(path):
        _writable(Path(path))  # materialised copies are read-only; the folder must still go
        shutil.rmtree(path, ignore_errors=True)


_SCOPE: ContextVar[Scope | None] = ContextVar("mloop_pipeline_files_scope", default=None)


def use_store(store: ArtifactStore) -> Scope:
    """For the rest of the current ``contextvars`` context: ``Path`` values go to and come from ``store``.

    The worker calls this once per step attempt, which runs in a fresh context: when the attempt's context is
    dropped, so is the scope, and its scratch folder is removed.
    """
    scope = Scope(store)
    _SCOPE.set(scope)
    return scope


@contextmanager
def attempt(store: ArtifactStore) -> Iterator[Scope]:
    """``use_store`` for a ``with`` block (the scratch folder is removed at its end)."""
    scope = Scope(store)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)
        scope.close()


def scratch_folder(prefix: str = "out-") -> Path:
    """A new empty folder that lives as long as the step attempt: write a ``Path`` output there.

    ::

        @step
        def report(table: pd.DataFrame) -> Path:
            out = scratch_folder()
            table.describe().to_html(out / "summary.html")
            return out           # stored file by file; the folder is removed after the attempt
    """
    return _needed("make a scratch folder").folder(prefix)


def current_scope() -> Scope | None:
    return _SCOPE.get()


def _needed(what: str) -> Scope:
    scope = _SCOPE.get()
    if scope is None:
        raise InvalidInput(
            f"Cannot {what} outside a pipeline step: file and folder values go through the artifact store of a "
            "step attempt. Run the step in a Pipeline (or call it inside `with mloop.pipelines.files.attempt(store):`)."
        )
    return scope


def is_path(value: Any) -> bool:
    return isinstance(value, PurePath)


def _files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file below ``root`` (links followed, sorted by relative POSIX path)."""
    out: list[tuple[str, Path]] = []
    seen = {root.resolve()}
    for folder, dirs, names in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirs):  # linked folders are followed, once each: a link cycle ends here
            real = Path(folder, d).resolve()
            if real not in seen:
                seen.add(real)
                keep.append(d)
        dirs[:] = keep
        for name in names:
            path = Path(folder, name)
            if path.is_file():
                out.append((path.relative_to(root).as_posix(), path))
    return sorted(out)


def store_path(store: ArtifactStore, path: Path) -> dict[str, Any]:
    """Store the file or folder at ``path`` file by file; returns its manifest (see the module docstring)."""
    if path.is_dir():
        kind, name, files = "folder", None, _files(path)
    elif path.is_file():
        kind, name, files = "file", path.name, [(path.name, path)]
    else:
        raise NotFound(
            f"A step returned the path {shown(str(path))}, which is neither a file nor a folder. Return the path of "
            "a file or folder the step wrote."
        )
    ingest = store.ingest()
    rows = []
    for rel, file in files:
        digest, size = ingest.add(file)
        rows.append([rel, digest, size, bool(file.stat().st_mode & stat.S_IXUSR)])
    manifest: dict[str, Any] = {"format": FORMAT, "kind": kind, "files": rows}
    if name is not None:
        manifest["name"] = name
    return manifest


def _readonly(root: Path) -> None:
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            p = os.path.join(folder, name)
            os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) & ~0o222)
        os.chmod(folder, 0o555)


def _writable(root: Path) -> None:
    for folder, _, names in os.walk(root):
        os.chmod(folder, 0o755)
        for name in names:
            p = os.path.join(folder, name)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.stat(p).st_mode) | 0o200)


def restore(store: ArtifactStore, manifest: dict[str, Any], dest: Path) -> Path:
    """Write the files of ``manifest`` below the folder ``dest`` (verified); returns the file or folder made."""
    if manifest.get("format") != FORMAT or manifest.get("kind") not in ("file", "folder"):
        raise InvalidInput(f"Not a file/folder manifest: {shown(manifest)}. It was not written by mloop.pipelines.")
    kind, name = manifest["kind"], manifest.get("name")
    if kind == "file" and (not isinstance(name, str) or not name or "/" in name or name in (".", "..")):
        raise InvalidInput(f"File manifest name {shown(name)} is not a plain file name; the manifest is corrupt.")
    base = dest if kind == "file" else dest / "folder"
    base.mkdir(parents=True, exist_ok=True)
    target = dest / str(name) if kind == "file" else base
    for rel, digest, _size, executable in manifest["files"]:
        out = (base / rel).resolve()
        if not out.is_relative_to(base.resolve()):
            raise InvalidInput(f"Manifest path {shown(rel)} leaves its folder; the manifest is corrupt.")
        store.get_file(digest, out, name=rel)
        if executable:
            os.chmod(out, os.stat(out).st_mode | 0o111)
    return target


def save_path(value: Any) -> bytes:
    """Materialiser ``save``: store the file or folder, return the manifest's bytes (canonical JSON)."""
    manifest = store_path(_needed("store a file or folder").store, Path(value))
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def load_path(data: bytes) -> Path:
    """Materialiser ``load``: a read-only copy of the stored file or folder in the attempt's scratch folder."""
    scope = _needed("load a file or folder")
    dest = scope.scratch / "inputs" / hashlib.sha256(data).hexdigest()[:16]
    manifest = json.loads(data)
    done = dest / ".complete"
    if done.exists():  # the same value read twice by one attempt: one copy
        return dest / manifest["name"] if manifest["kind"] == "file" else dest / "folder"
    target = restore(scope.store, manifest, dest)
    done.touch()
    _readonly(dest)
    return target
