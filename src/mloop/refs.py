"""One reference syntax for every noun, parsed and formatted here only.

=========================  ==========================================
``run:<id>``               a run (``run:<id>/<artifact path>`` names an artifact of it)
``experiment:<name>``      an experiment
``data:<name>/<version>``  a dataset version; ``data:<name>@<alias>`` through an alias
``model:<name>/<version>`` a model version; ``model:<name>@<alias>`` through an alias
``pipeline:<name>/<ver>``  a pipeline version
``deployment:<name>``      a deployment
=========================  ==========================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mloop.errors import InvalidInput

__all__ = ["KINDS", "Ref", "format_ref", "parse_ref"]

KINDS = ("run", "experiment", "data", "model", "pipeline", "deployment")
_VERSIONED = {"data", "model", "pipeline"}
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME_RE = re.compile(rf"^{_NAME}$")
_VERSIONED_RE = re.compile(rf"^(?P<name>{_NAME})(?:/(?P<version>[0-9]+)|@(?P<alias>{_NAME}))?$")
_RUN_RE = re.compile(r"^(?P<id>[0-9a-fA-F]{8,32})(?:/(?P<path>.+))?$")


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


def _bad(text: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid reference {text!r}: {why}. Use one of run:<id>, experiment:<name>, data:<name>/<version>, "
        "data:<name>@<alias>, model:<name>/<version>, model:<name>@<alias>, pipeline:<name>/<version>, "
        "deployment:<name>."
    )


def parse_ref(text: str, *, default_kind: str | None = None) -> Ref:
    """Parse ``text``; a bare value is read as ``default_kind`` when one is given."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        if default_kind is None:
            raise _bad(text, f"unknown kind {kind!r}" if sep else "it has no '<kind>:' prefix")
        kind, rest = default_kind, text
    if kind == "run":
        m = _RUN_RE.match(rest)
        if not m:
            raise _bad(text, "a run id is 8 to 32 hexadecimal characters")
        return Ref("run", m["id"].lower(), path=m["path"])
    if kind in _VERSIONED:
        m = _VERSIONED_RE.match(rest)
        if not m:
            raise _bad(text, "names use letters, digits, '.', '_' and '-'; versions are whole numbers")
        version = int(m["version"]) if m["version"] else None
        if version is not None and version < 1:
            raise _bad(text, "versions start at 1")
        return Ref(kind, m["name"], version=version, alias=m["alias"])
    if not _NAME_RE.match(rest):
        raise _bad(text, "names use letters, digits, '.', '_' and '-'")
    return Ref(kind, rest)
