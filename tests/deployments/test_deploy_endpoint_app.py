"""The endpoint app in process: weights, sticky routing, shadow that never answers, live spec changes without
dropped requests, feedback joined to collected rows, one metrics exposition for every version."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from deploy_models import Constant, Crashing

import mloop
from mloop.deployments.collected import read_collected
from mloop.deployments.endpoint_app import EndpointApp
from mloop.deployments.spec import canary_traffic
from mloop.serving.collector import collector_for
from mloop.tracking.client import Client

ROW = [[0.5, 1.5]]


def _register(name: str, model: Any) -> None:
    with mloop.start_run(name) as run:
        run.log_model(model, name, signature_data=np.zeros((4, 2)))


@pytest.fixture
def versions(client: Client) -> list[str]:
    """model:c/1 answers 1.0, model:c/2 answers 2.0, model:c/3 answers 3.0, model:bad/1 fails with 500."""
    for value in (1.0, 2.0, 3.0):
        _register("c", Constant(value))
    _register("bad", Crashing())
    return ["model:c/1", "model:c/2", "model:c/3", "model:bad/1"]


class Endpoint:
    """An endpoint app over httpx in this process (its spec is stored; ``refresh()`` applies a new one)."""

    def __init__(self, client: Client, spec: dict[str, Any], *, collect: bool = True) -> None:
        self.client = client
        client.store.create_endpoint("ep", spec=spec, actor="t")
        self.collector = collector_for(client, "ep", flush_interval=0.2) if collect else None
        self.app = EndpointApp(client, "ep", collector=self.collector, seed=11)
        self.app.load()
        self.portal_cm = start_blocking_portal()
        self.portal: BlockingPortal = self.portal_cm.__enter__()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://ep.test")

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.http.post(path, **kwargs))

    def get(self, path: str) -> httpx.Response:
        return self.portal.call(lambda: self.http.get(path))

    def update(self, spec: dict[str, Any]) -> None:
        current = self.client.store.get_endpoint("ep")
        self.client.store.update_endpoint("ep", spec=spec, actor="t", expected_generation=current.generation)
        assert self.portal.call(self.app.refresh)

    def close(self) -> None:
        self.portal.call(self.http.aclose)
        self.portal_cm.__exit__(None, None, None)
        if self.collector is not None:
            self.collector.close()


@pytest.fixture
def endpoint(client: Client, versions: list[str]) -> Iterator[Any]:
    opened: list[Endpoint] = []

    def make(spec: dict[str, Any], **kw: Any) -> Endpoint:
        opened.append(Endpoint(client, spec, **kw))
        return opened[-1]

    yield make
    for ep in opened:
        ep.close()


def _answer(r: httpx.Response) -> tuple[str, float]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-model-version"] == body["model"]
    return body["model"], body["predictions"][0]


def test_weights_split_traffic_and_each_answer_names_its_version(endpoint: Any) -> None:
    ep = endpoint({"traffic": [{"model": "model:c/1", "weight": 70}, {"model": "model:c/2", "weight": 30}]},
                  collect=False)  # fmt: skip
    n = 1500
    answers = [_answer(ep.post("/predict", json=ROW)) for _ in range(n)]
    twos = sum(model == "model:c/2" for model, _ in answers)
    assert abs(twos - 0.3 * n) <= 4.5 * math.sqrt(n * 0.3 * 0.7)
    assert all(value == {"model:c/1": 1.0, "model:c/2": 2.0}[model] for model, value in answers)


def test_sticky_header_pins_a_caller(endpoint: Any) -> None:
    ep = endpoint({"traffic": [{"model": "model:c/1", "weight": 50}, {"model": "model:c/2", "weight": 50}],
                   "sticky_header": "x-user"}, collect=False)  # fmt: skip
    for user in range(20):
        seen = {_answer(ep.post("/predict", json=ROW, headers={"X-User": f"u{user}"}))[0] for _ in range(10)}
        assert len(seen) == 1
    spread = {_answer(ep.post("/predict", json=ROW, headers={"X-User": f"u{u}"}))[0] for u in range(40)}
    assert spread == {"model:c/1", "model:c/2"}


def test_shadow_never_answers_and_is_collected_under_the_live_request_id(client: Client, endpoint: Any) -> None:
    ep = endpoint({"traffic": [{"model": "model:c/1", "weight": 100}],
                   "shadow": {"model": "model:c/3", "percent": 100}})  # fmt: skip
    ids = []
    for i in range(30):
        r = ep.post("/predict", json=ROW, headers={"X-Request-ID": f"req-{i}"})
        assert _answer(r) == ("model:c/1", 1.0)
        ids.append(r.headers["x-request-id"])
    ep.portal.call(asyncio.sleep, 0.2)  # let the mirrored requests finish
    ep.collector.flush()
    rows = read_collected(client, "ep").to_pylist()
    live = {r["request_id"]: r for r in rows if r["role"] == "live"}
    shadow = {r["request_id"]: r for r in rows if r["role"] == "shadow"}
    assert set(live) == set(shadow) == set(ids)
    assert {r["model"] for r in shadow.values()} == {"model:c/3"} and {r["prediction"] for r in shadow.values()} == {
        3.0
    }


def test_a_failing_shadow_never_touches_live_answers(endpoint: Any) -> None:
    ep = endpoint({"traffic": [{"model": "model:c/2", "weight": 100}],
                   "shadow": {"model": "model:bad/1", "percent": 100}}, collect=False)  # fmt: skip
    assert all(_answer(ep.post("/predict", json=ROW)) == ("model:c/2", 2.0) for _ in range(20))
    ep.portal.call(asyncio.sleep, 0.1)
    text = ep.get("/metrics").text
    assert 'mloop_requests_total{model="model:bad/1",route="predict",status="500"}' in text


def test_spec_changes_apply_live_without_dropping_requests(endpoint: Any) -> None:
    ep = endpoint({"traffic": [{"model": "model:c/1", "weight": 100}]}, collect=False)

    async def burst() -> list[int]:
        async def one() -> int:
            return (await ep.http.post("/predict", json=ROW)).status_code

        tasks = [asyncio.ensure_future(one()) for _ in range(200)]  # under the queue bound (256)
        await asyncio.sleep(0)
        await ep.app.refresh()  # the new spec lands while the burst is in flight
        return list(await asyncio.gather(*tasks))

    ep.client.store.update_endpoint("ep", spec={"traffic": canary_traffic("model:c/2", "model:c/1", 50)}, actor="t")
    assert set(ep.portal.call(burst)) == {200}
    assert {_answer(ep.post("/predict", json=ROW))[0] for _ in range(60)} == {"model:c/1", "model:c/2"}
    ep.update({"traffic": [{"model": "model:c/3", "weight": 100}]})
    assert {_answer(ep.post("/predict", json=ROW))[0] for _ in range(10)} == {"model:c/3"}
    health = ep.get("/health/ready").json()
    assert health["generation"] == 3 and health["traffic"] == {"model:c/3": 1.0}


def test_feedback_joins_collected_rows(client: Client, endpoint: Any) -> None:
    ep = endpoint({"traffic": [{"model": "model:c/1", "weight": 100}]})
    for i in range(5):
        ep.post("/predict", json=ROW, headers={"X-Request-ID": f"r{i}"})
    r = ep.post("/feedback", json={"items": [{"request_id": f"r{i}", "ground_truth": float(i % 2)} for i in range(3)]})
    assert r.status_code in (200, 202), r.text
    bad = ep.post("/feedback", json={"items": [{"ground_truth": 1}]})
    assert bad.status_code in {400, 422}
    ep.collector.flush()
    rows = {r["request_id"]: r for r in read_collected(client, "ep", with_feedback=True).to_pylist()}
    assert [rows[f"r{i}"]["ground_truth"] for i in range(5)] == [0.0, 1.0, 0.0, None, None]


def test_metrics_are_one_valid_exposition_and_unknown_paths_are_404(endpoint: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    ep = endpoint({"traffic": [{"model": "model:c/1", "weight": 50}, {"model": "model:c/2", "weight": 50}]},
                  collect=False)  # fmt: skip
    for _ in range(20):
        ep.post("/predict", json=ROW)
    families = {f.name: f for f in text_string_to_metric_families(ep.get("/metrics").text)}
    served = {s.labels["model"] for s in families["mloop_requests"].samples}
    assert served == {"model:c/1", "model:c/2"}
    depth = [tuple(sorted(s.labels.items())) for s in families["mloop_queue_depth"].samples]
    assert len(depth) == len(set(depth)) == 2  # one series per version, never a duplicate
    r = ep.post("/nope", json=ROW)
    assert r.status_code == 404 and "/predict" in r.json()["error"]["message"]
