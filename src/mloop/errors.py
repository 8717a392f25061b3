"""The exception tree of mloop.

Every error mloop raises on purpose derives from :class:`MloopError`. Messages name the bad value and the
fix. Servers map these classes to HTTP status codes and the CLI maps them to exit codes; nothing else does::

    MloopError                     exit 1
    ├── InvalidInput (ValueError)  exit 2   a value the user gave is malformed or out of range
    │   └── FilterSyntaxError             a search filter that does not parse (names the position)
    ├── NotFound (LookupError)     exit 3   a referenced thing does not exist
    ├── AlreadyExists              exit 4   creating something whose name is taken
    ├── Conflict                   exit 5   the operation contradicts current state (e.g. changing a param)
    ├── IntegrityError             exit 6   stored bytes do not match their digest
    ├── GateFailed                 exit 7   a promotion gate refused (later issues)
    ├── AccessDenied (PermissionError) exit 8  e.g. reading a private holdout from training code
    ├── StoreUnavailable           exit 9   the metadata database or artifact backend cannot be reached
    ├── WorkspaceError             exit 10  no workspace / bad workspace configuration
    └── EnvironmentMismatch        exit 11  a model's recorded package versions differ (strict mode)
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

    exit_code = 1
    http_status = 500


class InvalidInput(MloopError, ValueError):
    """A value given by the user is malformed or out of range."""

    exit_code = 2
    http_status = 400


class FilterSyntaxError(InvalidInput):
    """A search filter string could not be parsed."""


class NotFound(MloopError, LookupError):
    """A referenced object does not exist."""

    exit_code = 3
    http_status = 404


class AlreadyExists(MloopError):
    """An object with that name or identity already exists."""

    exit_code = 4
    http_status = 409


class Conflict(MloopError):
    """The operation contradicts the current state."""

    exit_code = 5
    http_status = 409


class IntegrityError(MloopError):
    """Stored bytes do not match the digest they were recorded with."""

    exit_code = 6
    http_status = 500


class GateFailed(MloopError):
    """A promotion gate refused to move an alias. ``report`` holds the checks (a ``GateReport``)."""

    exit_code = 7
    http_status = 422

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class AccessDenied(MloopError, PermissionError):
    """The caller may not read or change this object (e.g. a private holdout)."""

    exit_code = 8
    http_status = 403


class StoreUnavailable(MloopError):
    """The metadata database or the artifact backend cannot be reached."""

    exit_code = 9
    http_status = 503


class WorkspaceError(MloopError):
    """No workspace could be found or its configuration is invalid."""

    exit_code = 10
    http_status = 500


class EnvironmentMismatch(MloopError):
    """A model was built with other package versions than the running ones (raised in strict mode)."""

    exit_code = 11
    http_status = 409
