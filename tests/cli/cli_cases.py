"""Types shared by the CLI tests and their fixtures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from typer.testing import Result

Invoke = Callable[..., Result]


@dataclass
class Seeded:
    """A seeded workspace: where it is and the ids of its runs by name."""

    root: Path
    store_uri: str
    artifact_uri: str
    runs: dict[str, str]
