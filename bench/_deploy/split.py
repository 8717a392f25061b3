"""Where a request's CPU goes, measured in process (untimed by wrk, on the driver's core after the runs).

The server's CPU a request (psutil, measured under wrk) is split with three in-process figures for the same
model and body, each the median of a few repeats of ``time.process_time`` over many calls:

* ``parse_us``: ``orjson.loads`` of the body + ``parse_invocations`` (the signature check to a float row);
* ``predict_us[b]``: one scikit-learn ``predict`` call on ``b`` stacked rows (what a batch of ``b`` costs);
* ``app_us[n]``: the whole scoring app (``ScoringApp.__call__``: request id, admission, body, parse, batcher,
  predict, metrics, JSON answer) driven by ``n`` concurrent coroutines in one event loop, with no HTTP: this is
  exactly what the endpoint's shadow replay runs for each mirrored request (``EndpointApp._mirror`` calls the
  shadow's app with the live body and a ``receive`` that hands it over), minus the scope copy.

HTTP + router is then the server's CPU a request minus ``app_us``: uvicorn's parsing and writing, the
endpoint's routing and header handling, the event loop's socket work.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["cpu_split"]


def _per_call_us(fn: Callable[[], Any], calls: int, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        samples.append((time.process_time() - t0) / calls * 1e6)
    return statistics.median(samples)


async def _drive(app: Any, body: bytes, clients: int, per_client: int) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def one() -> None:
        for _ in range(per_client):
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: Any) -> None:
                return None

            scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers,
                     "query_string": b"", "mloop.role": "shadow"}  # fmt: skip
            await app(scope, receive, send)

    await asyncio.gather(*(one() for _ in range(clients)))


def _app_us(app: Any, body: bytes, clients: int, total: int, repeats: int = 5) -> tuple[float, float]:
    """CPU µs a request through the scoring app at ``clients`` concurrent callers, and the mean batch size."""
    per_client = max(1, total // clients)
    samples, batches = [], []
    for _ in range(repeats):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_drive(app, body, clients, 50))  # warm-up
            m = app.state.metrics._batch
            before = (_hist(m, "_sum"), _hist(m, "_count"))
            t0 = time.process_time()
            loop.run_until_complete(_drive(app, body, clients, per_client))
            samples.append((time.process_time() - t0) / (per_client * clients) * 1e6)
            rows, calls = _hist(m, "_sum") - before[0], _hist(m, "_count") - before[1]
            batches.append(rows / calls if calls else 0.0)
            loop.run_until_complete(app.state.batcher.close())
        finally:
            loop.close()
    return statistics.median(samples), statistics.median(batches)


def _hist(histogram: Any, suffix: str) -> float:
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith(suffix):
                return float(sample.value)
    return 0.0


def cpu_split(context: Any, ref: str, body: bytes, batch_sizes: list[int], clients: list[int]) -> dict[str, Any]:
    """The in-process figures above for version ``ref`` of ``context``."""
    import numpy as np
    import orjson

    from mloop.serving.app import create_app
    from mloop.serving.protocols.invocations import parse_invocations

    app = create_app(ref, context)
    app.state.load()
    schema, calls = app.state.schema, app.state.calls
    assert schema is not None and calls is not None and calls.predict is not None
    predict = calls.predict
    one = parse_invocations(orjson.loads(body), schema)
    out: dict[str, Any] = {"parse_us": round(_per_call_us(lambda: parse_invocations(orjson.loads(body), schema),
                                                          2000), 2)}  # fmt: skip
    out["predict_us"] = {}
    for b in batch_sizes:
        stacked = np.vstack([one] * b) if isinstance(one, np.ndarray) else one
        out["predict_us"][str(b)] = round(_per_call_us(lambda x=stacked: predict(x), 500), 2)
    out["app_us"], out["app_batch"] = {}, {}
    for n in clients:
        us, batch = _app_us(app, body, n, 4000)
        out["app_us"][str(n)], out["app_batch"][str(n)] = round(us, 2), round(batch, 2)
    out["input_type"] = type(one).__name__
    return out
