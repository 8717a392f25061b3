"""The fluent API: ``mloop.start_run()``, ``mloop.active_run()``, ``mloop.search_runs()``…

The only state is the one ``contextvars`` variable of :mod:`mloop.context`, holding the client in use and the
stack of active runs, so threads and asyncio tasks each see their own active run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mloop.context import current_state, set_current
from mloop.entities import ArtifactEntry, RunRecord, RunStatus
from mloop.errors import MloopError
from mloop.tracking.client import Client
from mloop.tracking.run import Run
from mloop.tracking.search import RunTable

__all__ = [
    "active_run",
    "end_run",
    "get_client",
    "get_run",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_tags",
    "start_run",
    "use_client",
]


def get_client() -> Client:
    """The client of this context; created from the resolved settings on first use."""
    state = current_state()
    if state is None or not isinstance(state.context, Client):
        client = Client(workspace=None if state is None else state.context.workspace)
        set_current(client, () if state is None else state.runs)
        return client
    return state.context


def use_client(client: Client | None = None, *, uri: str | None = None, artifact_uri: str | None = None) -> Client:
    """Make the fluent API (and every SDK function called without ``client=``) use ``client`` in this context."""
    state = current_state()
    if state is not None and state.runs:
        raise MloopError("Cannot switch workspaces while a run is active; end it first.")
    chosen = client or Client(uri, artifact_uri)
    set_current(chosen)
    return chosen


def _runs() -> tuple[Run, ...]:
    state = current_state()
    return () if state is None else tuple(r for r in state.runs if isinstance(r, Run))


def _pop(run: Run) -> None:
    state = current_state()
    if state is not None and run in state.runs:
        set_current(state.context, tuple(r for r in state.runs if r is not run))


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, object] | None = None,
    parent: str | Run | RunRecord | None = None,
    uri: str | None = None,
) -> Run:
    """Start a run and make it the active one; use it as a context manager.

    With a run already active, the new run is nested under it unless ``parent`` says otherwise.
    """
    if uri is not None:
        use_client(uri=uri)
    client = get_client()
    runs = _runs()
    if parent is None and runs:
        parent = runs[-1]
    run = client.start_run(experiment, name, params=params, tags=tags, parent=parent, on_end=_pop)
    set_current(client, (*runs, run))
    return run


def active_run() -> Run | None:
    """The innermost active run of this context, or ``None``."""
    runs = _runs()
    return runs[-1] if runs else None


def _require_run() -> Run:
    run = active_run()
    if run is None:
        raise MloopError("No active run. Start one with `with mloop.start_run(): ...`.")
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (when not using ``with``)."""
    run = active_run()
    if run is not None:
        run.end(status)


def log_metric(key: str, value: float, step: int = 0) -> None:
    _require_run().log_metric(key, value, step=step)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    _require_run().log_metrics(metrics, step=step)


def log_param(key: str, value: object) -> None:
    _require_run().log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    _require_run().log_params(params)


def set_tags(tags: Mapping[str, object]) -> None:
    _require_run().set_tags(tags)


def log_artifact(path: str, name: str | None = None) -> ArtifactEntry:
    return _require_run().log_artifact(path, name)


def get_run(run_id: str) -> RunRecord:
    """A stored run by id or ``run:<id>`` reference."""
    return get_client().get_run(run_id)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str = "",
    order_by: Sequence[str] | str | None = None,
    max_results: int | None = 1000,
    *,
    include_deleted: bool = False,
) -> RunTable:
    """Search runs; see :meth:`mloop.Client.search_runs`. ``.to_pandas()`` gives a DataFrame."""
    return get_client().search_runs(
        experiment, filter=filter, order_by=order_by, max_results=max_results, include_deleted=include_deleted
    )
