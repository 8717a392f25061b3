"""``mloop demo``: a guided tour on a throwaway workspace.

The command is here; the tour itself (:mod:`mloop.cli.demo.tour`) uses the public SDK as a user would. It is
part of the CLI, not a library layer: nothing in the library imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import local_path

__all__ = ["demo"]


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR", parser=local_path,
                     help="Where to create the demo workspace (default: ./mloop-demo, or the demo folder you are in)."),
    ] = None,
) -> None:
    """Run the demo: a few tracked runs to explore.

    Creates a workspace in DIR, trains a small grid of scikit-learn models on a bundled dataset while tracking
    them, and shows what to try next. Run again inside the demo folder, it reuses that folder rather than
    creating another one in it.
    """
    from mloop.cli.demo.tour import run_demo
    from mloop.cli.output import stdout_console

    run_demo(directory, console=stdout_console())
