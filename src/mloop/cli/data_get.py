"""``mloop data get``: copy a dataset version's files into a folder, verified against their digests.

The command is registered on the ``mloop data`` group by :mod:`mloop.cli.data`; the copying is
:func:`mloop.datasets.export.export_version` (from the verified local copy, refused for private holdouts, never
overwriting a file).
"""

from __future__ import annotations

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
        Path | None,
        typer.Option(
            "--dest", "-d", metavar="DIR", help="Where to write the files (default ./NAME-vN).", parser=local_path
        ),
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
    from mloop.datasets.export import export_version

    with open_client(ctx) as client:
        result = export_version(client, ref, dest, verify=verify)
    if as_json:
        print_json(result.to_dict())
        return
    stdout_console().print(
        cell(f"Wrote {result.ref} to {result.dest} ({len(result.written)} files, {human_size(result.size)}).", "green")
    )
