"""Compute targets: where a pipeline's steps run.

``local`` (:class:`~mloop.pipelines.executors.local.LocalExecutor`, a process pool on this machine) and ``dask``
(:class:`~mloop.pipelines.executors.dask.DaskExecutor`, a Dask ``distributed`` cluster: an existing scheduler or a
local adaptive cluster it starts). Both satisfy :class:`Executor`, the one interface the runner uses. Importing
this package never imports Dask.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol, runtime_checkable

from mloop.pipelines.worker import Outcome, Task

__all__ = ["Executor"]


@runtime_checkable
class Executor(Protocol):
    """Runs attempts of steps. ``submit`` returns a future that always resolves to an :class:`Outcome`.

    A failed step, a dead worker or a process killed mid-step resolve to ``Outcome(ok=False, error=...)``; only
    a broken local pool raises ``BrokenProcessPool`` (the runner then calls :meth:`reset`).
    """

    name: str

    def get_params(self) -> dict[str, object]: ...

    def submit(self, task: Task) -> Future[Outcome]: ...

    def reset(self) -> None:
        """Forget a broken pool; the next submission starts a new one."""
        ...

    def shutdown(self, *, cancel: bool = False) -> None:
        """Release workers (the runner calls this after every run); ``cancel`` stops running attempts now."""
        ...
