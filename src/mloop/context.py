"""The context every domain package takes: the metadata store, the artifact store, the actor and the settings.

``Context`` is the small object that datasets, the registry and (later) serving, pipelines and monitoring work
on; tracking's :class:`~mloop.tracking.client.Client` extends it with runs and experiments, so a ``Client`` is
accepted wherever a ``Context`` is. Nothing here imports tracking: a scoring process needs only this, the
registry and the artifact store.

The one piece of per-thread state lives here too: :data:`_STATE`, a ``contextvars`` variable holding the
context in use and the stack of active runs (tracking pushes and pops them). Datasets ask
:func:`active_run_ref` to record lineage into the active run without importing tracking.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mloop.errors import InvalidInput, NotFound
from mloop.refs import parse_ref
from mloop.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from mloop.artifacts import ArtifactStore
    from mloop.config import Settings
    from mloop.store import Store

__all__ = ["Context", "RunHandle", "State", "active_run_ref", "current_context", "current_state", "set_current"]


class RunHandle(Protocol):
    """What the context knows of an active run: its reference (tracking's ``Run`` is one)."""

    @property
    def ref(self) -> str: ...


class Context:
    """One workspace as the domain packages see it. ``Context()`` resolves the workspace like the CLI does."""

    def __init__(
        self, uri: str | None = None, artifact_uri: str | None = None, *, workspace: Workspace | None = None
    ) -> None:
        self.workspace = workspace or open_workspace(uri, artifact_uri)
        self._packages: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.workspace!r})"

    @property
    def store(self) -> Store:
        return self.workspace.store

    @property
    def artifacts(self) -> ArtifactStore:
        return self.workspace.artifacts

    @property
    def actor(self) -> str:
        return self.workspace.actor

    @property
    def settings(self) -> Settings:
        return self.workspace.settings

    def packages(self) -> dict[str, str]:
        """Installed distributions (name -> version), read once per context (model loads compare locks)."""
        if self._packages is None:
            from mloop.flavors.lock import installed_packages

            self._packages = installed_packages()
        return self._packages

    def resolve_run_id(self, run: str | RunHandle) -> str:
        """A full run id from ``run:<id>``, an id, a handle, or a unique start or end (8+ hex) of an id.

        Ids begin with their creation time, so runs started in the same minute share their first characters;
        tables therefore show the last 8 characters, and both ends are accepted here.
        """
        text = run if isinstance(run, str) else run.ref
        run_id = parse_ref(text, default_kind="run").name
        if len(run_id) == 32:
            return run_id
        matches = self.store.search_runs(
            filter=f"run_id like '{run_id}%' or run_id like '%{run_id}'", include_deleted=True, max_results=10
        ).items
        if not matches:
            raise NotFound(
                f"No run id starts or ends with {run_id!r}. List runs with `mloop runs list` "
                "(add --all to include deleted runs)."
            )
        if len(matches) > 1:
            shown = ", ".join(m.id for m in matches[:5])
            raise InvalidInput(
                f"{run_id!r} matches {len(matches)} runs ({shown}); give more characters or the full id."
            )
        return matches[0].id

    def close(self) -> None:
        self.workspace.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class State:
    """The context in use in this thread or task, and its active runs (innermost last)."""

    context: Context
    runs: tuple[RunHandle, ...] = ()


_STATE: ContextVar[State | None] = ContextVar("mloop_state", default=None)


def current_context() -> Context:
    """The context in use here; a default one from the resolved settings on first use."""
    state = _STATE.get()
    if state is None:
        state = State(Context())
        _STATE.set(state)
    return state.context


def current_state() -> State | None:
    return _STATE.get()


def set_current(context: Context, runs: tuple[RunHandle, ...] = ()) -> None:
    """Make ``context`` (with ``runs`` active) the one in use in this thread or task (tracking calls this)."""
    _STATE.set(State(context, runs))


def active_run_ref() -> str | None:
    """``run:<id>`` of the innermost active run here, or ``None``."""
    state = _STATE.get()
    return state.runs[-1].ref if state is not None and state.runs else None
