"""mloop.autolog() with real scikit-learn estimators."""

from __future__ import annotations

import pickle

import pytest

import mloop
from mloop.tracking.client import Client


def test_autolog_logs_params_score_and_model(client: Client) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    mloop.autolog(experiment="auto")
    try:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
        with mloop.start_run("mine") as run:
            LogisticRegression(C=0.5, max_iter=500).fit(x, y)
    finally:
        mloop.autolog(disable=True)
    LogisticRegression(max_iter=500).fit(x, y)  # not logged any more

    (auto,) = client.search_runs("auto")  # one run for the pipeline, not one per inner estimator
    assert auto.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert auto.params["logisticregression__max_iter"] == "500"
    assert auto.metrics["training_score"] == pytest.approx(model.score(x, y))
    restored = pickle.loads(client.read_artifact(auto, "model/model.pkl"))
    assert (restored.predict(x) == model.predict(x)).all()

    mine = client.get_run(run)
    assert mine.params["C"] == "0.5"  # logged into the active run
    assert len(client.search_runs()) == 2


def test_autolog_patches_classes_defined_later(client: Client) -> None:
    import numpy as np
    from sklearn.base import BaseEstimator, RegressorMixin

    mloop.autolog(experiment="late", log_models=False)
    try:

        class Mean(RegressorMixin, BaseEstimator):
            def fit(self, x: object, y: np.ndarray) -> Mean:
                self.mean_ = float(np.mean(y))
                return self

            def predict(self, x: np.ndarray) -> np.ndarray:
                return np.full(len(x), self.mean_)

        Mean().fit(np.zeros((4, 1)), np.array([1.0, 2.0, 3.0, 4.0]))
    finally:
        mloop.autolog(disable=True)
    (run,) = client.search_runs("late")
    assert run.tags["estimator_class"].endswith("Mean")
    assert client.list_artifacts(run) == []
