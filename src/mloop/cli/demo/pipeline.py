"""The example training pipeline: scikit-learn's breast-cancer data, two candidates, the better one registered.

::

    prepare ──► featurise ──┬──► train_linear ──┬──► evaluate ──► register
                            └──► train_forest ──┘

- ``prepare`` versions the table as ``data:breast-cancer/N`` and splits off a private, stratified holdout
  (``breast-cancer-train`` and ``breast-cancer-holdout``); it passes on references, never rows;
- ``featurise`` reads the train split (recorded as the step's input), splits it into fit and validation parts
  and fits the feature scaling both candidates share;
- ``train_linear`` (logistic regression by SGD, per epoch) and ``train_forest`` (a random forest, grown in
  stages) run in parallel, each logging its parameters and validation metrics to its own step run;
- ``evaluate`` picks the better candidate on the validation part (the holdout is never read by a step);
- ``register`` registers it and moves ``production`` only if mloop's gate says it beats the current
  production model on the private holdout (evaluation is mloop's, audited; a refusal is not an error).

``mloop demo`` runs it. Run it yourself from the demo folder (the demo writes this file there as
``train_pipeline.py``), change a parameter or edit a step and see what is reused::

    mloop pipelines run train_pipeline.py:train                       # every step cached after the demo
    mloop pipelines run train_pipeline.py:train -p train_forest.trees=200
    mloop pipelines plan train_pipeline.py:train -p alpha=0.001

Steps are module-level functions (worker processes import them); this file uses only the public SDK.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline as SklearnPipeline
from sklearn.preprocessing import StandardScaler

import mloop
from mloop import Dataset
from mloop.pipelines import Pipeline, step

__all__ = ["DATASET", "LABEL", "MODEL", "train"]

DATASET = "breast-cancer"  # data:breast-cancer/N, split into breast-cancer-train and the private breast-cancer-holdout
MODEL = "breast-cancer"  # model:breast-cancer/N
LABEL = "label"
METRICS = ("roc_auc", "accuracy")  # what evaluate can rank candidates by


def _scores(model: Any, x: Any, y: np.ndarray) -> dict[str, float]:
    return {"val_roc_auc": float(roc_auc_score(y, model.predict_proba(x)[:, 1])),
            "val_accuracy": float(accuracy_score(y, model.predict(x)))}  # fmt: skip


@step(outputs=("train", "holdout"))
def prepare(*, holdout: float = 0.25, seed: int = 7) -> tuple[Dataset, str]:
    """Version the bundled breast-cancer table and split off a private, stratified holdout.

    The train split goes on as a dataset version (a reference, not a copy); the holdout as its reference text
    only: no step reads it (one that tried would be refused), mloop's evaluation in ``register`` does.
    """
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": LABEL})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "breast_cancer.parquet"
        frame.to_parquet(path, index=False)
        added = Dataset.add(path, DATASET, message="scikit-learn's breast cancer data")
    split = mloop.split_dataset(added.dataset.ref, holdout=holdout, seed=seed, stratify=LABEL)
    print(f"{split.source.ref} -> {split.train.ref} ({split.train.info.rows} rows) "
          f"and private {split.holdout.ref} ({split.holdout.info.rows} rows)")  # fmt: skip
    return split.train, split.holdout.ref


@step(outputs=("features", "x_fit", "y_fit", "x_val", "y_val"))
def featurise(
    train: Dataset, *, validation: float = 0.2, seed: int = 0
) -> tuple[StandardScaler, pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Read the train split (lineage), hold out a validation part, fit the scaling both candidates share."""
    frame = train.to_pandas()  # recorded as an input of this step's run (lineage)
    x, y = frame.drop(columns=[LABEL]), frame[LABEL].to_numpy()
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=validation, random_state=seed, stratify=y)
    features = StandardScaler().fit(x_fit)
    mloop.log_metrics({"rows_fit": len(x_fit), "rows_val": len(x_val), "features": x.shape[1]})
    return features, x_fit.reset_index(drop=True), y_fit, x_val.reset_index(drop=True), y_val


@step
def train_linear(
    features: StandardScaler, x_fit: pd.DataFrame, y_fit: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray,
    *, alpha: float = 0.01, epochs: int = 30, seed: int = 0,
) -> SklearnPipeline:  # fmt: skip
    """Logistic regression trained by SGD, one pass per epoch, logging the loss and validation accuracy."""
    xf, xv = features.transform(x_fit), features.transform(x_val)
    classifier = SGDClassifier(loss="log_loss", alpha=alpha, random_state=seed)
    classes = np.unique(y_fit)
    mloop.log_params({"estimator": "SGDClassifier(loss='log_loss')"})
    for epoch in range(epochs):
        classifier.partial_fit(xf, y_fit, classes=classes)
        loss = float(log_loss(y_fit, classifier.predict_proba(xf)))
        mloop.log_metrics({"train_loss": loss, "val_accuracy": float(accuracy_score(y_val, classifier.predict(xv)))},
                          step=epoch)  # fmt: skip
    model = SklearnPipeline([("features", features), ("classifier", classifier)])
    mloop.log_metric("val_roc_auc", _scores(model, x_val, y_val)["val_roc_auc"], step=max(epochs - 1, 0))
    return model


@step
def train_forest(
    features: StandardScaler, x_fit: pd.DataFrame, y_fit: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray,
    *, trees: int = 60, max_depth: int = 6, seed: int = 0,
) -> SklearnPipeline:  # fmt: skip
    """A random forest grown ten trees at a time, logging validation accuracy after each stage."""
    xf, xv = features.transform(x_fit), features.transform(x_val)
    forest = RandomForestClassifier(max_depth=max_depth, random_state=seed, warm_start=True, n_jobs=1)
    mloop.log_params({"estimator": "RandomForestClassifier"})
    sizes = [*range(10, trees, 10), trees] if trees > 10 else [trees]
    for stage, size in enumerate(sizes):
        forest.set_params(n_estimators=size).fit(xf, y_fit)
        mloop.log_metric("val_accuracy", float(accuracy_score(y_val, forest.predict(xv))), step=stage)
    model = SklearnPipeline([("features", features), ("classifier", forest)])
    mloop.log_metric("val_roc_auc", _scores(model, x_val, y_val)["val_roc_auc"], step=len(sizes) - 1)
    return model


@step(outputs=("model", "runner_up", "choice"), inputs={"linear": "train_linear", "forest": "train_forest"})
def evaluate(
    linear: SklearnPipeline, forest: SklearnPipeline, x_val: pd.DataFrame, y_val: np.ndarray,
    *, metric: str = "roc_auc",
) -> tuple[SklearnPipeline, SklearnPipeline, dict[str, Any]]:  # fmt: skip
    """Rank the two candidates on the validation part by ``metric`` (ties: accuracy); the best goes on."""
    if metric not in METRICS:
        raise ValueError(f"evaluate: metric={metric!r} is not one of {list(METRICS)}. Pass -p evaluate.metric=roc_auc.")
    candidates = {"linear": linear, "forest": forest}
    scores = {name: _scores(model, x_val, y_val) for name, model in candidates.items()}
    ranked = sorted(scores, key=lambda n: (scores[n][f"val_{metric}"], scores[n]["val_accuracy"]), reverse=True)
    mloop.log_metrics({f"{name}_{key}": value for name, s in scores.items() for key, value in s.items()})
    mloop.set_tags({"winner": ranked[0]})
    print(f"winner: {ranked[0]} ({metric} {scores[ranked[0]][f'val_{metric}']:.4f}); "
          f"runner-up: {ranked[1]} ({scores[ranked[1]][f'val_{metric}']:.4f})")  # fmt: skip
    choice = {"winner": ranked[0], "runner_up": ranked[1], "metric": metric, "scores": scores}
    return candidates[ranked[0]], candidates[ranked[1]], choice


@step
def register(
    model: SklearnPipeline, train: Dataset, holdout: str, *, name: str = MODEL, alias: str = "production"
) -> dict[str, Any]:
    """Register the winner; move ``alias`` only if it beats the current holder on the private holdout."""
    run = mloop.active_run()  # inside a step: the step's run, which the version is registered from
    if run is not None:
        run.use_dataset(train.ref)  # the data the model was made from (the version lists it; nothing is read)
    better = mloop.register_if_better(model, name, data=holdout, alias=alias, champion=alias, target=LABEL)
    metrics = {k: float(v) for k, v in better.evaluation.metrics.items()
               if isinstance(v, (int, float)) and math.isfinite(v)}  # fmt: skip
    print(f"{better.version.ref}: {'promoted to ' + alias if better.promoted else 'not promoted'}")
    print(better.report.table())
    return {"version": better.version.ref, "promoted": better.promoted, "alias": alias, "holdout": holdout,
            "metrics": metrics, "report": better.report.to_dict()}  # fmt: skip


train = Pipeline("train", [prepare, featurise, train_linear, train_forest, evaluate, register], experiment=DATASET)
