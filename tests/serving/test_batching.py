"""Micro-batching, the bounded queue (503 + Retry-After) and /metrics, through the real app in process."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import numpy as np
import pytest

import mloop
from mloop.errors import InvalidInput
from mloop.serving.batching import BatchConfig
from mloop.tracking.client import Client


def _metric(text: str, name: str, labels: str = "") -> float:
    """The value of one series in Prometheus' text format (0 when absent)."""
    pattern = re.escape(name) + (r"\{" + labels + r"[^}]*\}" if labels else r"(\{[^}]*\})?") + r" ([0-9.e+-]+)"
    found = re.findall(pattern, text)
    if not found:
        return 0.0
    last = found[-1]
    return float(last[-1] if isinstance(last, tuple) else last)


def _concurrently(tc: Any, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        return list(await asyncio.gather(*(tc.http.post(url, **kw) for url, kw in requests)))

    return tc.portal.call(send_all)


def _slow_scorer(tmp_path: Any, seconds: float) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "score.py").write_text(
        "import time\n\ndef init():\n    pass\n\n"
        f"def run(data):\n    time.sleep({seconds})\n    return [1] * len(data)\n"
    )
    mloop.register_model(folder, "slow")


def test_concurrent_single_rows_share_predict_calls_and_get_their_own_answers(
    client: Client, matrix: Any, serve: Any
) -> None:
    model, x = matrix
    tc = serve("model:matrix/1", batching=BatchConfig(max_rows=64, max_wait=0.05))
    rows = x[:40]
    answers = _concurrently(tc, [("/predict", {"json": [list(map(float, row))]}) for row in rows])
    assert [r.status_code for r in answers] == [200] * 40
    assert [r.json()["predictions"][0] for r in answers] == model.predict(rows).tolist()
    text = tc.get("/metrics").text
    calls = _metric(text, "mloop_batch_rows_count")
    assert _metric(text, "mloop_batch_rows_sum") == 40
    assert 1 <= calls <= 20, f"40 concurrent requests took {calls} predict calls: not batched"


def test_batching_off_scores_each_request_alone(client: Client, matrix: Any, serve: Any) -> None:
    model, x = matrix
    tc = serve("model:matrix/1", batching=BatchConfig(max_rows=1))
    answers = _concurrently(tc, [("/predict", {"json": [list(map(float, row))]}) for row in x[:10]])
    assert [r.json()["predictions"][0] for r in answers] == model.predict(x[:10]).tolist()
    assert _metric(tc.get("/metrics").text, "mloop_batch_rows_count") == 10


def test_a_combined_batch_respects_max_rows_and_mixes_outputs_correctly(
    client: Client, matrix: Any, serve: Any
) -> None:
    model, x = matrix
    tc = serve("model:matrix/1", batching=BatchConfig(max_rows=8, max_wait=0.05))
    requests = []
    for i in range(24):
        body = [list(map(float, row)) for row in x[i * 3 : i * 3 + 3]]
        requests.append(("/predict", {"json": body, "params": {"proba": "true" if i % 2 else "false"}}))
    answers = _concurrently(tc, requests)
    for i, r in enumerate(answers):
        assert r.status_code == 200, r.text
        rows = x[i * 3 : i * 3 + 3]
        if i % 2:
            assert np.allclose(r.json()["probabilities"], model.predict_proba(rows))
        else:
            assert r.json()["predictions"] == model.predict(rows).tolist()
    text = tc.get("/metrics").text
    assert _metric(text, "mloop_batch_rows_bucket", 'le="8.0"') == _metric(text, "mloop_batch_rows_count")
    assert _metric(text, "mloop_batch_rows_count") < 24


def test_one_refused_request_in_a_batch_does_not_fail_the_others(client: Client, churn: Any, serve: Any) -> None:
    model, x = churn
    tc = serve("model:churn/1", batching=BatchConfig(max_wait=0.05))
    good = [{"age": int(a), "income": float(i), "plan": p} for a, i, p in x[:9].itertuples(index=False)]
    bodies = [*good[:4], {"age": 30, "income": 1.0, "plan": "gold"}, *good[4:]]  # 'gold' was never seen
    answers = _concurrently(tc, [("/predict", {"json": [b]}) for b in bodies])
    assert answers[4].status_code == 422 and "refused the input" in answers[4].json()["error"]["message"]
    ok = [r for i, r in enumerate(answers) if i != 4]
    assert [r.status_code for r in ok] == [200] * 9
    assert [r.json()["predictions"][0] for r in ok] == model.predict(x[:9]).tolist()


def test_a_full_queue_sheds_with_503_and_retry_after(client: Client, serve: Any, tmp_path: Any) -> None:
    _slow_scorer(tmp_path, 0.05)
    tc = serve("model:slow/1", batching=BatchConfig(max_queue=2, inline_rows=0))
    answers = _concurrently(tc, [("/predict", {"json": [{"a": i}]}) for i in range(30)])
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503}, statuses
    shed = [r for r in answers if r.status_code == 503]
    assert statuses.count(200) >= 2 and len(shed) >= 20, statuses
    assert all(r.headers["retry-after"] == "1" for r in shed)
    assert "the bound is 2" in shed[0].json()["error"]["message"]
    text = tc.get("/metrics").text
    assert _metric(text, "mloop_shed_requests_total") == len(shed)
    assert _metric(text, "mloop_requests_total", 'model="model:slow/1",route="predict",status="503"') == len(shed)
    assert _metric(text, "mloop_queue_depth") == 0  # everything admitted was answered
    # once the burst is over the server answers again
    assert tc.post("/predict", json=[{"a": 1}]).status_code == 200


def test_v2_inference_is_admitted_under_the_same_bound(client: Client, serve: Any, tmp_path: Any) -> None:
    _slow_scorer(tmp_path, 0.05)
    tc = serve("model:slow/1", batching=BatchConfig(max_queue=1, inline_rows=0))
    body = {"inputs": [{"name": "a", "shape": [1, 1], "datatype": "INT64", "data": [1]}]}
    answers = _concurrently(tc, [("/v2/models/slow/infer", {"json": body}) for _ in range(10)])
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 5, [r.text for r in answers]
    shed = next(r for r in answers if r.status_code == 503)
    assert shed.headers["retry-after"] == "1" and "capacity" in shed.json()["error"]


def test_metrics_count_requests_by_model_route_and_status(client: Client, matrix: Any, serve: Any) -> None:
    tc = serve("model:matrix/1")
    assert tc.post("/predict", json=[[0.1, 0.2, 0.3]]).status_code == 200
    assert tc.post("/predict", json=[[0.1, "x", 0.3]]).status_code == 422
    assert tc.post("/invocations", json={"instances": [[0.1, 0.2, 0.3]]}).status_code == 200
    r = tc.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _metric(text, "mloop_requests_total", 'model="model:matrix/1",route="predict",status="200"') == 1
    assert _metric(text, "mloop_requests_total", 'model="model:matrix/1",route="predict",status="422"') == 1
    assert _metric(text, "mloop_requests_total", 'model="model:matrix/1",route="invocations",status="200"') == 1
    assert _metric(text, "mloop_request_duration_seconds_count", 'model="model:matrix/1",route="predict"') == 2
    assert _metric(text, "mloop_request_duration_seconds_sum", 'model="model:matrix/1",route="predict"') > 0
    # the series of two apps in one process never mix
    other = serve("model:matrix/1")
    assert _metric(other.get("/metrics").text, "mloop_requests_total", 'model="model:matrix/1",route="predict"') == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_rows": 0}, "at least 1 row"),
        ({"max_wait": 2.0}, "between 0 and 1000 ms"),
        ({"max_queue": 0}, "at least 1 request"),
    ],
)
def test_bad_batch_settings_are_refused_naming_the_value(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        BatchConfig(**options)
