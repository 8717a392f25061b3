"""Content digests: which algorithms exist, how a digest string is spelled, and hashing helpers.

A digest string records its algorithm, ``"blake3:<64 hex>"`` (the default) or ``"sha256:<64 hex>"``, so a
store can hold blobs hashed either way and a reader always knows how to verify what it reads. BLAKE3 uses the
``blake3`` package in its multithreaded mode for inputs large enough to benefit; SHA-256 uses :mod:`hashlib`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final, Protocol

import blake3 as _blake3

from mloop.errors import InvalidInput

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_ALGORITHM",
    "SUPPORTED_ALGORITHMS",
    "Hasher",
    "check_algorithm",
    "format_digest",
    "hash_bytes",
    "hash_file",
    "new_hasher",
    "parse_digest",
]

DEFAULT_ALGORITHM: Final = "blake3"
SUPPORTED_ALGORITHMS: Final = ("blake3", "sha256")
CHUNK_SIZE: Final = 8 * 1024 * 1024
"""Bytes moved per read/hash/write step: memory use of a transfer is a small multiple of this."""

_MULTITHREAD_FROM: Final = 1024 * 1024
"""Inputs at least this large (or of unknown size) are hashed with BLAKE3's thread pool."""

_HEX_LENGTH: Final = {"blake3": 64, "sha256": 64}
_DIGEST_RE: Final = re.compile(r"([a-z0-9]+):([0-9a-f]+)")


class Hasher(Protocol):
    """The incremental-hash interface shared by ``hashlib`` objects and ``blake3.blake3``."""

    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def check_algorithm(algorithm: str) -> str:
    """Return ``algorithm`` if it is supported; otherwise raise :class:`InvalidInput` naming the choices."""
    if algorithm not in SUPPORTED_ALGORITHMS:
        choices = ", ".join(repr(a) for a in SUPPORTED_ALGORITHMS)
        raise InvalidInput(
            f"Unknown digest algorithm {algorithm!r}; supported algorithms are {choices}. "
            f"Pass algorithm={DEFAULT_ALGORITHM!r} (the default) or algorithm='sha256'."
        )
    return algorithm


def new_hasher(algorithm: str, *, size_hint: int | None = None, threaded: bool | None = None) -> Hasher:
    """Return a fresh incremental hasher for ``algorithm``.

    ``size_hint`` is the expected input size; BLAKE3 uses all cores when it is unknown or large, unless
    ``threaded`` says otherwise (``False`` when the caller already hashes many files in parallel).
    """
    check_algorithm(algorithm)
    if algorithm == "blake3":
        if threaded is None:
            threaded = size_hint is None or size_hint >= _MULTITHREAD_FROM
        return _blake3.blake3(max_threads=_blake3.blake3.AUTO if threaded else 1)
    return hashlib.sha256()


def format_digest(algorithm: str, hexdigest: str) -> str:
    """Spell a digest string, ``"<algorithm>:<hex>"``."""
    return f"{algorithm}:{hexdigest}"


def parse_digest(text: str) -> tuple[str, str]:
    """Split a digest string into ``(algorithm, hexdigest)``, both lower case.

    Raises :class:`InvalidInput` naming the text and the expected form when it is not a digest of a supported
    algorithm.
    """
    if not isinstance(text, str):
        raise InvalidInput(
            f"A digest must be a string like 'blake3:<64 hex digits>', got {type(text).__name__} {text!r}."
        )
    match = _DIGEST_RE.fullmatch(text.lower())
    if match is None:
        raise InvalidInput(
            f"{text!r} is not a digest; expected '<algorithm>:<hex digits>', "
            f"e.g. 'blake3:{'0' * 64}'. Copy the digest exactly as mloop printed it."
        )
    algorithm, hexdigest = match.group(1), match.group(2)
    check_algorithm(algorithm)
    expected = _HEX_LENGTH[algorithm]
    if len(hexdigest) != expected:
        raise InvalidInput(
            f"{text!r} is not a valid {algorithm} digest: it has {len(hexdigest)} hex digits, "
            f"{algorithm} digests have {expected}. Copy the digest exactly as mloop printed it."
        )
    return algorithm, hexdigest


def hash_bytes(data: bytes | bytearray | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Return the digest string of ``data``."""
    hasher = new_hasher(algorithm, size_hint=len(data))
    hasher.update(data)
    return format_digest(algorithm, hasher.hexdigest())


def hash_file(path: str | os.PathLike[str], algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Return the digest string of the file at ``path``, read in fixed-size chunks (constant memory)."""
    file_path = Path(path)
    check_algorithm(algorithm)
    with file_path.open("rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        hasher = new_hasher(algorithm, size_hint=size)
        if size < CHUNK_SIZE:  # small files: one read, no chunk buffer to allocate and zero
            hasher.update(handle.read())
            while extra := handle.read(CHUNK_SIZE):  # the file grew since fstat
                hasher.update(extra)
            return format_digest(algorithm, hasher.hexdigest())
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            hasher.update(view[:count])
    return format_digest(algorithm, hasher.hexdigest())
