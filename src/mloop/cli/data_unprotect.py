"""``mloop data unprotect``: make files added with ``--link`` private and writable again before editing them.

The command is registered on the ``mloop data`` group by :mod:`mloop.cli.data`; the work is
:func:`mloop.datasets.protect.unprotect`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import JsonOpt, local_path

__all__ = ["unprotect"]


def unprotect(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Files or folders added with --link.", parser=local_path)
    ],
    as_json: JsonOpt = False,
) -> None:
    """Give linked (read-only) files their own writable copy, so editing them cannot change a version.

    `mloop data add --link` makes each source and its stored blob one file, read-only. Run this before editing
    such files in place: each one is replaced by a private copy of the same bytes. The versions keep theirs.

    \b
    Examples:
      mloop data unprotect data/images
      mloop data unprotect data/labels.csv --json
    """
    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.datasets.protect import unprotect as run

    done = run(paths)
    if as_json:
        print_json({"copied": [str(p) for p in done.copied], "unchanged": len(done.unchanged)})
        return
    note = f"Unprotected {len(done.copied)} file(s); {len(done.unchanged)} were already private and writable."
    stdout_console().print(cell(note, "green"))
