"""The overload test of ``bench_serve.py``: offer ``factor`` x the sustainable rate to ``mloop serve``.

The offered load is open-loop (:func:`mloop.serving.loadgen.run_load` with ``rate``): request *k* is due at
``k / rate`` whatever the server does, over ``connections`` keep-alive connections (more than the server's
queue bound, so that it has to shed). Reported: what was answered, by status; the accepted (200) and shed (503)
requests' service time (sent -> answered) and latency from when they were due; any 5xx other than 503 (must be
none) and transport errors; requests that fell due with every connection busy (``unsent``: the generator's
own backlog, dropped at the end); the server's RSS sampled every ``sample_every`` seconds; and whether the server
answers normally right after.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mloop.serving.loadgen import generate_load


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def overload(server: Any, body: bytes, sustainable: float, *, factor: float = 10.0, duration: float = 15.0,
             connections: int = 1024, sample_every: float = 0.5) -> dict[str, Any]:  # fmt: skip
    rate = sustainable * factor
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((round(time.monotonic() - began, 2), server.rss()))
            stop.wait(sample_every)

    rss_before = server.rss()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = generate_load(server.url + "/invocations", body, concurrency=connections, duration=duration,
                               rate=rate, timeout=30)  # fmt: skip
    finally:
        stop.set()
        sampler.join()
    time.sleep(2.0)
    rss_after = server.rss()
    status, reply = server.post("/invocations", body)
    counts = result.status_counts
    service = result.latencies if result.service is None else result.service
    answered = result.requests
    other_5xx = sum(n for s, n in counts.items() if s >= 500 and s != 503)
    rss = [r for _, r in samples]
    return {
        "offered_rate": round(rate, 1), "sustainable_rate": round(sustainable, 1), "factor": factor,
        "duration": duration, "connections": connections, "answered": answered,
        "answered_per_s": round(answered / result.seconds, 1),
        "accepted_per_s": round(result.count(200) / result.seconds, 1),
        "statuses": {str(k): v for k, v in sorted(counts.items())},
        "share_503": round(result.count(503) / answered, 4) if answered else None,
        "other_5xx": other_5xx, "transport_errors": result.errors, "error_samples": list(result.error_samples),
        "unsent": result.unsent,
        "accepted_service_ms": {q: _ms(result.service_percentile(float(q[1:]), 200))
                                for q in ("p50", "p90", "p99", "p100")},
        "accepted_over_1s": int((service[result.statuses == 200] > 1.0).sum()),
        "accepted_from_due_ms": {"p50": _ms(result.percentile(50, 200)), "p99": _ms(result.percentile(99, 200))},
        "shed_service_ms": {"p50": _ms(result.service_percentile(50, 503)),
                            "p99": _ms(result.service_percentile(99, 503))},
        "rss_mib": {"before": round(rss_before / 2**20, 1), "min": round(min(rss) / 2**20, 1) if rss else None,
                    "max": round(max(rss) / 2**20, 1) if rss else None, "after": round(rss_after / 2**20, 1),
                    "series": [(t, round(r / 2**20, 1)) for t, r in samples]},
        "after_status": status, "after_reply": reply if status == 200 else str(reply)[:300],
    }  # fmt: skip
