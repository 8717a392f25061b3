"""Paths: the logical path of a file inside a run, and where a blob lives inside a store.

Logical artifact paths are what users see (``model/weights.bin``). They are POSIX, relative and confined: no
``..`` segment, no leading ``/``, no drive letter, no backslash, no control character, no blank segment.
Normalising removes ``.`` segments, repeated and trailing slashes, so one file has one spelling.

Blob keys are relative to a store's root: ``blobs/<algorithm>/<first 2 hex>/<remaining hex>``; temporary
uploads live under ``tmp/``.
"""

from __future__ import annotations

import re
from typing import Final

from mloop.artifacts.digest import SUPPORTED_ALGORITHMS, parse_digest
from mloop.errors import InvalidInput

__all__ = [
    "BLOBS_DIR",
    "TMP_DIR",
    "blob_key",
    "digest_from_key",
    "normalize_artifact_path",
]

BLOBS_DIR: Final = "blobs"
TMP_DIR: Final = "tmp"

_DRIVE_RE: Final = re.compile(r"[A-Za-z]:")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_SHARD_RE: Final = re.compile(r"[0-9a-f]{2}")
_REST_RE: Final = re.compile(r"[0-9a-f]+")


def _reject(name: str, problem: str, fix: str) -> InvalidInput:
    return InvalidInput(f"Artifact path {name!r} {problem}. {fix}")


def normalize_artifact_path(name: str) -> str:
    """Return the canonical POSIX form of ``name``, the path of a file inside a run.

    ``"./model//weights.bin"`` becomes ``"model/weights.bin"``. Raises :class:`InvalidInput` naming the value
    and the fix for: empty names, NUL and other control characters, backslashes, absolute paths, drive
    letters and ``..`` segments.
    """
    if not isinstance(name, str):
        raise InvalidInput(
            f"Artifact path must be a string, got {type(name).__name__} {name!r}. "
            "Pass a relative POSIX path such as 'model/weights.bin'."
        )
    if not name.strip():
        raise _reject(name, "is empty", "Give the file a relative name such as 'model/weights.bin'.")
    control = _CONTROL_RE.search(name)
    if control is not None:
        what = "a NUL byte" if control.group() == "\x00" else f"the control character {control.group()!r}"
        raise _reject(name, f"contains {what}", "Remove it from the name.")
    if "\\" in name:
        suggestion = name.replace("\\", "/")
        raise _reject(
            name,
            "contains a backslash",
            f"Use forward slashes to separate folders, e.g. {suggestion!r}; backslashes are not allowed in "
            "artifact names.",
        )
    if name.startswith("/"):
        raise _reject(
            name,
            "is absolute",
            f"Artifact paths are relative to the run; drop the leading '/', e.g. {name.lstrip('/') or 'model.pkl'!r}.",
        )
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _reject(
            name,
            "contains a '..' segment",
            "Artifact paths must stay inside the run; name the file without '..'.",
        )
    if not parts:
        raise _reject(name, "names no file", "Give the file a relative name such as 'model/weights.bin'.")
    if _DRIVE_RE.match(parts[0]):
        raise _reject(
            name,
            "starts with a drive letter",
            "Artifact paths are relative to the run; drop the drive, e.g. 'model/weights.bin'.",
        )
    if any(not part.strip() for part in parts):
        raise _reject(name, "has a blank segment", "Name every folder and the file with visible characters.")
    return "/".join(parts)


def blob_key(digest: str) -> str:
    """Return the store-relative key of the blob with ``digest`` (validated with :func:`parse_digest`)."""
    algorithm, hexdigest = parse_digest(digest)
    return f"{BLOBS_DIR}/{algorithm}/{hexdigest[:2]}/{hexdigest[2:]}"


def digest_from_key(key: str) -> str | None:
    """Return the digest stored at a store-relative ``key``, or ``None`` when ``key`` is not a blob key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != BLOBS_DIR or parts[1] not in SUPPORTED_ALGORITHMS:
        return None
    _, algorithm, shard, rest = parts
    if not _SHARD_RE.fullmatch(shard) or not _REST_RE.fullmatch(rest):
        return None
    digest = f"{algorithm}:{shard}{rest}"
    try:
        parse_digest(digest)
    except InvalidInput:
        return None
    return digest
