"""The exception tree of mloop.

Every error mloop raises on purpose derives from :class:`MloopError`. Messages name the bad value and the
fix. The edges map these classes: the CLI to exit codes (:mod:`mloop.cli.exit_codes`), servers to HTTP
statuses; nothing in the library does::

    MloopError
    ├── InvalidInput (ValueError)       a value the user gave is malformed or out of range
    │   └── FilterSyntaxError           a search filter that does not parse (names the position)
    ├── NotFound (LookupError)          a referenced thing does not exist
    ├── AlreadyExists                   creating something whose name is taken
    ├── Conflict                        the operation contradicts current state (e.g. changing a param)
    ├── IntegrityError                  stored bytes do not match their digest
    ├── GateFailed                      a promotion gate refused to move an alias (``report`` says why)
    ├── AccessDenied (PermissionError)  e.g. reading a private holdout from training code
    ├── StoreUnavailable                the metadata database or artifact backend cannot be reached
    ├── WorkspaceError                  no workspace / bad workspace configuration
    └── EnvironmentMismatch             a model's recorded package versions differ (strict mode)
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "Conflict",
    "EnvironmentMismatch",
    "FilterSyntaxError",
    "GateFailed",
    "IntegrityError",
    "InvalidInput",
    "MloopError",
    "NotFound",
    "StoreUnavailable",
    "WorkspaceError",
    "shown",
]

SHOWN_LENGTH = 80  # messages show at most this many characters of a bad value


def shown(value: object, limit: int = SHOWN_LENGTH) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters (a 5,000-digit number stays readable)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(value) if isinstance(value, str) else len(text)} characters)"


class MloopError(Exception):
    """Base class of every error mloop raises on purpose."""


class InvalidInput(MloopError, ValueError):
    """A value given by the user is malformed or out of range."""


class FilterSyntaxError(InvalidInput):
    """A search filter string could not be parsed."""


class NotFound(MloopError, LookupError):
    """A referenced object does not exist."""


class AlreadyExists(MloopError):
    """An object with that name or identity already exists."""


class Conflict(MloopError):
    """The operation contradicts the current state."""


class IntegrityError(MloopError):
    """Stored bytes do not match the digest they were recorded with."""


class GateFailed(MloopError):
    """A promotion gate refused to move an alias. ``report`` holds the checks (a ``GateReport``)."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class AccessDenied(MloopError, PermissionError):
    """The caller may not read or change this object (e.g. a private holdout)."""


class StoreUnavailable(MloopError):
    """The metadata database or the artifact backend cannot be reached."""


class WorkspaceError(MloopError):
    """No workspace could be found or its configuration is invalid."""


class EnvironmentMismatch(MloopError):
    """A model was built with other package versions than the running ones (raised in strict mode)."""


class Overloaded(MloopError):
    """A server is at capacity and sheds this request; retry after ``retry_after`` seconds (HTTP 503)."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
