"""Run one function in several threads at once and collect what each returned or raised."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["in_threads"]


def in_threads(fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Call ``fn(*a)`` for each ``a`` in ``args``, each in its own thread, all started before any is joined.

    Returns each call's result or the exception it raised (in the order of ``args``).
    """
    outcomes: list[Any] = [None] * len(args)

    def run(i: int) -> None:
        try:
            outcomes[i] = fn(*args[i])
        except BaseException as exc:  # reported to the caller, who asserts on it
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return outcomes
