"""Streaming scoring end to end on real brokers (NATS JetStream and Redis Streams on this machine): events in,
predictions out, bad events answered with errors, traffic split across versions, acknowledgement after publish."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from streamkit import Consumer, NatsBroker, RedisBroker, events

import mloop
from mloop.deployments.router import Router

COLUMNS = ["x0", "x1", "x2", "x3"]


@pytest.fixture(params=["nats", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    b = NatsBroker() if request.param == "nats" else RedisBroker()
    yield b
    b.close()


@pytest.fixture
def lr(client: Any) -> tuple[Any, Any, pd.DataFrame]:
    """Two registered logistic regressions on named float columns: model:lr/1 and model:lr/2 (opposite)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(400, 4)), columns=COLUMNS)
    y = (x["x0"] + x["x1"] > 0).astype(int)
    one, two = LogisticRegression().fit(x, y), LogisticRegression().fit(x, 1 - y)
    for model in (one, two):
        with mloop.start_run("lr") as run:
            run.log_model(model, "lr", signature_data=x)
    return one, two, x


def _by_id(outputs: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {o["id"]: o for o in outputs}


def test_predictions_match_the_model_and_events_are_acknowledged(client: Any, broker: Any, lr: Any) -> None:
    one, _, x = lr
    consumer = Consumer(client, broker.url(key="id", batch=128, proba="true"), lambda: Router({"model:lr/1": 1}))
    try:
        broker.publish(events(x))
        outputs = _by_id(broker.read(len(x)))
    finally:
        consumer.close()
    assert len(outputs) == len(x)
    expected, proba = one.predict(x), one.predict_proba(x)
    for i in range(len(x)):
        out = outputs[f"e{i}"]
        assert out["model"] == "model:lr/1"
        assert out["prediction"] == expected[i]
        assert out["probabilities"]["1"] == pytest.approx(proba[i, 1])
    assert broker.pending("mloop-ep") == 0  # every event acknowledged after its prediction was stored
    assert consumer.value("mloop_stream_events_scored_total", model="model:lr/1") == len(x)
    assert consumer.value("mloop_stream_predictions_published_total") == len(x)


def test_bad_events_get_error_messages_and_never_stop_the_stream(client: Any, broker: Any, lr: Any) -> None:
    one, _, x = lr
    good = [{"id": f"g{i}", **row} for i, row in enumerate(x.head(5).to_dict("records"))]
    bad = {
        "b-json": b'{"x0": 1.0, ',
        "b-array": b"[1, 2, 3, 4]",
        "b-type": orjson.dumps({"id": "b-type", "x0": "high", "x1": 0.0, "x2": 0.0, "x3": 0.0}),
        "b-missing": orjson.dumps({"id": "b-missing", "x0": 1.0, "x1": 0.0, "x2": 0.0}),
        "b-extra": orjson.dumps({"id": "b-extra", "x0": 1.0, "x1": 0.0, "x2": 0.0, "x3": 0.0, "x9": 1}),
    }
    payloads = [orjson.dumps(good[0]), *bad.values(), *(orjson.dumps(g) for g in good[1:])]
    consumer = Consumer(client, broker.url(key="id"), lambda: Router({"model:lr/1": 1}))
    try:
        broker.publish(payloads)
        first = broker.read(len(payloads))
        broker.publish(events(x.head(3), start=1000))  # the stream goes on after them
        outputs = broker.read(len(payloads) + 3)
    finally:
        consumer.close()
    assert len(first) == len(payloads)
    by_id = _by_id(outputs)
    errors = [o for o in outputs if "error" in o]
    assert len(errors) == 5
    assert by_id["b-type"]["error"]["field"] == "x0" and "'high'" in by_id["b-type"]["error"]["message"]
    assert by_id["b-missing"]["error"]["field"] == "x3"
    assert "x9" in by_id["b-extra"]["error"]["message"]
    messages = " ".join(e["error"]["message"] for e in errors)
    assert "not valid JSON" in messages and "JSON list" in messages
    expected = one.predict(x.head(5))
    assert [by_id[f"g{i}"]["prediction"] for i in range(5)] == list(expected)
    assert all(f"e{i}" in by_id for i in range(1000, 1003))
    assert consumer.value("mloop_stream_errors_total", kind="event") == 5
    assert broker.pending("mloop-ep") == 0


def test_traffic_split_sticky_keys_and_live_weight_changes(client: Any, broker: Any, lr: Any) -> None:
    _, _, x = lr
    router = [Router({"model:lr/1": 70, "model:lr/2": 30}, seed=1)]
    consumer = Consumer(client, broker.url(key="id", batch=500), lambda: router[0])
    rows = x.to_dict("records")
    n = 3000
    try:
        broker.publish([orjson.dumps({"id": f"k{i % 600}", **rows[i % len(rows)]}) for i in range(n)])
        outputs = broker.read(n)
        router[0] = Router({"model:lr/2": 1})  # applies from the next batch on
        broker.publish([orjson.dumps({"id": f"after{i}", **rows[i]}) for i in range(50)])
        after = broker.read(n + 50)[n:]
    finally:
        consumer.close()
    assert len(outputs) == n
    share = Counter(o["model"] for o in outputs)["model:lr/1"] / n
    assert abs(share - 0.7) < 5 * (0.7 * 0.3 / 600) ** 0.5  # 600 distinct keys decide the split
    versions_of: dict[str, set[str]] = {}
    for o in outputs:
        versions_of.setdefault(o["id"], set()).add(o["model"])
    assert all(len(v) == 1 for v in versions_of.values())  # the same key always reaches the same version
    assert {o["model"] for o in after} == {"model:lr/2"}


def test_envelope_events_and_transport_ids(client: Any, broker: Any, lr: Any) -> None:
    one, _, x = lr
    rows = x.head(4).to_dict("records")
    payloads = [orjson.dumps({"id": "env-0", "inputs": rows[0]}), orjson.dumps(rows[1]),
                orjson.dumps({"inputs": rows[2]}), orjson.dumps({"id": "env-3", "inputs": rows[3]})]  # fmt: skip
    consumer = Consumer(client, broker.url(), lambda: Router({"model:lr/1": 1}))
    try:
        broker.publish(payloads)
        outputs = broker.read(4)
    finally:
        consumer.close()
    assert [o["prediction"] for o in outputs] == list(one.predict(x.head(4)))
    assert outputs[0]["id"] == "env-0" and outputs[3]["id"] == "env-3"
    assert outputs[1]["id"] == outputs[1]["source"] and outputs[2]["id"] == outputs[2]["source"]
    assert len({o["source"] for o in outputs}) == 4


def test_collector_records_live_and_shadow_rows(client: Any, broker: Any, lr: Any) -> None:
    from mloop.deployments.collected import read_collected
    from mloop.serving.collector import collector_for

    one, two, x = lr
    collector = collector_for(client, "ep")
    router = Router({"model:lr/1": 1}, shadow="model:lr/2", shadow_percent=100)
    consumer = Consumer(client, broker.url(key="id", batch=64), lambda: router, collector=collector)
    try:
        broker.publish(events(x.head(100)))
        outputs = broker.read(100)
    finally:
        consumer.close()
        collector.close()
    assert {o["model"] for o in outputs} == {"model:lr/1"}  # the shadow never answers
    table = read_collected(client, "ep").to_pandas()
    live, shadow = table[table["role"] == "live"], table[table["role"] == "shadow"]
    assert sorted(live["request_id"]) == sorted(shadow["request_id"]) == sorted(f"e{i}" for i in range(100))
    assert set(live["model"]) == {"model:lr/1"} and set(shadow["model"]) == {"model:lr/2"}
    order = [int(i[1:]) for i in live["request_id"]]
    assert list(live["prediction"]) == list(one.predict(x.iloc[order]))
    assert list(live["input.x0"]) == pytest.approx(list(x["x0"].iloc[order]))
    order = [int(i[1:]) for i in shadow["request_id"]]
    assert list(shadow["prediction"]) == list(two.predict(x.iloc[order]))
