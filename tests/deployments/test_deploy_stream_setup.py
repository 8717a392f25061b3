"""What a consumer sets up on its own: NATS streams for subjects no stream captures, the Redis group and the
entry field; a broker that is not there fails the start with a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from streamkit import NATS_URL, REDIS_URL, Consumer, RedisBroker

import mloop
from mloop.deployments.router import Router
from mloop.deployments.stream_nats import stream_name
from mloop.deployments.streaming import run_stream
from mloop.errors import StoreUnavailable


@pytest.fixture
def lr(client: Any) -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame(np.random.default_rng(7).normal(size=(50, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(x, x["a"] > 0)
    with mloop.start_run("lr") as run:
        run.log_model(model, "lr", signature_data=x)
    return model, x


def test_nats_creates_the_input_and_output_streams_when_none_captures_them(client: Any, lr: Any) -> None:
    import nats

    model, x = lr
    subject = f"auto{uuid.uuid4().hex[:10]}.events"
    names = [stream_name(subject), stream_name(subject + ".predictions")]

    async def publish_and_read(n: int) -> list[dict[str, Any]]:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        for row in x.to_dict("records"):
            await js.publish(subject, orjson.dumps(row))  # acknowledged: the stream exists
        for _ in range(200):
            if (await js.stream_info(names[1])).state.messages >= n:
                break
            await asyncio.sleep(0.02)
        sub = await js.pull_subscribe(subject + ".predictions", stream=names[1])
        out = [orjson.loads(m.data) for m in await sub.fetch(n, timeout=5)]
        await nc.close()
        return out

    async def delete() -> None:
        nc = await nats.connect(NATS_URL)
        for name in names:
            with contextlib.suppress(Exception):  # not created if the consumer failed early
                await nc.jetstream().delete_stream(name)
        await nc.close()

    try:
        consumer = Consumer(client, f"{NATS_URL}/{subject}", lambda: Router({"model:lr/1": 1}))
        try:
            outputs = asyncio.run(publish_and_read(len(x)))
        finally:
            consumer.close()
    finally:
        asyncio.run(delete())
    assert [o["prediction"] for o in outputs] == list(model.predict(x))


def test_redis_field_option_and_entries_without_the_field(client: Any, lr: Any) -> None:
    model, x = lr
    broker = RedisBroker()
    try:
        consumer = Consumer(client, broker.url(field="payload"), lambda: Router({"model:lr/1": 1}))
        try:
            broker.publish([orjson.dumps(r) for r in x.head(3).to_dict("records")], field="payload")
            broker.r.xadd(broker.subject, {"other": b"{}"})
            for _ in range(200):
                if broker.r.xlen(broker.out) >= 4:
                    break
                threading.Event().wait(0.02)
            outputs = [orjson.loads(f[b"payload"]) for _, f in broker.r.xrange(broker.out)]
        finally:
            consumer.close()
        assert [o["prediction"] for o in outputs[:3]] == list(model.predict(x.head(3)))
        assert "no field 'payload'" in outputs[3]["error"]["message"] and "'other'" in outputs[3]["error"]["message"]
        assert broker.pending("mloop-ep") == 0
    finally:
        broker.close()


@pytest.mark.parametrize("url", ["nats://127.0.0.1:1/s", "redis://127.0.0.1:1/s"])
def test_an_unreachable_broker_fails_the_start(client: Any, lr: Any, url: str) -> None:
    ready = threading.Event()
    with pytest.raises(StoreUnavailable) as info:
        run_stream(client, url, endpoint="ep", router_provider=lambda: Router({"model:lr/1": 1}),
                   stop=threading.Event(), ready=ready)  # fmt: skip
    assert "127.0.0.1:1" in str(info.value)
    assert not ready.is_set()


def test_a_version_that_cannot_be_loaded_fails_the_start(client: Any, lr: Any) -> None:
    from mloop.errors import NotFound

    with pytest.raises(NotFound):
        run_stream(client, f"{REDIS_URL}/never-{uuid.uuid4().hex}", endpoint="ep",
                   router_provider=lambda: Router({"model:lr/9": 1}), stop=threading.Event())  # fmt: skip
