"""``mloop demo``: a guided tour on a throwaway workspace.

The command is here; the tour itself (:mod:`mloop.cli.demo.tour`, printing in :mod:`mloop.cli.demo.show`) and
the example training pipeline it runs (:mod:`mloop.cli.demo.pipeline`) use the public SDK as a user would.
They are part of the CLI, not a library layer: nothing in the library imports them.
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
        typer.Option(
            "--dir",
            metavar="DIR",
            parser=local_path,
            help="Where to create the demo workspace (default: ./mloop-demo, or the demo folder you are in).",
        ),
    ] = None,
) -> None:
    """Run the demo: the example training pipeline, the registry and its promotion gate.

    Creates a workspace in DIR and writes the example pipeline there (train_pipeline.py). Its steps version a
    bundled scikit-learn dataset with a private holdout, train two candidates in parallel, and register the
    better one only if it beats production on the holdout; then a weaker challenger is refused by the gate.
    Run again, every step is reused from the cache. Run inside the demo folder, it reuses that folder rather
    than creating another one in it.
    """
    from mloop.cli.demo.tour import run_demo
    from mloop.cli.output import stdout_console

    run_demo(directory, console=stdout_console())
