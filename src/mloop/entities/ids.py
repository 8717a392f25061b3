"""Time-ordered identifiers (UUIDv7 layout, hex without dashes) and timestamps."""

from __future__ import annotations

import os
import time

__all__ = ["new_id", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A 32-hex-character UUIDv7: 48 bits of milliseconds, then sub-millisecond time and randomness.

    Sorting ids as strings sorts them by creation time (to the microsecond within one process).
    """
    ns = time.time_ns()
    ms, sub = divmod(ns, 1_000_000)
    sub12 = sub * 4096 // 1_000_000  # sub-millisecond fraction in 12 bits
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (sub12 << 64) | (0b10 << 62) | rand
    return f"{value:032x}"
