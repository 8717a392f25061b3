"""The private-holdout guard for dataset reads.

A holdout version is readable only inside a *grant* (:mod:`mloop.guard`), which two paths enter:

- evaluation (:func:`evaluation_access`, used by the registry's ``evaluate``): allowed inside runs and
  pipeline steps, since it returns metrics, not rows; each read is a ``dataset.holdout_read`` event;
- the override :func:`holdout_access` for people who must look at a holdout: refused inside an active run,
  refused unless the actor holds the ``holdout-reader`` role (``[roles]`` in the workspace file), audited as a
  ``dataset.holdout_override`` event, and no run can start inside it; every run started later in the same
  context is marked with the holdouts it read (lineage ``override-read``), so the gate refuses its models.

Everything else gets :class:`~mloop.errors.AccessDenied` naming the holdout: training code inside a run, a
pipeline step, or anywhere else. A refused read inside a run still records the attempt as lineage
(``read-denied``), so the model version registered from that run lists it and the promotion gate refuses it.
Whether a version is private is read from the metadata store, never from the caller's objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mloop.context import active_run_ref, current_context
from mloop.entities import DatasetVersion
from mloop.errors import AccessDenied, InvalidInput, NotFound
from mloop.guard import EVALUATION, OVERRIDE, READ_DENIED, Grant, HoldoutEvents, current_grant, granted

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["HOLDOUT_ROLE", "READ_DENIED", "check_read", "evaluation_access", "holdout_access", "is_private"]

HOLDOUT_ROLE = "holdout-reader"


@contextmanager
def holdout_access(purpose: str, *, client: Context | None = None) -> Iterator[Grant]:
    """Let a person with the ``holdout-reader`` role read private holdouts in this block (audited).

    Refused inside an active run or pipeline step (training code never reads a holdout); no run can be
    started inside the block. Models are scored on holdouts by ``mloop.evaluate``, which needs no override.
    """
    if not purpose or not purpose.strip():
        raise InvalidInput("holdout_access needs a purpose, e.g. 'audit of the October labels'.")
    c = client or current_context()
    run_ref = active_run_ref()
    payload = {"purpose": purpose, "run": run_ref}
    if run_ref is not None:
        c.store.append_event(HoldoutEvents.DENIED, run_ref, actor=c.actor, payload=payload)
        raise AccessDenied(
            f"holdout_access({purpose!r}) is refused inside {run_ref}: training code never reads a private "
            "holdout. Score models on it with `mloop.evaluate(MODEL, HOLDOUT)` (allowed in runs), or open the "
            "holdout outside any run."
        )
    if HOLDOUT_ROLE not in c.workspace.settings.roles.get(c.actor, ()):
        c.store.append_event(HoldoutEvents.DENIED, f"actor:{c.actor}", actor=c.actor, payload=payload)
        raise AccessDenied(
            f"{c.actor!r} may not open private holdouts: holdout_access needs the {HOLDOUT_ROLE!r} role. A workspace "
            f'owner grants it under [roles] in .mloop/config.toml: {c.actor} = ["{HOLDOUT_ROLE}"]. To score a '
            "model, use `mloop evaluate MODEL --data HOLDOUT` instead."
        )
    c.store.append_event(HoldoutEvents.OVERRIDE, f"actor:{c.actor}", actor=c.actor, payload=payload)
    with granted(purpose, OVERRIDE, c.actor) as grant:
        yield grant


@contextmanager
def evaluation_access(client: Context, model_ref: str) -> Iterator[Grant]:
    """The evaluation path's grant (the registry's ``evaluate`` only): reads are audited, not lineage."""
    with granted(f"evaluation of {model_ref}", EVALUATION, client.actor) as grant:
        yield grant


def is_private(client: Context, version: DatasetVersion) -> bool:
    """Whether the store says ``version`` is private (a caller's edited ``info`` object changes nothing)."""
    try:
        return client.store.get_dataset_version(version.name, version.version).private
    except NotFound:
        return version.private


def check_read(client: Context, version: DatasetVersion, *, run_ref: str | None) -> Grant | None:
    """Raise AccessDenied for a private version read outside a grant; audit every read of a private one.

    Returns the grant a private read happens under (``None`` for public versions).
    """
    if not version.private and not is_private(client, version):
        return None
    grant = current_grant()
    payload = {"run": run_ref, "purpose": None if grant is None else grant.purpose,
               "via": None if grant is None else grant.kind}  # fmt: skip
    if grant is None:
        if run_ref is not None:
            client.store.add_lineage(version.ref, run_ref, READ_DENIED, actor=client.actor)
        client.store.append_event(HoldoutEvents.DENIED, version.ref, actor=client.actor, payload=payload)
        where = f" (inside {run_ref})" if run_ref else ""
        raise AccessDenied(
            f"{version.ref} is a private holdout and cannot be read by training code{where}. Models are "
            f"scored on it only through evaluation (`mloop evaluate MODEL --data {version.ref}`); train on the "
            "matching train split instead."
        )
    client.store.append_event(HoldoutEvents.READ, version.ref, actor=client.actor, payload=payload)
    if grant.kind == OVERRIDE:
        grant.read.add(version.ref)
    return grant
