"""One reference syntax for every noun, parsed and formatted here only.

=========================  ==========================================
``run:<id>``               a run (``run:<id>/<artifact path>`` names an artifact of it)
``experiment:<name>``      an experiment
``data:<name>/<version>``  a dataset version; ``data:<name>@<alias>`` through an alias
``model:<name>/<version>`` a model version; ``model:<name>@<alias>`` through an alias
``pipeline:<name>/<ver>``  a pipeline version
``deployment:<name>``      a deployment (an endpoint)
``monitor:<name>``         a monitor
``automation:<name>``      an automation (a rule "on event, do action")
=========================  ==========================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mloop.errors import InvalidInput, shown

__all__ = [
    "KINDS",
    "MAX_ALIAS_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_REF_LENGTH",
    "MAX_VERSION",
    "Ref",
    "format_ref",
    "parse_ref",
]

KINDS = ("run", "experiment", "data", "model", "pipeline", "deployment", "monitor", "automation")
_VERSIONED = {"data", "model", "pipeline"}
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME_RE = re.compile(rf"^{_NAME}$")
_VERSIONED_RE = re.compile(rf"^(?P<name>{_NAME})(?:/(?P<version>[0-9]+)|@(?P<alias>{_NAME}))?$")
_RUN_RE = re.compile(r"^(?P<id>[0-9a-fA-F]{8,32})(?:/(?P<path>.+))?$")
MAX_VERSION = 2**63 - 1  # versions are signed 64-bit integers, from 1
MAX_NAME_LENGTH = 250  # dataset, model, experiment, pipeline, deployment and monitor names
MAX_ALIAS_LENGTH = 100
MAX_REF_LENGTH = 1100  # room for run:<id>/<artifact path of up to 1,000 characters>
_SYNTAX = (
    "Use one of run:<id>, experiment:<name>, data:<name>/<version>, data:<name>@<alias>, model:<name>/<version>, "
    "model:<name>@<alias>, pipeline:<name>/<version>, deployment:<name>, monitor:<name>, automation:<name>."
)


@dataclass(frozen=True)
class Ref:
    """A parsed reference. ``version`` and ``alias`` are exclusive; ``path`` is only for runs."""

    kind: str
    name: str
    version: int | None = None
    alias: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        return format_ref(self)


def format_ref(ref: Ref) -> str:
    text = f"{ref.kind}:{ref.name}"
    if ref.version is not None:
        text += f"/{ref.version}"
    elif ref.alias is not None:
        text += f"@{ref.alias}"
    if ref.path:
        text += f"/{ref.path}"
    return text


def _bad(text: str, why: str, fix: str = _SYNTAX) -> InvalidInput:
    return InvalidInput(f"Invalid reference {shown(text)}: {why}. {fix}")


def _version(text: str, digits: str | None) -> int | None:
    if digits is None:
        return None
    fix = f"Use a version number between 1 and {MAX_VERSION}."
    significant = digits.lstrip("0")  # int() of thousands of digits is slow and refused by Python itself
    if len(significant) > len(str(MAX_VERSION)) or int(significant or "0") > MAX_VERSION:
        raise _bad(text, f"version {shown(digits)} is too large", fix)
    if not significant:
        raise _bad(text, "versions start at 1", fix)
    return int(significant)


def _check_length(text: str, what: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise _bad(text, f"the {what} has {len(value)} characters; at most {limit} are allowed", "Use a shorter one.")


def _check_path(text: str, path: str | None) -> None:
    if path is not None and ("\x00" in path or not _utf8(path)):
        raise _bad(text, "the path holds a NUL byte or text that is not UTF-8", "Use the path the run logged.")


def _utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_ref(text: str, *, default_kind: str | None = None) -> Ref:
    """Parse ``text``; a bare value is read as ``default_kind`` when one is given.

    References have at most :data:`MAX_REF_LENGTH` characters, names :data:`MAX_NAME_LENGTH`, aliases
    :data:`MAX_ALIAS_LENGTH`; versions run from 1 to :data:`MAX_VERSION` (the signed 64-bit range).
    """
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    if len(text) > MAX_REF_LENGTH:
        raise _bad(
            text, f"it has {len(text)} characters; references have at most {MAX_REF_LENGTH}", "Use a shorter one."
        )
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        if default_kind is None:
            raise _bad(text, f"unknown kind {shown(kind)}" if sep else "it has no '<kind>:' prefix")
        kind, rest = default_kind, text
    if kind == "run":
        m = _RUN_RE.match(rest)
        if not m:
            raise _bad(text, "a run id is 8 to 32 hexadecimal characters")
        _check_path(text, m["path"])
        return Ref("run", m["id"].lower(), path=m["path"])
    if kind in _VERSIONED:
        m = _VERSIONED_RE.match(rest)
        if not m:
            raise _bad(text, "names use letters, digits, '.', '_' and '-'; versions are whole numbers")
        _check_length(text, "name", m["name"], MAX_NAME_LENGTH)
        _check_length(text, "alias", m["alias"], MAX_ALIAS_LENGTH)
        return Ref(kind, m["name"], version=_version(text, m["version"]), alias=m["alias"])
    if not _NAME_RE.match(rest):
        raise _bad(text, "names use letters, digits, '.', '_' and '-'")
    _check_length(text, "name", rest, MAX_NAME_LENGTH)
    return Ref(kind, rest)
