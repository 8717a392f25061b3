"""A script step's source directory: which files belong to it, and the content digest that is part of its key.

Like Azure ML's snapshot of a script step's ``source_directory``, the **whole folder** is the step's code: every
file below it except caches and tooling that never change what a script does. Excluded always:
``__pycache__``, ``.git``, ``.hg``, ``.svn``, ``.venv``, ``venv``, ``.mypy_cache``, ``.pytest_cache``,
``.ruff_cache``, ``.ipynb_checkpoints``, ``.dvc``, ``.mloop``, ``*.pyc``, ``*.pyo`` and ``.DS_Store``; plus the
patterns of a ``.mloopignore`` file at the folder's top, or else of its ``.gitignore`` (gitignore syntax:
``name`` matches at any depth, ``/name`` only at the top, ``dir/`` only folders, ``*``/``?``/``[...]`` globs,
``**/`` any folders; ``!`` negation is not supported and is refused).

:class:`SourceDigester` walks a folder and hashes its files (SHA-256), remembering each file's digest by
(device, inode, size, mtime) for its lifetime: the twenty steps of one pipeline sharing a source folder read it
once, and each step's key still sees the folder as it is when that step is keyed (just before its attempt
copies it). The tree's digest is the SHA-256 of the sorted (path, file digest) list, and :meth:`SourceTree.files`
keeps a short digest per file so a key can say *which* files changed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mloop.errors import InvalidInput, shown

__all__ = ["ALWAYS_IGNORED", "MAX_FILES", "SourceDigester", "SourceTree", "read_ignore"]

ALWAYS_IGNORED = ("__pycache__/", ".git/", ".hg/", ".svn/", ".venv/", "venv/", ".mypy_cache/", ".pytest_cache/",
                  ".ruff_cache/", ".ipynb_checkpoints/", ".dvc/", ".mloop/", "*.pyc", "*.pyo", ".DS_Store")  # fmt: skip
MAX_FILES = 20_000  # a source folder is code: more files than this is data that belongs in a dataset or an input
_IMPORT = re.compile(rb"^[ \t]*(?:import|from)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    dirs_only: bool
    anchored: bool


def _compile(line: str, origin: str) -> _Pattern | None:
    text = line.rstrip("\n").rstrip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("!"):
        raise InvalidInput(
            f"{origin}: negated pattern {shown(text)} is not supported in a source folder's ignore file. "
            "List what to exclude instead."
        )
    dirs_only = text.endswith("/")
    text = text.strip("/") if dirs_only else text
    anchored = text.startswith("/") or "/" in text
    text = text.lstrip("/")
    parts = [r"(?:.*/)?" if p == "**" else fnmatch.translate(p).removeprefix("(?s:").removesuffix(")\\Z")
             for p in text.split("/")]  # fmt: skip
    body = ""
    for i, p in enumerate(parts):
        body += p if p == r"(?:.*/)?" else p + ("/" if i < len(parts) - 1 else "")
    return _Pattern(re.compile(rf"(?s:{body})\Z"), dirs_only, anchored)


def read_ignore(root: Path) -> tuple[str, list[str]]:
    """(which file, its lines): ``.mloopignore`` if present, else ``.gitignore``, else none."""
    for name in (".mloopignore", ".gitignore"):
        path = root / name
        if path.is_file():
            return name, path.read_text(errors="replace").splitlines()
    return "", []


@dataclass(frozen=True)
class SourceTree:
    """A source folder's content: ``digest`` (``sha256:...``), each file's short digest, and what it imports."""

    root: str
    digest: str
    files: dict[str, str]  # relative POSIX path -> first 16 hex of the file's SHA-256
    size: int
    imports: frozenset[str] = field(default=frozenset())  # top-level modules its .py files import

    @property
    def local_modules(self) -> frozenset[str]:
        """Top-level module names the folder itself provides (``helpers.py``, ``pkg/__init__.py``)."""
        out = set()
        for rel in self.files:
            first = rel.split("/", 1)[0]
            if rel.count("/") == 0 and first.endswith(".py"):
                out.add(first.removesuffix(".py"))
            elif rel.count("/") >= 1:
                out.add(first)
        return frozenset(out)


class SourceDigester:
    """Walks and hashes source folders; file digests are remembered by (device, inode, size, mtime)."""

    def __init__(self) -> None:
        self._files: dict[tuple[int, int, int, int], tuple[str, frozenset[str]]] = {}

    def _patterns(self, root: Path) -> list[_Pattern]:
        origin, lines = read_ignore(root)
        out = [p for line in ALWAYS_IGNORED if (p := _compile(line, "built-in")) is not None]
        return out + [p for line in lines if (p := _compile(line, str(root / origin))) is not None]

    @staticmethod
    def _ignored(rel: str, name: str, is_dir: bool, patterns: list[_Pattern]) -> bool:
        for p in patterns:
            if p.dirs_only and not is_dir:
                continue
            if p.regex.match(rel if p.anchored else name):
                return True
        return False

    def walk(self, root: Path) -> list[tuple[str, os.DirEntry[str]]]:
        """(relative path, entry) of every file that belongs to the source folder, sorted by path."""
        patterns = self._patterns(root)
        out: list[tuple[str, os.DirEntry[str]]] = []
        todo = [(root, "")]
        seen = {root.resolve()}  # linked folders are followed, once each: a link cycle ends here
        while todo:
            folder, prefix = todo.pop()
            with os.scandir(folder) as entries:
                for e in entries:
                    rel = prefix + e.name
                    is_dir = e.is_dir()
                    if self._ignored(rel, e.name, is_dir, patterns):
                        continue
                    if is_dir:
                        real = Path(e.path).resolve()
                        if real not in seen:
                            seen.add(real)
                            todo.append((Path(e.path), rel + "/"))
                    elif e.is_file():
                        out.append((rel, e))
            if len(out) > MAX_FILES:
                raise InvalidInput(
                    f"Source folder {str(root)!r} has more than {MAX_FILES} files: it is hashed and copied for every "
                    "step run. Keep only code in it, or exclude data and outputs in a .mloopignore file at its top."
                )
        out.sort(key=lambda item: item[0])
        return out

    def _file(self, entry: os.DirEntry[str]) -> tuple[str, frozenset[str]]:
        st = entry.stat()
        memo = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        found = self._files.get(memo)
        if found is None:
            data = Path(entry.path).read_bytes()
            imports = (
                frozenset(m.decode() for m in _IMPORT.findall(data)) if entry.name.endswith(".py") else frozenset()
            )
            found = (hashlib.sha256(data).hexdigest(), imports)
            self._files[memo] = found
        return found

    def tree(self, root: str | os.PathLike[str]) -> SourceTree:
        """The digest of the folder ``root`` as it is now (walked each time; unchanged files are not read again)."""
        path = Path(root).resolve()
        if not path.is_dir():
            raise InvalidInput(f"Source folder {shown(str(root))} is not a folder. Pass the folder holding the script.")
        rows: list[str] = []
        files: dict[str, str] = {}
        imports: set[str] = set()
        size = 0
        for rel, entry in self.walk(path):
            digest, found = self._file(entry)
            rows.append(f"{rel}\0{digest}")
            files[rel] = digest[:16]
            imports |= found
            size += entry.stat().st_size
        total = "sha256:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return SourceTree(str(path), total, files, size, frozenset(imports))
