"""Which input the model gets: a named single estimator its float matrix, a named pipeline one DataFrame per
batch, everything else what the schema built; the answers are the model's own either way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.serving.batching import BatchConfig
from mloop.tracking.client import Client


def _frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 5, n), "c": rng.normal(size=n)})
    return x, (x["a"] + x["b"] > 2).astype(int).to_numpy()


def _register(model: Any, x: pd.DataFrame, name: str) -> None:
    with mloop.start_run(name) as run:
        run.log_model(model, name, signature_data=x)


def _concurrently(tc: Any, bodies: list[Any], url: str = "/predict") -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        return list(await asyncio.gather(*(tc.http.post(url, json=b) for b in bodies)))

    return tc.portal.call(send_all)


@pytest.mark.parametrize(
    ("kind", "path"),
    [("single", "matrix"), ("pipeline", "frame-per-batch"), ("ensemble", "frame-per-batch")],
)
def test_named_number_models_are_called_once_per_batch_with_the_right_input(
    client: Client, serve: Any, kind: str, path: str
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _frame()
    if kind == "single":
        model: Any = LogisticRegression().fit(x, y)
    elif kind == "pipeline":
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    else:
        from sklearn.ensemble import VotingClassifier
        from sklearn.tree import DecisionTreeClassifier

        voters = [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]
        model = VotingClassifier(voters, voting="soft").fit(x, y)
    _register(model, x, "m")
    tc = serve("model:m/1", batching=BatchConfig(max_wait=0.05))
    assert tc.app.state.calls.path == path
    rows = x.iloc[:30]
    answers = _concurrently(tc, [[row] for row in rows.to_dict("records")])
    assert [r.status_code for r in answers] == [200] * 30
    frame = rows
    assert [r.json()["predictions"][0] for r in answers] == model.predict(frame).tolist()
    proba = _concurrently(tc, [{"inputs": [row], "proba": True} for row in rows.to_dict("records")])
    assert np.allclose([r.json()["probabilities"][0] for r in proba], model.predict_proba(frame))
    # columns (any order) and dataframe_split go the same way
    r = tc.post("/invocations", json={"dataframe_split": {"columns": ["c", "b", "a"],
                                                           "data": rows[["c", "b", "a"]].values.tolist()}})  # fmt: skip
    assert r.json()["predictions"] == model.predict(frame).tolist()


def test_a_model_fitted_on_an_array_gets_the_array_and_a_mixed_frame_a_frame(client: Client, serve: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _frame()
    model = LogisticRegression().fit(x.to_numpy(), y)
    _register(model, x.to_numpy(), "bare")
    tc = serve("model:bare/1")
    assert tc.app.state.calls.path == "as-is"
    r = tc.post("/predict", json=x.iloc[:5].to_numpy().tolist())
    assert r.json()["predictions"] == model.predict(x.iloc[:5].to_numpy()).tolist()
