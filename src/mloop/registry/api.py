"""The registry's public functions (``mloop.load_model``, ``mloop.promote``, …) on the current context.

Registering a model object or a file needs a run to log it to, so ``mloop.register_model`` and
``mloop.register_if_better`` live with tracking (:mod:`mloop.tracking.registering`); this package never imports
tracking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop.context import current_context
from mloop.entities import Evaluation, ModelVersion
from mloop.registry import evaluate as _evaluate
from mloop.registry import promote as _promote
from mloop.registry.gates import Check
from mloop.registry.loader import load_model as _load_model

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.flavors import LoadedModel

__all__ = ["approve", "evaluate", "load_model", "promote", "rollback"]


def _client(client: Context | None) -> Context:
    return client if client is not None else current_context()


def load_model(ref: str, *, strict: bool | None = None, client: Context | None = None) -> LoadedModel:
    """Load ``model:<name>/<version>`` or ``model:<name>@<alias>``, verified, behind ``predict``."""
    return _load_model(ref, client=_client(client), strict=strict)


def evaluate(model: str, data: str, *, target: str | None = None, task: str | None = None,
             client: Context | None = None) -> Evaluation:  # fmt: skip
    """Evaluate a registered version on a dataset version (the only path that may read a private holdout)."""
    return _evaluate.evaluate(_client(client), model, data, target=target, task=task)


def promote(name: str, version: int, *, to: str, policy: Check | str | None = None,
            client: Context | None = None) -> _promote.GateReport:  # fmt: skip
    return _promote.promote(_client(client), name, version, to=to, policy=policy)


def approve(name: str, version: int, *, to: str, comment: str = "", client: Context | None = None) -> Any:
    return _promote.approve(_client(client), name, version, to=to, comment=comment)


def rollback(name: str, *, alias: str = "production", client: Context | None = None) -> ModelVersion:
    return _promote.rollback(_client(client), name, alias=alias)
