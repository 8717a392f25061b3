"""The registry's public functions (``mloop.load_model``, ``mloop.promote``, …), on the context's client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.entities import Evaluation, ModelVersion
from mloop.registry import evaluate as _evaluate
from mloop.registry import promote as _promote
from mloop.registry.gates import Check, beats, evaluated
from mloop.registry.loader import load_model as _load_model

if TYPE_CHECKING:
    from mloop.flavors import LoadedModel
    from mloop.tracking.client import Client

__all__ = [
    "BetterResult",
    "approve",
    "evaluate",
    "load_model",
    "promote",
    "register_if_better",
    "register_model",
    "rollback",
]


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from mloop.tracking.fluent import get_client

    return get_client()


def load_model(ref: str, *, strict: bool | None = None, client: Client | None = None) -> LoadedModel:
    """Load ``model:<name>/<version>`` or ``model:<name>@<alias>``, verified, behind ``predict``."""
    return _load_model(ref, client=_client(client), strict=strict)


def register_model(source: Any, name: str, *, client: Client | None = None, description: str = "") -> ModelVersion:
    """Register ``run:<id>/<path>`` (a model a run logged), a local file or folder, or a fitted model object."""
    from pathlib import Path

    from mloop.refs import parse_ref
    from mloop.tracking.models import register_from_run, register_local

    c = _client(client)
    if isinstance(source, str) and source.startswith("run:"):
        ref = parse_ref(source)
        return register_from_run(c, ref.name, name, path=ref.path or "model", description=description)
    if isinstance(source, (str, Path)):
        return register_local(c, source, name, description=description)
    with c.start_run("model-registrations", f"register-{name}") as run:
        version = run.log_model(source, name, description=description)
    assert version is not None
    return version


def evaluate(model: str, data: str, *, target: str | None = None, task: str | None = None,
             client: Client | None = None) -> Evaluation:  # fmt: skip
    """Evaluate a registered version on a dataset version (the only path that may read a private holdout)."""
    return _evaluate.evaluate(_client(client), model, data, target=target, task=task)


def promote(name: str, version: int, *, to: str, policy: Check | str | None = None,
            client: Client | None = None) -> _promote.GateReport:  # fmt: skip
    return _promote.promote(_client(client), name, version, to=to, policy=policy)


def approve(name: str, version: int, *, to: str, comment: str = "", client: Client | None = None) -> Any:
    return _promote.approve(_client(client), name, version, to=to, comment=comment)


def rollback(name: str, *, alias: str = "production", client: Client | None = None) -> ModelVersion:
    return _promote.rollback(_client(client), name, alias=alias)


@dataclass(frozen=True)
class BetterResult:
    version: ModelVersion
    evaluation: Evaluation
    report: _promote.GateReport
    promoted: bool


def register_if_better(
    model: Any,
    name: str,
    *,
    data: str,
    alias: str = "candidate",
    champion: str = "production",
    metric: str = "primary",
    margin: float = 0.0,
    confidence: float = 0.95,
    policy: Check | str | None = None,
    target: str | None = None,
    client: Client | None = None,
) -> BetterResult:
    """Register, evaluate on ``data``, and move ``alias`` to the new version only if it passes the policy.

    The default policy asks for an evaluation on a private holdout and a win over the ``champion`` alias's
    holder by more than ``margin`` at ``confidence``. A refusal is not an error: ``promoted`` is False and the
    report says why (usable as a pipeline step).
    """
    c = _client(client)
    version = register_model(model, name, client=c)
    ev = _evaluate.evaluate(c, version.ref, data, target=target)
    chosen = policy if policy is not None else evaluated() & beats(champion, metric, margin, confidence)
    report = _promote.check_policy(c, version, alias, chosen)
    promoted = False
    if report.passed:
        report = _promote.promote(c, version.name, version.version, to=alias, policy=chosen)
        promoted = True
    return BetterResult(version, ev, report, promoted)
