"""The tour ``mloop demo`` runs: the whole closed loop on a fresh folder, in about a minute.

1. sensor data (:mod:`mloop.cli.demo.sensors`) versioned as ``data:sensors/1``;
2. the training pipeline (:mod:`mloop.cli.demo.pipeline`) published as ``pipeline:retrain`` (its ``data``
   parameter defaults to ``sensors@latest``) and run; its model promoted through the gate to ``production``;
3. endpoint ``sensors`` following ``sensors@production`` with a canary policy, on loopback;
4. a monitor against the training data, the automations, the scheduler that runs them; traffic with labels:
   no alert;
5. drift: ``data:sensors/2`` and drifted traffic; the monitor's next window opens drift alerts;
6. no manual step: the automations retrain on ``sensors@latest``, promote through the gate (the challenger beats
   the champion on the private holdout with confidence), the endpoint rolls it out as a canary to 100%;
7. a worse model (a retrain on shuffled labels) is refused by the same gate;
8. the HTML monitoring report; then a summary, the new production model's lineage and where to look.

Every process it starts (the scheduler, the endpoint's supervisor and server) is stopped at the end, also after
an error, Ctrl-C or SIGTERM (:mod:`mloop.cli.demo.children`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mloop.cli.demo.result import DemoResult, Tour
from mloop.errors import InvalidInput

__all__ = ["DEMO_DIRNAME", "demo_root", "path_hint", "run_demo"]

DEMO_DIRNAME = "mloop-demo"
_MARKER = "made-by-mloop-demo"  # in the demo's .mloop/


def demo_root(directory: Path | None = None, *, cwd: Path | None = None) -> Path:
    """Where the demo runs: ``directory`` if given (it must not hold a workspace yet); else the first of
    ``./mloop-demo``, ``./mloop-demo-2`` ... that does not exist (the demo runs on a fresh folder)."""
    if directory is not None:
        root = directory.expanduser().resolve()
        if (root / ".mloop").exists():
            raise InvalidInput(f"{root} already holds an mloop workspace; the demo runs on a fresh folder. Pass "
                               f"another one (--dir NEW) or delete that one (rm -r {root}).")  # fmt: skip
        return root
    here = (cwd or Path.cwd()).resolve()
    candidate, number = here / DEMO_DIRNAME, 1
    while candidate.exists():
        number += 1
        candidate = here / f"{DEMO_DIRNAME}-{number}"
    return candidate


def path_hint() -> str | None:
    """How to put ``mloop`` on PATH when it is not (so the printed commands work as printed); else ``None``."""
    import shutil
    import sys

    if shutil.which("mloop") is not None:
        return None
    activate = Path(sys.prefix) / "bin" / "activate"
    if activate.is_file():
        return f"`mloop` is not on your PATH: first run `source {activate}`."
    return f'`mloop` is not on your PATH: first run `export PATH="{Path(sys.executable).parent}:$PATH"`.'


def run_demo(directory: Path | None = None, *, console: Any = None, seed: int = 0) -> DemoResult:
    """Run the demo in :func:`demo_root` of ``directory`` and return what it made.

    It runs in a copy of the caller's ``contextvars`` context whose fluent client is the demo's workspace, so
    the caller's client is left alone.
    """
    import contextvars

    result: DemoResult = contextvars.copy_context().run(_tour, directory, console, seed)
    return result


def _steps(tour: Tour) -> None:
    from mloop.cli.demo import baseline, drift
    from mloop.entities import now_ms

    with tour.steps.step("data", "Sensor data, versioned"):
        baseline.add_data(tour)
    with tour.steps.step("train", "Training pipeline published and run; model promoted through the gate"):
        baseline.publish_and_train(tour)
    with tour.steps.step("deploy", "Endpoint on loopback, following sensors@production"):
        baseline.deploy(tour)
    rules_at = now_ms()
    with tour.steps.step("watch", "Monitor, automations and scheduler; traffic with labels"):
        baseline.watch(tour)
    with tour.steps.step("drift", "Drift: new data version and drifted traffic"):
        alert_ms = drift.inject_drift(tour)
    with tour.steps.step("loop", "The automations close the loop (no manual step)"):
        drift.close_loop(tour, alert_ms, rules_at)
    with tour.steps.step("refusal", "A worse model is refused by the gate"):
        drift.refuse_worse(tour, rules_at)
    with tour.steps.step("report", "Monitoring report written; processes stopped"):
        _report(tour, rules_at)


def _report(tour: Tour, rules_at: int) -> None:
    from datetime import UTC, datetime

    from mloop.cli.demo.automations import action_row, actions_since
    from mloop.monitoring.report import write_html

    client, result = tour.client, tour.result
    path = tour.root / "monitoring-report.html"
    results = client.store.list_monitor_results("sensors", limit=1_000_000)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    size = write_html(path, client.store.get_monitor("sensors"), results, client.store.list_monitor_alerts("sensors"),
                      generated_at=stamp)  # fmt: skip
    result.report = str(path)
    tour.steps.note(f"{path} ({size:,} bytes)")
    result.automations = [action_row(a) for a in actions_since(client, rules_at)]
    if tour.sender is not None:
        result.endpoint["traffic"] = tour.sender.counts()
    _stop(tour)


def _stop(tour: Tour) -> None:
    if tour.sender is not None:
        tour.sender.close()
    before = len(tour.children.stopped)
    errors = tour.children.stop_all()
    tour.result.stopped = list(tour.children.stopped)
    tour.result.processes = dict(tour.children.pids)
    if tour.children.stopped[before:]:
        tour.steps.note("stopped: " + ", ".join(tour.children.stopped[before:]))
    for error in errors:
        tour.steps.note(f"could not stop {error}", style="red")


def _tour(directory: Path | None, console: Any, seed: int) -> DemoResult:
    from rich.console import Console

    import mloop
    from mloop.cli.demo.children import Children, interruptible
    from mloop.cli.demo.show import Steps, print_commands, print_lineage, print_summary
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    started = time.perf_counter()
    out = console or Console()
    root = demo_root(directory)
    client = Client(workspace=init_workspace(root))
    mloop.use_client(client)
    (root / ".mloop" / _MARKER).write_text("This workspace was made by `mloop demo`.\n")
    result = DemoResult(workspace=root)
    tour = Tour(client, root, out, Steps(out, total=8), Children(client, root), result, seed=seed)
    out.print(f"[bold]mloop demo[/]: the closed loop, in {root}")
    try:
        with interruptible():
            try:
                _steps(tour)
            except KeyboardInterrupt:
                result.interrupted = True
                out.print("[yellow]Interrupted: stopping what the demo started ...[/]")
                raise
            finally:
                _stop(tour)
                result.phases = tour.steps.phases
                result.seconds = time.perf_counter() - started
        print_summary(out, result)
        out.print(f"Lineage of the new production model ({result.production}), as `mloop lineage "
                  "model:sensors@production` shows it:", markup=False)  # fmt: skip
        print_lineage(out, client, "model:sensors@production")
        print_commands(out, root, hint=path_hint())
        out.print(f"Done in {result.seconds:.1f} s.")
    finally:
        client.close()
    return result
