"""Unprotecting files added with ``--link``: give each its own writable copy, so editing it cannot touch a version.

``mloop data add --link`` hard-links sources into the artifact store and makes them read-only; the source and
the stored blob are then one file. Before editing such a file in place, :func:`unprotect` replaces it with a
private writable copy (the same bytes under a new inode), like ``dvc unprotect``. The store keeps its blob.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mloop.datasets.snapshot import SKIPPED_DIRS
from mloop.errors import InvalidInput, NotFound

__all__ = ["Unprotected", "unprotect"]


@dataclass(frozen=True)
class Unprotected:
    """What :func:`unprotect` did: the files it copied, and the ones that were already private and writable."""

    copied: list[Path]
    unchanged: list[Path]


def _files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_symlink():
            raise InvalidInput(f"Cannot unprotect {str(item)!r}: it is a symbolic link; pass the file it points to.")
        if not path.exists():
            raise NotFound(f"Cannot unprotect {str(item)!r}: no such file or folder. Check the path.")
        if path.is_file():
            yield path
        elif path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
                yield from (Path(folder) / n for n in sorted(names) if (Path(folder) / n).is_file())
        else:
            raise InvalidInput(f"Cannot unprotect {str(item)!r}: it is neither a regular file nor a folder.")


def unprotect(paths: Iterable[str | os.PathLike[str]]) -> Unprotected:
    """Give every file under ``paths`` that is shared (hard-linked) or read-only its own writable copy.

    Each copy is written next to the file and renamed over it (atomic: a crash leaves the old link or the new
    copy, never half a file). Files with one link that are already writable are left alone.
    """
    copied: list[Path] = []
    unchanged: list[Path] = []
    for path in _files(paths):
        info = path.stat()
        if info.st_nlink == 1 and info.st_mode & stat.S_IWUSR:
            unchanged.append(path)
            continue
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.unprotect")
        try:
            shutil.copyfile(path, temp)
            os.chmod(temp, stat.S_IMODE(info.st_mode) | stat.S_IWUSR)
            os.utime(temp, ns=(info.st_atime_ns, info.st_mtime_ns))
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        copied.append(path)
    return Unprotected(copied, unchanged)
