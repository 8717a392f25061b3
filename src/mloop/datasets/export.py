"""Copying a dataset version's files into a folder of ordinary, writable files (``mloop data get``).

The files come from the verified local copy (:meth:`~mloop.datasets.dataset.Dataset.path`: refused for private
holdouts, checked on every reuse), and no existing file is ever overwritten.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.datasets.dataset import get_dataset
from mloop.errors import AlreadyExists

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["ExportResult", "export_version"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_version` wrote: the version, the folder, every file written and their total size."""

    ref: str
    dest: Path
    written: Sequence[Path]
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "dest": str(self.dest), "files": len(self.written), "bytes": self.size}


def export_version(client: Context, ref: str, dest: Path | None = None, *, verify: bool = False) -> ExportResult:
    """Copy the files of ``ref`` (``data:<name>/<version>``, ``data:<name>@<alias>`` or ``data:<name>``) into
    ``dest`` (default ``./<name>-v<version>``), keeping their relative paths.

    The copy is made from the verified local copy (``verify=True`` re-hashes every file of it, not only the
    changed ones). A private holdout is refused (:class:`~mloop.errors.AccessDenied`), and so is a ``dest`` where
    any of the files exists already (:class:`~mloop.errors.AlreadyExists`; nothing is written then).
    """
    ds = get_dataset(ref, client=client)
    target = (dest if dest is not None else Path(f"{ds.name}-v{ds.version}")).resolve()
    local = ds.path(verify=verify)  # verified; refused for private holdouts
    paths = [e.path for e in ds.files()]
    _refuse_overwrite(target, paths)
    if len(paths) == 1 and local.is_file():  # path() gives the file itself for one-file versions
        local = local.parents[len(Path(paths[0]).parts) - 1]
    return ExportResult(ds.ref, target, tuple(_copy_tree(local, target, paths)), ds.info.total_size)


def _refuse_overwrite(target: Path, paths: Sequence[str]) -> None:
    existing = [p for p in paths if (target / p).exists()]
    if existing:
        raise AlreadyExists(
            f"{target / existing[0]} already exists ({len(existing)} of the files would be overwritten). "
            "Choose another --dest or remove them first."
        )


def _copy_tree(root: Path, target: Path, paths: Sequence[str]) -> list[Path]:
    """Copy ``paths`` from the (read-only) materialised ``root`` into ``target``, as ordinary writable files."""
    written = []
    for rel in paths:
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, out)
        written.append(out)
    return written
