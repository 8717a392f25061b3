"""The canary's prediction guard (opt-in ``max_prediction_psi``): the index itself, and a real endpoint whose
canary answers differently from the stable version rolled back before it moves forward."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from deploy_models import Constant

import mloop
from mloop.deployments import endpoints
from mloop.deployments.divergence import prediction_shift
from mloop.deployments.rollout import RolloutPolicy
from mloop.errors import InvalidInput
from mloop.store.protocols.endpoints import DeploymentEvents
from mloop.tracking.client import Client

FAST = {"min_requests": 30, "dwell_seconds": 0.5, "p99_min_requests": 30, "fail_fast_errors": 5, "p99_slack_ms": 500}


def test_the_index_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    same = prediction_shift(rng.normal(size=5000), rng.normal(size=5000))
    assert same["psi"] < 0.02 and "deciles" in same["method"] and same["stable_rows"] == 5000
    assert prediction_shift(rng.normal(size=5000), rng.normal(0.8, 1, size=5000))["psi"] > 0.25
    labels = prediction_shift(["ok"] * 900 + ["fail"] * 100, ["ok"] * 880 + ["fail"] * 120)
    assert labels["psi"] < 0.02 and labels["method"] == "psi over 2 classes"
    flipped = prediction_shift([0] * 900 + [1] * 100, [0] * 300 + [1] * 700)
    assert flipped["psi"] > 1
    constant = prediction_shift([1.0] * 500, [1.0] * 100 + [2.0] * 400)  # values past the stable's range
    assert constant["psi"] > 1
    unseen = prediction_shift(["a"] * 500, ["a"] * 450 + ["b"] * 50)  # a class the stable never answered
    assert 0.25 < unseen["psi"] < 10
    with pytest.raises(ValueError, match="non-empty"):
        prediction_shift([], [1.0])
    with pytest.raises(InvalidInput, match="max_prediction_psi"):
        RolloutPolicy(max_prediction_psi=-1).validate()
    assert RolloutPolicy.from_dict({"max_prediction_psi": 0.2}).max_prediction_psi == 0.2


@pytest.fixture
def ws(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    for value in (1.0, 2.0):
        with mloop.start_run("c") as run:
            run.log_model(Constant(value), "c", signature_data=np.zeros((4, 2)))
    yield client
    for ep in endpoints.list_endpoints(client):
        endpoints.delete(client, ep.name)


def test_a_canary_whose_predictions_shift_is_rolled_back(ws: Client) -> None:
    endpoints.create(ws, "api", ["c/1"], policy={**FAST, "max_prediction_psi": 0.25}, flush_interval=0.2)
    endpoints.update(ws, "api", canary="c/2")  # answers 2.0 where the stable answers 1.0: no errors, fast
    url = endpoints.show(ws, "api")["url"]
    deadline = time.monotonic() + 60
    while ws.store.get_endpoint("api").spec.get("canary") and time.monotonic() < deadline:
        for _ in range(20):
            req = urllib.request.Request(url + "/predict", data=b"[[0.5, 1.5]]",
                                         headers={"content-type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(req, timeout=10) as r:
                json.loads(r.read())
    ep = ws.store.get_endpoint("api")
    assert ep.spec["traffic"] == [{"model": "model:c/1", "weight": 100.0}] and ep.spec["held_back"] == "model:c/2"
    (back,) = ws.store.list_events(subject="deployment:api", types=[DeploymentEvents.ROLLED_BACK]).items
    assert "predictions shifted" in back.payload["reason"]
    shift = back.payload["figures"]["prediction_shift"]
    assert shift["psi"] > 0.25 and shift["canary_rows"] > 0 and shift["max_psi"] == 0.25
