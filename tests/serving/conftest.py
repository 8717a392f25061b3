"""Models registered through the registry in a fresh workspace, and the scoring app over them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

import mloop
from mloop.serving import create_app
from mloop.serving.app import ScoringApp
from mloop.tracking.client import Client


def _churn_frame(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 10, n),
                      "plan": rng.choice(["basic", "pro"], n)})  # fmt: skip
    y = ((x["age"] > 40) ^ (x["plan"] == "pro")).astype(int).to_numpy()
    return x, y


@pytest.fixture
def churn(client: Client) -> tuple[Any, pd.DataFrame]:
    """A registered scikit-learn pipeline on named columns (int, float, string): model:churn/1."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = _churn_frame()
    pre = make_column_transformer((StandardScaler(), ["age", "income"]), (OneHotEncoder(), ["plan"]))
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(x, y)
    with mloop.start_run("churn") as run:
        run.log_model(model, "churn", signature_data=x)
    return model, x


@pytest.fixture
def matrix(client: Client) -> tuple[Any, np.ndarray]:
    """A registered classifier fitted on a bare numpy array (no feature names): model:matrix/1."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with mloop.start_run("matrix") as run:
        run.log_model(model, "matrix", signature_data=x)
    return model, x


class Served:
    """A synchronous in-process client over ``httpx.ASGITransport``; ``started=True`` runs the app's lifespan
    (the model is loaded; a load error propagates from the constructor)."""

    def __init__(self, app: ScoringApp, *, started: bool = True) -> None:
        self.app = app
        self._stack = ExitStack()
        try:
            self.portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
            if started:
                inner = app.app
                self._stack.enter_context(self.portal.wrap_async_context_manager(inner.router.lifespan_context(inner)))  # type: ignore[attr-defined]
            transport = httpx.ASGITransport(app=app)
            self.http = httpx.AsyncClient(transport=transport, base_url="http://mloop.test")
        except BaseException:
            self._stack.close()
            raise

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.http.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.portal.call(self.http.aclose)
        self._stack.close()


@pytest.fixture
def served() -> type[Served]:
    """The :class:`Served` class, for tests that start an app themselves (e.g. one that must fail to start)."""
    return Served


@pytest.fixture
def serve(client: Client) -> Iterator[Any]:
    """``serve(ref, started=True, **options)`` -> a :class:`Served` client over ``create_app(ref, client)``."""
    opened: list[Served] = []

    def start(ref: str, started: bool = True, **options: Any) -> Served:
        served = Served(create_app(ref, client, **options), started=started)
        opened.append(served)
        return served

    yield start
    for served in opened:
        served.close()
