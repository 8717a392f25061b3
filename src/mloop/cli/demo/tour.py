"""The tour ``mloop demo`` runs: the loop so far, on data scikit-learn ships, in a fresh workspace.

1. write the example training pipeline (:mod:`mloop.cli.demo.pipeline`) into the demo folder as
   ``train_pipeline.py``, for the user to run, edit and re-run with ``mloop pipelines run``;
2. train through it: prepare (version the data, split off a private stratified holdout), featurise, train two
   candidates in parallel, evaluate them on validation data, register the better one and promote it to
   ``production`` only if it beats the current production model on the holdout. Each step is a tracked run;
   run again, every step is reused from the cache;
3. register the runner-up as a challenger and show the promotion gate refusing it, with its table of checks;
4. print where to look. Serving, monitoring and automatic retraining extend it as they land.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEMO_DIRNAME", "PIPELINE_FILE", "DemoResult", "demo_root", "path_hint", "run_demo", "write_pipeline_file"]

DEMO_DIRNAME = "mloop-demo"
PIPELINE_FILE = "train_pipeline.py"  # the example pipeline, copied into the demo folder for the user
_MARKER = "made-by-mloop-demo"  # in the demo's .mloop/: running the demo again from inside reuses the folder


@dataclass
class DemoResult:
    workspace: Path
    experiment: str
    pipeline_run_id: str = ""
    steps: dict[str, str] = field(default_factory=dict)  # step -> ran / cached
    run_ids: list[str] = field(default_factory=list)  # the runs that trained the two candidates
    best_run_id: str = ""
    best_accuracy: float = 0.0
    production: str = ""
    production_metrics: dict[str, Any] = field(default_factory=dict)
    refused: str = ""
    chart: Path | None = None
    pipeline_file: Path | None = None
    seconds: float = 0.0


def demo_root(directory: Path | None = None, *, cwd: Path | None = None) -> Path:
    """Where the demo runs: ``directory`` if given; else the demo folder the current folder is in (so running
    the demo again from inside it reuses it instead of nesting another); else ``./mloop-demo``."""
    from mloop.config import find_workspace

    if directory is not None:
        return directory.expanduser().resolve()
    here = (cwd or Path.cwd()).resolve()
    found = find_workspace(here)
    if found is not None and ((found / _MARKER).is_file() or found.parent.name == DEMO_DIRNAME):
        return found.parent
    return here / DEMO_DIRNAME


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


def write_pipeline_file(root: Path) -> tuple[Path, bool]:
    """Copy the example pipeline to ``root/train_pipeline.py`` unless a copy is there; ``(path, edited)``.

    A copy that differs from this mloop's example is the user's (edited, or from another release): it is kept.
    The steps' code is the same either way, so running the copy reuses what the demo's run cached.
    """
    source = Path(__file__).with_name("pipeline.py").read_text(encoding="utf-8")
    target = root / PIPELINE_FILE
    if not target.exists():
        target.write_text(source, encoding="utf-8")
        return target, False
    return target, target.read_text(encoding="utf-8") != source


def _output(client: Any, result: Any, name: str) -> Any:
    """The value of output ``name`` of a pipeline run, read back from the artifact store."""
    from mloop.pipelines.materialisers import loads

    for s in result.steps.values():
        if name in s.outputs:
            stored = s.outputs[name]
            return loads(client.artifacts.get_bytes(stored["digest"]), stored["materialiser"])
    raise KeyError(name)


def _producer(client: Any, run_id: str) -> Any:
    """The run that did a step's work: the step run itself, or for a cached step the run it reused."""
    from mloop.pipelines.results import TAG

    record = client.get_run(run_id)
    source = record.tags.get(TAG.CACHED_FROM)
    return client.get_run(source) if source else record


def _train(out: Any, client: Any, root: Path) -> Any:
    """Run the example pipeline (Rich spinner while it runs, then its steps with their cache status)."""
    from mloop.cli.demo.pipeline import train
    from mloop.cli.demo.show import show_pipeline, stages
    from mloop.errors import MloopError

    out.print(f"Training through the example pipeline ({PIPELINE_FILE}): {stages(train.graph)}")
    with out.status(f"running pipeline {train.name!r} ({len(train.steps)} steps, independent ones in parallel)"):
        result = train.run(client=client, tags={"mloop.demo": "true"})
    show_pipeline(out, result)
    if not result.ok:
        failed = next(s for s in result.steps.values() if s.status == "failed")
        last = (failed.error or "failed").strip().splitlines()[-1]
        raise MloopError(
            f"The demo pipeline failed at step {failed.step!r}: {last}. See its log with "
            f"`mloop pipelines logs {result.run_id} {failed.step} --uri {root / '.mloop'}`."
        )
    return result


def run_demo(directory: Path | None = None, *, console: Any = None) -> DemoResult:
    """Run the demo in :func:`demo_root` of ``directory`` and return what it made.

    It runs in a copy of the caller's ``contextvars`` context whose fluent client is the demo's workspace (step
    outputs that are dataset versions are read back through it), so the caller's client is left alone.
    """
    import contextvars

    result: DemoResult = contextvars.copy_context().run(_tour, directory, console, time.perf_counter())
    return result


def _tour(directory: Path | None, console: Any, started: float) -> DemoResult:
    from rich.console import Console

    import mloop
    from mloop.cli.demo.pipeline import DATASET, MODEL
    from mloop.cli.demo.show import report
    from mloop.errors import GateFailed
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    out = console or Console()
    root = demo_root(directory)
    client = Client(workspace=init_workspace(root))
    mloop.use_client(client)
    try:
        marker = root / ".mloop" / _MARKER
        if not marker.exists():
            marker.write_text("This workspace was made by `mloop demo`; running it again from here reuses it.\n")
        result = DemoResult(workspace=root, experiment=DATASET)
        out.print(f"[bold]mloop demo[/] workspace: {root / '.mloop'}")
        result.pipeline_file, edited = write_pipeline_file(root)
        if edited:
            out.print(f"{PIPELINE_FILE} differs from this mloop's example: kept as it is (the demo runs the "
                      "original; delete the file to get it back).")  # fmt: skip

        run = _train(out, client, root)
        result.pipeline_run_id = run.run_id
        result.steps = {name: s.status for name, s in run.steps.items()}
        train_ref, holdout_ref = _output(client, run, "train").ref, _output(client, run, "holdout")
        rows = {ref: mloop.get_dataset(ref, client=client).info.rows for ref in (train_ref, holdout_ref)}
        out.print(f"Data: {train_ref} ({rows[train_ref]} rows) and private {holdout_ref} ({rows[holdout_ref]} rows)")
        choice = _output(client, run, "choice")
        registered = _output(client, run, "register")
        producers = {c: _producer(client, run.steps[f"train_{c}"].run_id) for c in ("linear", "forest")}
        result.run_ids = [r.id for r in producers.values()]
        best = producers[choice["winner"]]
        result.best_run_id, result.best_accuracy = best.id, choice["scores"][choice["winner"]]["val_accuracy"]
        production = client.store.get_model_version(MODEL, alias="production")
        result.production = production.ref
        result.production_metrics = dict(registered["metrics"]) if registered["version"] == production.ref else {}
        if run.steps["register"].status == "cached":
            out.print(f"Nothing new to register: {registered['version']} ({choice['winner']}) was registered by the "
                      "pipeline run this one reused.")  # fmt: skip
        else:
            verb = "promoted to production" if registered["promoted"] else "not promoted: it does not beat production"
            out.print(f"Registered {registered['version']} ({choice['winner']} won on validation "
                      f"{choice['metric']}): {verb}")  # fmt: skip

        challenger = mloop.register_model(_output(client, run, "runner_up"), MODEL, client=client)
        mloop.evaluate(challenger.ref, holdout_ref, client=client)
        try:
            mloop.promote(MODEL, challenger.version, to="production", client=client)
            out.print(f"{challenger.ref} ({choice['runner_up']}) beat production: promoted")
            result.production = challenger.ref
        except GateFailed as refusal:
            result.refused = challenger.ref
            out.print(f"[yellow]Gate refused {challenger.ref}[/] (the runner-up, {choice['runner_up']}):")
            out.print(str(refusal).split("\n", 1)[1].rsplit("\n", 1)[0], markup=False)
        try:
            from mloop.tracking.compare import write_chart

            result.chart = write_chart(client, result.run_ids, root / "val_accuracy.html", metrics=["val_accuracy"])
        except ImportError:  # pragma: no cover - ships with the CLI
            result.chart = None
        result.seconds = time.perf_counter() - started
        report(out, client, result, producers, choice, hint=path_hint())
    finally:
        client.close()
    return result
