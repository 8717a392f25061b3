"""Evaluating registered versions on a (private) holdout, and champion/challenger comparisons.

This is the only code path that reads private holdouts: it enters
:func:`~mloop.datasets.access.evaluation_access` with the model it evaluates as the purpose, so every read is an
audited event, and reads the holdout into memory (no copy stays on disk). An evaluation stores the task's
metrics, single-row latency, permutation feature importance
and an HTML report with the version.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mloop.datasets.access import evaluation_access
from mloop.datasets.dataset import get_dataset
from mloop.entities import Evaluation
from mloop.errors import InvalidInput
from mloop.registry.loader import load_model, resolve_model

if TYPE_CHECKING:
    import pandas as pd

    from mloop.context import Context
    from mloop.flavors import LoadedModel

__all__ = ["compare_versions", "evaluate", "primary_metric"]

_IMPORTANCE_ROWS = 5000
_LATENCY_CALLS = 50
_TARGETS = ("label", "target", "y")


def primary_metric(task: str, n_classes: int) -> str:
    if task == "classification":
        return "roc_auc" if n_classes == 2 else "accuracy"
    if task == "regression":
        return "rmse"
    return "f1"


def _frame(client: Context, data_ref: str, model_ref: str) -> tuple[str, pd.DataFrame]:
    ds = get_dataset(data_ref, client=client)
    with evaluation_access(client, model_ref):
        return ds.ref, ds.to_pandas()


def _split_xy(frame: pd.DataFrame, model: LoadedModel, version: Any, target: str | None) -> tuple[Any, Any, str]:
    label = target or version.target or next((c for c in _TARGETS if c in frame.columns), None)
    if label is None or label not in frame.columns:
        raise InvalidInput(
            f"Cannot find the label column {label!r} in the evaluation data (columns: {', '.join(frame.columns)}). "
            "Pass --target COLUMN, or log the model with target=..."
        )
    x = frame.drop(columns=[label])
    inputs = [c["name"] for c in (version.signature or {}).get("inputs", [])]
    if inputs and all(not name.isdigit() for name in inputs):
        missing = [c for c in inputs if c not in x.columns]
        if missing:
            raise InvalidInput(
                f"The evaluation data lacks the model's input columns {missing}; it has {list(x.columns)}."
            )
        x = x[inputs]
    return x, frame[label].to_numpy(), label


def _predictions(model: LoadedModel, x: Any, task: str | None) -> tuple[Any, Any]:
    pred = model.predict(x)
    proba = model.predict_proba(x) if model.has_proba and task in (None, "classification") else None
    return pred, proba


def _latency(model: LoadedModel, x: Any) -> dict[str, float]:
    import numpy as np

    rows = [x.iloc[[i % len(x)]] for i in range(_LATENCY_CALLS)]
    times = []
    for row in rows:
        started = time.perf_counter()
        model.predict(row)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)), "max": float(max(times))}


def _importance(model: LoadedModel, x: Any, y: Any, task: str) -> list[tuple[str, float, float]]:
    import numpy as np

    from mloop.evaluation import compute_metrics

    n = min(len(x), _IMPORTANCE_ROWS)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(x), size=n, replace=False) if len(x) > n else np.arange(n)
    xs, ys = x.iloc[idx].reset_index(drop=True), y[idx]
    key = "accuracy" if task == "classification" else ("r2" if task == "regression" else "f1")

    def score(frame: Any) -> float:
        if task == "anomaly":
            return float(compute_metrics(task, ys, model.predict(frame), threshold=0.5).get(key, np.nan))
        return float(compute_metrics(task, ys, model.predict(frame)).get(key, np.nan))

    base = score(xs)
    out = []
    for col in xs.columns:
        drops = []
        for _ in range(3):
            shuffled = xs.copy()
            shuffled[col] = rng.permutation(shuffled[col].to_numpy())
            drops.append(base - score(shuffled))
        out.append((str(col), float(np.mean(drops)), float(np.std(drops))))
    return sorted(out, key=lambda t: -t[1])


def evaluate(
    client: Context,
    model_ref: str,
    data_ref: str,
    *,
    target: str | None = None,
    task: str | None = None,
    importance: bool = True,
    report: bool = True,
) -> Evaluation:
    """Evaluate a registered version on a dataset version and store the record with both linked."""
    import numpy as np

    from mloop.evaluation import compute_metrics, infer_task

    version = resolve_model(client, model_ref)
    model = load_model(version.ref, client=client)
    data, frame = _frame(client, data_ref, version.ref)
    x, y, _ = _split_xy(frame, model, version, target)
    pred, proba = _predictions(model, x, task)
    task = task or infer_task(y, pred)
    score = proba if proba is not None else None
    if task == "classification" and proba is not None and np.ndim(proba) == 2 and proba.shape[1] == 2:
        score = proba[:, 1]
    kw: dict[str, Any] = {"threshold": 0.5} if task == "anomaly" else {}
    if task == "classification" and proba is not None:
        kw["labels"] = list(getattr(model.raw, "classes_", [])) or None
    metrics = compute_metrics(task, y, pred, score if task != "classification" else proba, **kw)
    latency = _latency(model, x)
    imp = _importance(model, x, y, task) if importance and model.flavor != "script" else []
    digest = None
    if report:
        digest = _report(client, version.ref, data, task, metrics, y, score, imp)
    evaluation = client.store.add_evaluation(
        version.name, version.version, data_ref=data, task=task, metrics=metrics, actor=client.actor, rows=len(y),
        importance=imp, latency_ms=latency, report_digest=digest,
    )  # fmt: skip
    client.store.add_lineage(data, version.ref, "evaluated_on", actor=client.actor)
    return evaluation


def _report(client: Context, ref: str, data: str, task: str, metrics: dict[str, Any], y: Any, score: Any,
            imp: list[tuple[str, float, float]]) -> str:  # fmt: skip
    from mloop.evaluation import evaluation_report_html, roc_curve_points

    roc = None
    if task == "classification" and score is not None and getattr(score, "ndim", 1) == 1:
        roc = roc_curve_points(y, score)
    html = evaluation_report_html(
        f"{ref} on {data}", metrics, task=task, confusion=metrics.get("confusion_matrix"), roc=roc,
        calibration=metrics.get("calibration"), importance=imp or None,
    )  # fmt: skip
    return client.artifacts.put_bytes(html.encode()).digest


def compare_versions(
    client: Context,
    challenger_ref: str,
    champion_ref: str,
    data_ref: str,
    *,
    metric: str = "primary",
    confidence: float = 0.95,
    n_boot: int = 1000,
    target: str | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Both versions on the same holdout: paired bootstrap CI of the metric gain, McNemar for classifiers.

    ``record`` stores the result with the challenger's latest evaluation on that data (gates pass False: a
    dry run must not write; promotions record their checks in their events instead).
    """
    import numpy as np

    from mloop.evaluation import infer_task, mcnemar, paired_bootstrap

    challenger = resolve_model(client, challenger_ref)
    champion = resolve_model(client, champion_ref)
    data, frame = _frame(client, data_ref, f"{challenger.ref} vs {champion.ref}")
    out: dict[str, Any] = {"challenger": challenger.ref, "champion": champion.ref, "data": data}
    preds = []
    for version in (champion, challenger):
        model = load_model(version.ref, client=client)
        x, y, _ = _split_xy(frame, model, version, target)
        preds.append(_predictions(model, x, None))
    (pred_a, proba_a), (pred_b, proba_b) = preds
    task = infer_task(y, pred_b)
    if metric == "primary":
        metric = primary_metric(task, len(np.unique(y)))
    uses_scores = metric in {"roc_auc", "log_loss", "brier"}
    a, b = (proba_a, proba_b) if uses_scores else (pred_a, pred_b)
    if uses_scores:
        if a is None or b is None:
            raise InvalidInput(f"{metric} needs predict_proba on both models; compare on 'accuracy' instead.")
        if np.ndim(a) == 2 and a.shape[1] == 2:
            a, b = a[:, 1], b[:, 1]
    result = paired_bootstrap(metric, y, a, b, n_boot=n_boot, confidence=confidence).to_dict()
    out.update(result)
    out["metric"] = metric
    if task == "classification":
        out["mcnemar"] = mcnemar(y, pred_a, pred_b).to_dict()
    evaluations = client.store.list_evaluations(challenger.name, challenger.version, data_ref=data) if record else []
    if evaluations:
        ev = evaluations[0]
        client.store.add_evaluation(
            challenger.name, challenger.version, data_ref=data, task=ev.task, metrics=ev.metrics, actor=client.actor,
            rows=ev.rows, importance=ev.importance, latency_ms=ev.latency_ms, report_digest=ev.report_digest,
            comparison=out,
        )  # fmt: skip
    return out
