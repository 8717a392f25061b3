"""Exit codes of the CLI, one per error class (the CLI's edge of :mod:`mloop.errors`).

The library raises typed errors and knows nothing of exit codes or HTTP statuses; each edge maps them itself
(this module for the CLI; the REST server will have its own status table). A subclass without its own entry
takes its nearest ancestor's code, so ``FilterSyntaxError`` exits 2 like ``InvalidInput``.
"""

from __future__ import annotations

from mloop.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    EnvironmentMismatch,
    GateFailed,
    IntegrityError,
    InvalidInput,
    MloopError,
    NotFound,
    StoreUnavailable,
    WorkspaceError,
)

__all__ = ["EXIT_CODES", "exit_code"]

EXIT_CODES: dict[type[MloopError], int] = {
    MloopError: 1,
    InvalidInput: 2,
    NotFound: 3,
    AlreadyExists: 4,
    Conflict: 5,
    IntegrityError: 6,
    GateFailed: 7,
    AccessDenied: 8,
    StoreUnavailable: 9,
    WorkspaceError: 10,
    EnvironmentMismatch: 11,
}


def exit_code(exc: MloopError) -> int:
    """The exit code of ``exc``'s class, or of its nearest ancestor in :data:`EXIT_CODES`."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
