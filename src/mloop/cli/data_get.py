"""``mloop data get``: copy a dataset version's files into a folder, verified against their digests.

The command is registered on the ``mloop data`` group by :mod:`mloop.cli.data`; reading is
:meth:`mloop.Dataset.path` (materialised, verified, refused for private holdouts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import DataRefArg as RefArg
from mloop.cli.common import JsonOpt, local_path, open_client

__all__ = ["get"]



def get(
    ctx: typer.Context,
    ref: RefArg,
    dest: Annotated[
        Path | None, typer.Option("--dest", "-d", metavar="DIR", help="Where to write the files (default ./NAME-vN).",
                                  parser=local_path)
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Re-hash every file of the local copy, not only changed ones."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy a version's files into a folder, verified against their digests.

    Existing files are never overwritten. Private holdouts cannot be fetched (exit 8). The local copy mloop
    keeps is checked on every read (size and modification time, re-hashing what changed); --verify re-hashes
    every file. An edited copy is refused with an integrity error naming the file.

    \b
    Examples:
      mloop data get data:sensors/3
      mloop data get data:sensors@prod --dest ./sensors
      mloop data get data:sensors/3 --verify
    """
    from mloop.cli.output import cell, human_size, print_json, stdout_console
    from mloop.datasets.dataset import get_dataset

    with open_client(ctx) as client:
        ds = get_dataset(ref, client=client)
        target = (dest if dest is not None else Path(f"{ds.name}-v{ds.version}")).resolve()
        local = ds.path(verify=verify)  # verified; refused for private holdouts
        entries = ds.files()
    _refuse_overwrite(target, [e.path for e in entries])
    if len(entries) == 1 and local.is_file():  # path() gives the file itself for one-file versions
        local = local.parents[len(Path(entries[0].path).parts) - 1]
    written = _copy_tree(local, target, [e.path for e in entries])
    if as_json:
        print_json({"ref": ds.ref, "dest": str(target), "files": len(written), "bytes": ds.info.total_size})
        return
    stdout_console().print(
        cell(f"Wrote {ds.ref} to {target} ({len(written)} files, {human_size(ds.info.total_size)}).", "green")
    )


def _refuse_overwrite(target: Path, paths: Sequence[str]) -> None:
    from mloop.errors import AlreadyExists

    existing = [p for p in paths if (target / p).exists()]
    if existing:
        raise AlreadyExists(
            f"{target / existing[0]} already exists ({len(existing)} of the files would be overwritten). "
            "Choose another --dest or remove them first."
        )


def _copy_tree(root: Path, target: Path, paths: Sequence[str]) -> list[Path]:
    """Copy ``paths`` from the (read-only) materialised ``root`` into ``target``, as ordinary writable files."""
    import shutil

    written = []
    for rel in paths:
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, out)
        written.append(out)
    return written
