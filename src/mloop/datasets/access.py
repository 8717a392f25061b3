"""The private-holdout guard.

A holdout version is readable only inside :func:`holdout_access`, which evaluation (the registry) enters with
its purpose. Training code that reads a holdout — inside a run, a pipeline step, or anywhere else — gets
:class:`~mloop.errors.AccessDenied` naming the holdout. Every granted read and every refused one is an event,
with the active run when there is one. The guard protects against leaks by mistake; the audit log shows the
rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from mloop.entities import DatasetVersion, EventType
from mloop.errors import AccessDenied, InvalidInput

if TYPE_CHECKING:
    from mloop.tracking.client import Client

__all__ = ["check_read", "holdout_access"]

_PURPOSE: ContextVar[str | None] = ContextVar("mloop_holdout_purpose", default=None)


@contextmanager
def holdout_access(purpose: str) -> Iterator[None]:
    """Allow reading private holdouts in this block, for ``purpose`` (recorded with every read)."""
    if not purpose or not purpose.strip():
        raise InvalidInput("holdout_access needs a purpose, e.g. 'evaluation of model:churn/4'.")
    token = _PURPOSE.set(purpose)
    try:
        yield
    finally:
        _PURPOSE.reset(token)


def check_read(client: Client, version: DatasetVersion, *, run_ref: str | None) -> None:
    """Raise AccessDenied for a private version read outside :func:`holdout_access`; audit every read."""
    if not version.private:
        return
    purpose = _PURPOSE.get()
    payload = {"run": run_ref, "purpose": purpose}
    if purpose is None:
        client.store.append_event(EventType.DATASET_HOLDOUT_DENIED, version.ref, actor=client.actor, payload=payload)
        where = f" (inside {run_ref})" if run_ref else ""
        raise AccessDenied(
            f"{version.ref} is a private holdout and cannot be read by training code{where}. Models are "
            f"scored on it only through evaluation (`mloop evaluate MODEL --data {version.ref}`); train on the "
            "matching train split instead."
        )
    client.store.append_event(EventType.DATASET_HOLDOUT_READ, version.ref, actor=client.actor, payload=payload)
