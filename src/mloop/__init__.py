"""mloop: self-hosted MLOps in one tool.

The public SDK is re-exported here and imported lazily, so ``import mloop`` (and ``mloop --help``) stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Run": "mloop.tracking.run",
    "active_run": "mloop.tracking.fluent",
    "autolog": "mloop.tracking.autolog",
    "get_run": "mloop.tracking.fluent",
    "search_runs": "mloop.tracking.fluent",
    "start_run": "mloop.tracking.fluent",
    "Client": "mloop.tracking.client",
    "RunTable": "mloop.tracking.search",
}

__all__ = sorted(["__version__", *_EXPORTS])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return __all__
