"""Who may read private holdout bytes right now, and the artifact store's read check.

A *grant* is entered by exactly two paths: evaluation (``kind="evaluation"``, the registry scoring a model on
a holdout) and the audited, role-checked override :func:`mloop.holdout_access` (``kind="override"``). Both
live in :mod:`mloop.datasets.access`; this module only holds the current grant (one ``contextvars`` variable)
and :class:`BlobReadGuard`, which the workspace installs on its artifact store so that a blob belonging only to
private dataset versions is refused to every reader outside a grant, whatever object or digest the caller
holds. The check is on digest membership in the metadata store, not on what the caller says about the data.

Private bytes read inside a grant are written only to private temporary folders that the grant removes
when it ends (:meth:`Grant.temporary_folder`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mloop.errors import AccessDenied

if TYPE_CHECKING:
    from mloop.store import DatasetStore, EventStore

    class GuardStore(DatasetStore, EventStore, Protocol):
        """What the guard uses of a store: which blobs are private-only, and the event log."""


__all__ = [
    "EVALUATION",
    "OVERRIDE",
    "OVERRIDE_READ",
    "READ_DENIED",
    "BlobReadGuard",
    "Grant",
    "HoldoutEvents",
    "current_grant",
    "granted",
    "remove_tree",
    "tainted_by",
]


class HoldoutEvents:
    """Audit events of private-holdout reads (reads change no state: each is an event of its own)."""

    READ = "dataset.holdout_read"
    DENIED = "dataset.holdout_denied"
    OVERRIDE = "dataset.holdout_override"


EVALUATION = "evaluation"
OVERRIDE = "override"
READ_DENIED = "read-denied"  # the lineage relation recording a refused holdout read inside a run
OVERRIDE_READ = "override-read"  # the lineage relation marking a run started after an override read a holdout

_GRANT: ContextVar[Grant | None] = ContextVar("mloop_holdout_grant", default=None)
# Holdouts read through an override in this context: every run started afterwards in it is marked with them.
_TAINT: ContextVar[frozenset[str]] = ContextVar("mloop_holdout_taint", default=frozenset())


@dataclass
class Grant:
    """A permission to read private holdouts, for ``purpose``, until the block that entered it ends."""

    purpose: str
    kind: str
    actor: str
    read: set[str] = field(default_factory=set)  # refs of the private versions read under this grant
    _folders: list[Path] = field(default_factory=list, repr=False)

    def temporary_folder(self, parent: Path) -> Path:
        """A new folder only the current user can enter, removed when the grant ends."""
        import tempfile  # here, not at module level: the tracking SDK's import stays without shutil, bz2, lzma

        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="holdout-", dir=parent))  # mode 0700
        self._folders.append(folder)
        return folder

    def release(self) -> None:
        while self._folders:
            remove_tree(self._folders.pop())


def remove_tree(folder: Path) -> None:
    """Remove a materialised folder (its files are read-only; its folders are not, so removal works)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def tainted_by() -> frozenset[str]:
    """Holdouts an override read earlier in this context (runs started now are marked with them)."""
    return _TAINT.get()


def current_grant() -> Grant | None:
    """The grant active in this context, if any."""
    return _GRANT.get()


@contextmanager
def granted(purpose: str, kind: str, actor: str) -> Iterator[Grant]:
    """Enter a grant (callers: :mod:`mloop.datasets.access` only). Its temporary folders go when it ends."""
    grant = Grant(purpose, kind, actor)
    token = _GRANT.set(grant)
    try:
        yield grant
    finally:
        _GRANT.reset(token)
        grant.release()
        if kind == OVERRIDE and grant.read:  # not reset: what was read stays in this context's memory
            _TAINT.set(_TAINT.get() | grant.read)


class BlobReadGuard:
    """Refuses blobs that belong only to private dataset versions, outside a grant; audits each refusal.

    Digests the store has confirmed public are remembered for ``ttl_s`` seconds, so reading the many files of
    a version costs one query per chunk of digests (:meth:`check_many`, called before a batch of reads) rather
    than one per file. A digest whose last public holder is deleted stays readable for at most ``ttl_s``.
    """

    def __init__(self, store: GuardStore, actor: str, *, ttl_s: float = 30.0, max_cached: int = 200_000) -> None:
        self.store = store
        self.actor = actor
        self.ttl_s = ttl_s
        self.max_cached = max_cached
        self._public: dict[str, float] = {}

    def __call__(self, digest: str, name: str | None) -> None:
        if _GRANT.get() is None and self._public.get(digest, 0.0) < time.monotonic():
            self.check_many([digest], name=name)

    def check_many(self, digests: Sequence[str], *, name: str | None = None) -> None:
        """Raise AccessDenied if any of ``digests`` is private-only (outside a grant); remember the rest."""
        if _GRANT.get() is not None:
            return
        now = time.monotonic()
        todo = [d for d in digests if self._public.get(d, 0.0) < now]
        if not todo:
            return
        private = self.store.private_blobs(todo)
        if len(self._public) + len(todo) > self.max_cached:
            self._public.clear()
        expiry = now + self.ttl_s
        for digest in todo:
            if digest not in private:
                self._public[digest] = expiry
        if not private:
            return
        digest, owners = next(iter(private.items()))
        self.store.append_event(HoldoutEvents.DENIED, owners[0], actor=self.actor,
                                payload={"blob": digest, "name": name, "run": None, "purpose": None})  # fmt: skip
        raise AccessDenied(
            f"Blob {digest} belongs to the private holdout {owners[0]} and cannot be read directly. Holdouts are "
            f"read only by evaluation (`mloop evaluate MODEL --data {owners[0]}`); train on the matching train "
            "split instead."
        )
