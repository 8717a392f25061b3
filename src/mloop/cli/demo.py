"""``mloop demo``: a guided tour on a throwaway workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR",
                     help="Where to create the demo workspace (default: ./mloop-demo, or the demo folder you are in)."),
    ] = None,
) -> None:
    """Run the demo: a few tracked runs to explore.

    Creates a workspace in DIR, trains a small grid of scikit-learn models on a bundled dataset while tracking
    them, and shows what to try next. Run again inside the demo folder, it reuses that folder rather than
    creating another one in it.
    """
    from mloop.cli.output import stdout_console
    from mloop.demo import run_demo

    run_demo(directory, console=stdout_console())
