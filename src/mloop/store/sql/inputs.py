"""Checks of the values callers give the SQL store: one place, so SQLite and PostgreSQL refuse the same inputs.

Each public store method is wrapped by :func:`checked`, naming the arguments that come from users. Before any SQL
runs it refuses, with :class:`~mloop.errors.InvalidInput` naming the argument, the value (truncated) and the fix:

* text holding a NUL byte (PostgreSQL cannot store one; SQLite would, so it is refused there too) or lone
  surrogates (bytes that were not UTF-8, decoded with ``errors="surrogateescape"``), in ``str`` arguments, in
  the keys and ``str`` values of mappings and in sequences of ``str``;
* integers outside the signed 64-bit range, and versions outside ``1 .. MAX_VERSION``;
* text longer than its column (PostgreSQL enforces widths, SQLite does not): actors (250 characters),
  aliases (100), targets (250), data refs and event subjects (500), digests (80), file paths (1,000).

Values written as JSON (payloads, metadata, signatures) are escaped by the encoder and need no check. Metric
batches are the hot path: their keys are checked once per distinct key where they are written, and their steps
and timestamps are not checked in advance at all. Whatever a database still refuses (an ``OverflowError`` from
SQLite's driver, a ``DataError`` from PostgreSQL, text the driver cannot encode) is turned into
:class:`~mloop.errors.InvalidInput` here, naming the culprit found in the arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sqlite3
import sys
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from mloop.entities import decode_cursor
from mloop.errors import InvalidInput, shown
from mloop.refs import MAX_VERSION

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "VERSION_COLUMN_MAX",
    "check_int",
    "check_key",
    "check_length",
    "check_path",
    "check_text",
    "checked",
    "cursor_field",
    "validate_name",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT64 = (INT64_MIN, INT64_MAX)
VERSION_COLUMN_MAX = 2**31 - 1  # version columns are INTEGER (32-bit on PostgreSQL): larger versions cannot exist
MAX_PAGE = 2**31 - 1  # page sizes (limit, max_results)
# text arguments whose column is narrower than a name's (PostgreSQL enforces the width, SQLite would not)
_LENGTHS = {
    "actor": 250, "alias": 100, "target": 250, "data_ref": 500, "subject": 500, "type": 100, "digest": 80,
    "manifest_digest": 80, "report_digest": 80, "environment_digest": 80,
}  # fmt: skip
MAX_PATH = 1000  # artifact, dataset file and model file paths
MAX_NAME = MAX_KEY = 250  # run and experiment names; param, tag and metric keys
_RANGES = {  # integer arguments with a narrower range than a BIGINT column's
    "version": (1, MAX_VERSION),
    "limit": (1, MAX_PAGE),
    "max_results": (1, MAX_PAGE),
    "older_than_ms": (0, INT64_MAX),
}

P = ParamSpec("P")
R = TypeVar("R")


def check_text(what: str, value: str) -> None:
    """Refuse a NUL byte or text that cannot be encoded as UTF-8."""
    if "\x00" in value:
        raise InvalidInput(
            f"Invalid {_label(what)} {shown(value)}: it holds a NUL byte (\\x00) at position {value.index(chr(0))}, "
            "which no store can hold. Remove it."
        )
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise InvalidInput(
                f"Invalid {_label(what)} {shown(value)}: it is not valid UTF-8 text (position {exc.start}; bytes "
                "decoded with errors='surrogateescape'?). Decode the bytes with their real encoding first."
            ) from None


def validate_name(kind: str, name: str) -> str:
    """A run or experiment name: 1 to 250 characters, not only blanks; returned stripped."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InvalidInput(f"Invalid {kind} name {name!r}: use 1 to {MAX_NAME} characters.")
    return name.strip()


def check_key(kind: str, key: str) -> None:
    """A param, tag or metric key: 1 to 250 characters of text."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise InvalidInput(f"Invalid {kind} key {shown(key)}: use 1 to {MAX_KEY} characters.")
    check_text(f"{kind} key", key)


def check_path(what: str, path: str) -> None:
    """A file path inside a run, dataset version or model version."""
    if not _text_ok(path):
        check_text(what, path)
    check_length(what, path, MAX_PATH)


def check_length(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(
            f"Invalid {_label(what)} {shown(value)}: it has {len(value)} characters; use at most {limit}."
        )


def check_int(what: str, value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> None:
    if not low <= value <= high:
        thing = "a version number" if what == "version" else "a whole number"
        raise InvalidInput(
            f"Invalid {_label(what)} {shown(value)}: out of range. Use {thing} between {low} and {high}."
        )


def _label(what: str) -> str:
    return what.replace("_", " ")


def _text_ok(value: str) -> bool:
    return value.isascii() and "\x00" not in value  # the common case, without encoding anything


def _check(what: str, value: Any) -> None:
    if isinstance(value, str):
        if not _text_ok(value):
            check_text(what, value)
        if what in _LENGTHS:
            check_length(what, value, _LENGTHS[what])
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        low, high = _RANGES.get(what, _INT64)
        if not low <= value <= high:
            check_int(what, value, low, high)
    elif isinstance(value, dict | Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not _text_ok(key):
                check_text(f"{what.removesuffix('s')} key", key)
            if isinstance(item, str) and not _text_ok(item):
                check_text(f"{what.removesuffix('s')} value", item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if isinstance(item, str | int):
                _check(what.removesuffix("s"), item)


def cursor_field(cursor: str, key: str, kind: type[int] | type[str]) -> Any:
    """``decode_cursor(cursor)[key]``, refusing a cursor that was not made by this store for this listing."""
    token = decode_cursor(cursor)
    value = token.get(key) if isinstance(token, dict) else None
    if isinstance(value, str):
        good = "\x00" not in value and value.isascii()
    else:
        good = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX
    if not good or not isinstance(value, kind):
        raise InvalidInput(
            f"Invalid page cursor {shown(cursor)}. Pass back the next_cursor of a previous page, unchanged."
        )
    return value


def checked(*names: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Check the arguments ``names`` of a store method before it runs; map what the database refuses to InvalidInput."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        positions = list(inspect.signature(fn).parameters)
        where = {name: positions.index(name) for name in names}  # a misspelt name fails at import

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            for name, index in where.items():
                value = kwargs[name] if name in kwargs else args[index] if index < len(args) else None
                if value is not None:
                    _check(name, value)
            try:
                return fn(*args, **kwargs)
            except (OverflowError, UnicodeEncodeError, sqlite3.DataError) as exc:  # DataError: SQLITE_TOOBIG
                raise _refused(fn.__name__, dict(zip(positions[1:], args[1:], strict=False)) | kwargs, exc) from exc
            except Exception as exc:
                if not _data_error(exc):
                    raise
                raise _refused(fn.__name__, dict(zip(positions[1:], args[1:], strict=False)) | kwargs, exc) from exc

        return call

    return wrap


def _data_error(exc: Exception) -> bool:
    """SQLAlchemy's ``DataError``, without importing SQLAlchemy here (an exception of it means it is loaded):
    :mod:`mloop.store.direct` uses these checks on the ``sqlite3`` connection alone."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DataError)


def _refused(method: str, arguments: Mapping[str, Any], exc: BaseException) -> InvalidInput:
    """The value a database refused, found in the arguments; else the database's own reason."""
    for name, value in arguments.items():
        try:
            _deep_check(name, value, 0)
        except InvalidInput as found:
            return found
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return InvalidInput(
        f"The metadata store refused a value given to {method}: {shown(reason, 200)}. "
        "Check the names, numbers and text passed."
    )


def _deep_check(what: str, value: Any, depth: int) -> None:
    if depth > 3:
        return
    if isinstance(value, (str, int)):
        _check(what, value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _deep_check(f"{what} key", key, depth + 1)
            _deep_check(f"{what}[{key!r}]", item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _deep_check(f"{what}[{i}]", item, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _deep_check(f"{what}.{f.name}", getattr(value, f.name), depth + 1)
