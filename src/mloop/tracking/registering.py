"""``mloop.register_model`` and ``mloop.register_if_better``: registering needs a run to log the model to.

They live with tracking (tracking may use the registry; the registry never imports tracking). A model a run
already logged is registered by :func:`mloop.registry.register.register_from_run` without a new run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.entities import Evaluation, ModelVersion
from mloop.refs import parse_ref
from mloop.registry import evaluate as _evaluate
from mloop.registry import promote as _promote
from mloop.registry.gates import Check, beats, evaluated
from mloop.registry.register import register_from_run
from mloop.tracking.models import register_local

if TYPE_CHECKING:
    from mloop.tracking.client import Client
    from mloop.tracking.run import Run

__all__ = ["BetterResult", "register_if_better", "register_model"]


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from mloop.tracking.fluent import get_client

    return get_client()


def register_model(source: Any, name: str, *, client: Client | None = None, description: str = "") -> ModelVersion:
    """Register ``run:<id>/<path>`` (a model a run logged), a local file or folder, or a fitted model object.

    A fitted object is logged to the active run (inside a pipeline step: the step's run), so the version's
    lineage reaches the datasets that run read; with no active run, to a new run in ``model-registrations``.
    """
    c = _client(client)
    if isinstance(source, str) and source.startswith("run:"):
        ref = parse_ref(source)
        return register_from_run(c, ref.name, name, path=ref.path or "model", description=description)
    if isinstance(source, (str, Path)):
        return register_local(c, source, name, description=description)
    active = _active_run(c)
    if active is not None:  # inside a run or a pipeline step: the version's run is that run (its lineage holds)
        version = active.log_model(source, name, path=_free_path(c, active.id, name), description=description)
    else:
        with c.start_run("model-registrations", f"register-{name}") as run:
            version = run.log_model(source, name, description=description)
    assert version is not None
    return version


def _active_run(client: Client) -> Run | None:
    """The active run of this context, when it belongs to ``client``'s workspace."""
    from mloop.tracking.fluent import active_run

    run = active_run()
    return run if run is not None and run.client.store is client.store else None


def _free_path(client: Client, run_id: str, name: str) -> str:
    """``model``, or ``model-NAME`` (``-2``, ``-3`` ...) when the run already holds a model there."""
    taken = {e.path.partition("/")[0] for e in client.store.list_artifacts(run_id)}
    candidates = ["model", f"model-{name}", *(f"model-{name}-{i}" for i in range(2, len(taken) + 3))]
    return next(p for p in candidates if p not in taken)


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
