"""The demo's training pipeline, ``retrain``: the newest sensor data in, a registered and evaluated model out.

::

    prepare ──► fit ──► register

- ``prepare`` takes the dataset version its ``data`` parameter names (default ``sensors@latest``: a trigger
  retrains on the newest version) and splits off a private, stratified holdout (``sensors-train/N`` and
  ``sensors-holdout/N``); it passes on references, never rows;
- ``fit`` reads the train split (recorded as the step's input) and fits a classifier of
  ``failure`` (a random forest; missing sensor values are handled by the trees, the machine type one-hot);
- ``register`` registers it as ``model:sensors/N`` (with the signature of the train split). Evaluation on the
  private holdout (audited: no step reads it) and promotion are the gate's business: ``mloop evaluate`` and
  ``mloop models promote``, or in the demo the ``promote-retrained`` automation, which does both.

``mloop demo`` writes this file into its folder as ``retrain_pipeline.py``, publishes it as ``pipeline:retrain``
and triggers it; the ``retrain-on-drift`` automation triggers the same published version on a drift alert. From
the demo folder::

    mloop pipelines trigger retrain                      # every step reused from the cache
    mloop pipelines trigger retrain -p data=sensors/1 -p fit.trees=200

Steps are module-level functions (worker processes import them); this file uses only the public SDK.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline as SklearnPipeline
from sklearn.preprocessing import OneHotEncoder

import mloop
from mloop import Dataset
from mloop.pipelines import Pipeline, dataset_input, step

__all__ = ["DATASET", "LABEL", "MODEL", "PIPELINE", "make_model", "retrain"]

DATASET = "sensors"  # data:sensors/N, split into sensors-train/N and the private sensors-holdout/N
MODEL = "sensors"  # model:sensors/N
PIPELINE = "retrain"  # pipeline:retrain/N once published
LABEL = "failure"


def make_model(*, trees: int = 60, min_leaf: int = 20, seed: int = 0) -> SklearnPipeline:
    """One-hot machine type, the sensors as they are (the trees handle missing values), a random forest (one
    thread: fast and steady on a small, busy machine; its out-of-bag predictions give a validation score)."""
    columns = ColumnTransformer([("type", OneHotEncoder(handle_unknown="ignore"), ["machine_type"])],
                                remainder="passthrough")  # fmt: skip
    forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=min_leaf, max_features=0.5, oob_score=True,
                                    n_jobs=1, random_state=seed)  # fmt: skip
    return SklearnPipeline([("features", columns), ("classifier", forest)])


@step(outputs=("train", "holdout"))
def prepare(
    *,
    data: Dataset = dataset_input("sensors@latest"),  # noqa: B008
    holdout: float = 0.25,
    seed: int = 7,
) -> tuple[Dataset, str]:
    """Split the chosen version into a train split (passed on) and a private stratified holdout (its reference
    only: no step reads it, mloop's evaluation in ``register`` does)."""
    split = mloop.split_dataset(data.ref, holdout=holdout, seed=seed, stratify=LABEL)
    print(f"{split.source.ref} -> {split.train.ref} ({split.train.info.rows} rows) "
          f"and private {split.holdout.ref} ({split.holdout.info.rows} rows)")  # fmt: skip
    return split.train, split.holdout.ref


@step
def fit(train: Dataset, *, trees: int = 60, min_leaf: int = 20, seed: int = 0,
        shuffle_labels: bool = False) -> SklearnPipeline:  # fmt: skip
    """Fit on the train split, logging the out-of-bag ROC AUC (a validation score that never reads the holdout).

    ``shuffle_labels=True`` is a bug on purpose: the labels are shuffled, so the model learns nothing (the demo
    retrains with it to show the gate refusing a worse model)."""
    frame = train.to_pandas()  # recorded as an input of this step's run (lineage)
    x, y = frame.drop(columns=[LABEL]), frame[LABEL].to_numpy()
    if shuffle_labels:
        y = np.random.default_rng(seed).permutation(y)
    mloop.log_params({"estimator": "RandomForestClassifier"})  # the step's parameters are logged already
    model = make_model(trees=trees, min_leaf=min_leaf, seed=seed).fit(x, y)
    oob = model.named_steps["classifier"].oob_decision_function_[:, 1]
    mloop.log_metrics({"oob_roc_auc": float(roc_auc_score(y, np.nan_to_num(oob, nan=float(y.mean())))),
                       "rows": len(frame), "failure_rate": float(y.mean())})  # fmt: skip
    return model


@step(inputs={"model": "fit"})
def register(model: SklearnPipeline, train: Dataset, holdout: str, *, name: str = MODEL) -> dict[str, Any]:
    """Register the model from this step's run, with the signature of the train split. Not evaluated or promoted
    here: the gate does both (``mloop evaluate`` on the private holdout, then ``mloop models promote``; in the demo
    the ``promote-retrained`` automation), so a model is judged by what mloop measures, not by its pipeline."""
    run = mloop.active_run()
    features = train.to_pandas().drop(columns=[LABEL])  # the signature: observed ranges and categories
    if run is None:  # called outside a pipeline: register from a run of its own
        version = mloop.register_model(model, name)
    else:
        registered = run.log_model(model, name, signature_data=features, input_example=features.head(3), target=LABEL)
        assert registered is not None
        version = registered
    print(f"registered {version.ref} (holdout for its evaluation: {holdout})")
    return {"version": version.ref, "holdout": holdout, "train": train.ref}


retrain = Pipeline(PIPELINE, [prepare, fit, register], experiment=DATASET)
