"""The scoring server: one registered model version behind REST routes (native ``/predict``, MLflow's
``/invocations``), loaded only through the registry's verified loader; and batch scoring (:mod:`.batch`).

Serving imports the registry, the artifact store and the context, never tracking or pipelines: a scoring
process stays small. Names are imported lazily, so ``mloop.serving.batch`` does not load Starlette.
See docs/serving.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.serving.app import create_app
    from mloop.serving.schema import RequestError, Schema

__all__ = ["RequestError", "Schema", "create_app"]

_WHERE = {"create_app": "mloop.serving.app", "RequestError": "mloop.serving.schema", "Schema": "mloop.serving.schema"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'mloop.serving' has no attribute {name!r}")
