"""``mloop demo``: the whole closed loop on a fresh folder, in about a minute.

The command is here; the tour (:mod:`mloop.cli.demo.tour`) runs the steps of :mod:`mloop.cli.demo.baseline` and
:mod:`mloop.cli.demo.drift` on sensor data (:mod:`mloop.cli.demo.sensors`) with the training pipeline of
:mod:`mloop.cli.demo.pipeline`, using the public library as a user would. They are part of the CLI, not a
library layer: nothing in the library imports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import JsonOpt, local_path

__all__ = ["demo"]


def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            parser=local_path,
            help="A fresh folder for the demo workspace (default: ./mloop-demo, or ./mloop-demo-2 ... if taken).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated sensor data and traffic.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole closed loop on a fresh folder: data, pipeline, gate, endpoint, monitor, drift, automations.

    Generates predictive-maintenance sensor data and versions it; publishes and runs the training pipeline
    (retrain_pipeline.py, written into DIR) and promotes its model through a gate; serves it on a loopback
    endpoint that follows sensors@production with a canary policy; monitors the traffic. Then it injects drift
    (a new data version and drifted traffic): the monitor raises an alert and the automations retrain on the
    newest data, promote the better model through the gate and roll it out as a canary to 100%, with no manual
    step; a worse model is refused. It ends with a summary, the lineage of the new production model, an HTML
    monitoring report and the commands to look around, and stops every process it started (also on Ctrl-C).
    --json prints a machine-readable summary (phases with seconds, versions, refusal, report path) on stdout.
    """
    from mloop.cli.demo.tour import run_demo
    from mloop.cli.output import print_json, stderr_console, stdout_console

    result = run_demo(directory, console=stderr_console() if as_json else stdout_console(), seed=seed)
    if as_json:
        print_json(result.to_dict())
