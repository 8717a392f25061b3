"""Models the endpoint tests register; importable by the endpoint's server processes (the tests put this folder
on ``PYTHONPATH``), so a pickled instance loads there."""

from __future__ import annotations

from typing import Any

import numpy as np


class Crashing:
    """Fails every request with a 500 (a canary that must be rolled back)."""

    def predict(self, x: Any) -> np.ndarray:
        raise RuntimeError("this version is broken")


class Constant:
    """Answers ``value`` for every row (tells versions apart in the answers)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, x: Any) -> np.ndarray:
        return np.full(len(x), self.value)
