"""Inside a running step: its own run, its workspace and its names (``mloop.pipelines.get_step_context()``).

As with Azure ML's ``Run.get_context()`` and ZenML's ``get_step_context()``, code inside a step needs no setup.
The worker opens the workspace the pipeline runs in and makes the step's child run the active run, so the same
calls as in a training run act on it: the fluent API (``mloop.log_metric``, ``mloop.active_run()`` ...), dataset
reads (lineage ``input``; a private holdout refused and recorded as ``read-denied``), ``mloop.holdout_access``
(refused, as in every run) and ``mloop.register_model`` (the version's run is the step's run). A run started
inside the step (``with mloop.start_run():``) nests under it.

The worker never ends the step's run: the parent ends it after recording the outputs. The worker writes what
the step logged before it returns (also when the step fails). There is no new state: the step run is found on
the active-run stack of :mod:`mloop.context`, which the worker fills inside a fresh ``contextvars`` context,
so nothing of one step leaks into the next step the same worker process runs.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mloop.context import current_state, set_current
from mloop.entities import RunStatus
from mloop.errors import InvalidInput, NotFound
from mloop.tracking.client import Client
from mloop.tracking.run import Run
from mloop.workspace import Workspace

if TYPE_CHECKING:
    from mloop.config import Settings
    from mloop.entities import RunRecord

__all__ = ["StepContext", "StepRun", "get_step_context", "step_context"]


class StepRun(Run):
    """A step's child run as the step sees it: logged to freely, never ended inside the step.

    It installs no SIGTERM handler (the pipeline's process cancels its workers) and is not ended at exit.
    """

    def __init__(self, client: Client, record: RunRecord, *, step: str, pipeline: str) -> None:
        super().__init__(client, record)
        self.step = step
        self.pipeline = pipeline

    def _install_sigterm(self) -> None:
        return None

    def _at_exit(self) -> None:
        self.flush()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Refused: the pipeline ends a step's run itself, after recording the step's outputs."""
        raise InvalidInput(
            f"The run of step {self.step!r} ({self.ref}) is ended by pipeline {self.pipeline!r} when the step "
            f"returns; do not end it inside the step (asked for {RunStatus(status).value}). Raise an exception to "
            "fail the step, or start a nested run of your own with `with mloop.start_run(): ...`."
        )

    def detach(self) -> None:
        """Write what the step logged and stop background flushing (the worker calls this when the step ends)."""
        atexit.unregister(self._at_exit)
        self._buffer.close()
        self.flush()


@dataclass(frozen=True)
class StepContext:
    """What a running step knows about itself: ``get_step_context()`` returns it."""

    step: str
    pipeline: str
    pipeline_run_id: str | None
    run: Run
    client: Client

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def pipeline_run_ref(self) -> str | None:
        return None if self.pipeline_run_id is None else f"run:{self.pipeline_run_id}"


def get_step_context() -> StepContext:
    """The running step's name, pipeline, pipeline run id, its own run and its workspace client.

    Raises :class:`~mloop.errors.NotFound` outside a step (e.g. when the step function is called directly).
    """
    state = current_state()
    for run in reversed(state.runs if state is not None else ()):
        if isinstance(run, StepRun):
            return StepContext(run.step, run.pipeline, run.parent_id, run, run.client)
    raise NotFound(
        "get_step_context() found no running step: it works only inside a step function while a pipeline runs it "
        "(`pipeline.run()` or `mloop pipelines run FILE:NAME`). Outside a pipeline, use `mloop.active_run()` "
        "or start a run with `with mloop.start_run(): ...`."
    )


@contextmanager
def step_context(settings: Settings, run_id: str, *, step: str, pipeline: str) -> Iterator[StepRun]:
    """Open the workspace and make run ``run_id`` the active run of this context until the block ends.

    Call it inside a fresh ``contextvars`` context (the worker does). On the way out, what the step logged is
    written (an error writing it fails the step) and the workspace is closed; the run stays RUNNING.
    """
    client = Client(workspace=Workspace(settings))
    try:
        run = StepRun(client, client.store.get_run(run_id), step=step, pipeline=pipeline)
        set_current(client, (run,))
        try:
            yield run
        except BaseException:
            with suppress(Exception):  # the step's own error is the one to report
                _end_nested(run, RunStatus.FAILED)
                run.detach()
            raise
        _end_nested(run, RunStatus.FINISHED)
        run.detach()
    finally:
        client.close()


def _end_nested(step_run: StepRun, status: RunStatus) -> None:
    """Runs the step started and left open end with the step (innermost first)."""
    state = current_state()
    for run in reversed(state.runs if state is not None else ()):
        if isinstance(run, Run) and run is not step_run:
            run.end(status)
