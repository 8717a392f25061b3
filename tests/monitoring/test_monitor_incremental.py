"""Incremental windows (per-part summaries) against the row-based computation on real collected Parquet files:
15-minute windows splitting hours, a 2-hour window across a compaction, late parts, parts never read twice, a
lost state rebuilt; and the summaries' own bounds (latency percentiles, estimation sums)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mloop
from mloop.artifacts.collected import FEEDBACK, REQUESTS, CollectedRoot, hour_of
from mloop.artifacts.compaction import compact_endpoint
from mloop.monitoring.estimation import estimate_performance
from mloop.monitoring.estimation_sums import estimation_sums
from mloop.monitoring.incremental import Accumulator
from mloop.monitoring.latency import GROWTH, LOW, RELATIVE_ERROR, latency_histogram
from mloop.monitoring.monitors import _proba_fn, create_monitor, load_sketch, run_monitor
from mloop.tracking.client import Client

HOUR_MS = 3_600_000
MIN_MS = 60_000
T0 = 1_700_000_000_000 // (2 * HOUR_MS) * (2 * HOUR_MS)  # a 2-hour boundary in the past (UTC ms)


# ------------------------------------------------------------------------------------------------ pure sums
@pytest.mark.parametrize("seed", range(4))
def test_latency_percentiles_within_the_documented_bound_and_add_up(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(mean=seed - 1.0, sigma=1.5, size=20_000)
    parts = np.array_split(x, 7)
    merged = latency_histogram(parts[0])
    for p in parts[1:]:
        merged = merged + latency_histogram(p)
    assert np.array_equal(merged.counts, latency_histogram(x).counts)
    qs = [0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0]
    for got, exact in zip(merged.percentiles(qs), np.percentile(x, qs), strict=True):
        below = LOW * GROWTH if exact < LOW * GROWTH else 0.0  # under LOW ms: an absolute bound
        assert abs(got - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9) + below
    assert RELATIVE_ERROR < 0.005


@pytest.mark.parametrize(("k", "given"), [(2, False), (2, True), (4, False), (4, True)])
def test_estimation_sums_equal_the_row_based_estimate(k: int, given: bool) -> None:
    rng = np.random.default_rng(k + 10 * given)
    proba = rng.dirichlet(np.ones(k) * 0.7, size=6000)
    classes = list(range(k))
    prediction = rng.integers(0, k, 6000) if given else None  # collected predictions need not be the argmax
    rows = estimate_performance(proba, prediction, classes=classes)
    chunks = np.array_split(np.arange(6000), 5)
    sums = None
    for c in chunks:
        part = estimation_sums(proba[c], None if prediction is None else prediction[c], classes, with_auc=k == 2)
        sums = part if sums is None else sums + part
    assert sums is not None and sums.scored == 6000
    for name in ("accuracy", "f1") + (("roc_auc",) if k == 2 else ()):
        m, bound = sums.metric(name)
        exact = rows.metrics[name]
        if name == "roc_auc":  # binned scores: within the reported bound, which is small
            assert abs(m.value - exact.value) <= bound + 1e-12 and bound < 1e-3
            assert m.sd == pytest.approx(exact.sd, rel=0.02)
        else:
            assert bound == 0.0
            assert m.value == pytest.approx(exact.value, rel=1e-12)
            assert m.sd == pytest.approx(exact.sd, rel=1e-9)
            assert (m.low, m.high) == pytest.approx((exact.low, exact.high), rel=1e-9)


# ------------------------------------------------------------------------------------------------ end to end
def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame({"a": rng.normal(shift, 1.0, n), "b": rng.normal(0.0, 1.0, n)})


class Traffic:
    """An endpoint's collected traffic written part by part, as the collector does."""

    def __init__(self, client: Client, model: Any) -> None:
        self.root = CollectedRoot(client.artifacts.uri)
        self.model = model
        self.rng = np.random.default_rng(1)
        self.parts = 0

    def part(self, start_ms: int, span_ms: int, n: int = 150, shift: float = 0.0) -> None:
        x = _frame(self.rng, n, shift)
        ts = start_ms * 1000 + np.sort(self.rng.integers(0, span_ms * 1000, n))
        ids = [f"p{self.parts}-{i}" for i in range(n)]
        self.parts += 1
        status = np.where(self.rng.random(n) < 0.03, 500, np.where(self.rng.random(n) < 0.02, 422, 200))
        self.root.write_table(REQUESTS, "ep", hour_of(int(ts[0])), pa.table({
            "request_id": ids, "row": np.zeros(n, np.int64), "endpoint": ["ep"] * n, "model": ["model:clf/1"] * n,
            "role": np.where(self.rng.random(n) < 0.05, "shadow", "live"),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "latency_ms": self.rng.lognormal(0, 0.6, n),
            "status": status.astype(np.int32), "input.a": x["a"], "input.b": x["b"],
            "prediction": self.model.predict(x),
        }))  # fmt: skip
        k = n // 3
        truth = ((x["a"] + x["b"]) > 0.3).astype(int).to_numpy()[:k]
        fb_ts = ts[:k] + int(self.rng.integers(1, 20 * MIN_MS)) * 1000  # labels arrive 1 ms to 20 min later
        self.root.write_table(FEEDBACK, "ep", hour_of(int(fb_ts[0])), pa.table({
            "request_id": ids[:k], "row": np.zeros(k, np.int64), "ground_truth": truth,
            "ts": pa.array(fb_ts, pa.timestamp("us", tz="UTC")), "endpoint": ["ep"] * k,
        }))  # fmt: skip


@pytest.fixture
def traffic(client: Client) -> Traffic:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    train = _frame(rng, 4000, 0.0)
    y = ((train["a"] + train["b"]) > 0).astype(int)
    with mloop.start_run("fit") as run:
        run.log_model(LogisticRegression().fit(train, y), "clf", signature_data=train)
    folder = client.workspace.settings.local_dir / "train"
    folder.mkdir()
    train.assign(label=y).to_parquet(folder / "train.parquet")
    mloop.Dataset.add(folder, "train", client=client)
    client.store.create_endpoint("ep", spec={"traffic": [{"model": "model:clf/1", "weight": 100.0}]}, actor="t")
    return Traffic(client, mloop.load_model("model:clf/1").raw)


def _spec(every: str, incremental: bool, metric: str = "accuracy") -> dict[str, Any]:
    return {"endpoint": "ep", "reference": {"dataset": "data:train/1", "target": "label"}, "window": {"every": every},
            "estimated": {"rescore": True, "sample": 10**9, "metric": metric}, "incremental": incremental,
            "alerts": {"notify": []}, "performance": {"metric": "f1"}}  # fmt: skip


def _same(client: Client, incremental: str, rows: str) -> int:
    got = {(r.window_start, r.signal, r.feature): r for r in client.store.list_monitor_results(incremental)}
    want = {(r.window_start, r.signal, r.feature): r for r in client.store.list_monitor_results(rows)}
    assert set(got) == set(want) and want
    for key, w in want.items():
        g = got[key]
        assert (g.rows, g.status) == (w.rows, w.status), key
        if w.value is None:
            assert g.value is None, key
        elif key[1].startswith("latency"):
            assert abs(g.value - w.value) <= RELATIVE_ERROR * w.value * (1 + 1e-9), key  # type: ignore[operator]
        elif key[1] == "estimated_roc_auc":
            assert abs(g.value - w.value) <= g.detail["error_bound"] + 1e-12, key  # type: ignore[operator]
        else:
            assert g.value == pytest.approx(w.value, rel=1e-9, abs=1e-12), key
            for name in ("p_value", "ci_low", "ci_high", "rows_in_window"):
                if w.detail.get(name) is not None:
                    assert g.detail[name] == pytest.approx(w.detail[name], rel=1e-9, abs=1e-12), (key, name)
    return len({k[0] for k in want})


def test_windows_from_summaries_equal_the_row_based_ones(client: Client, traffic: Traffic) -> None:
    """15-minute windows split every hour; a 2-hour window stays open across a compaction of its first hour
    that merges absorbed parts with a late one; every result equals the row-based twin's, run at the same times."""
    monitors = [("q", "15m", "accuracy"), ("h", "2h", "f1"), ("auc", "15m", "roc_auc")]
    for name, every, metric in monitors:
        create_monitor(client, name, _spec(every, True, metric))
        create_monitor(client, f"{name}-rows", _spec(every, False, metric))

    def run_all(now: int) -> None:
        for name, _, _ in monitors:
            assert [w["window_start"] for w in run_monitor(client, name, now=now)] == [
                w["window_start"] for w in run_monitor(client, f"{name}-rows", now=now)
            ]

    for minute in range(0, 120, 5):  # a part every 5 minutes, the monitors run after each
        traffic.part(T0 + minute * MIN_MS, 5 * MIN_MS, shift=1.5 if minute >= 60 else 0.0)
        if minute == 50:
            traffic.part(T0 + 46 * MIN_MS, 2 * MIN_MS)  # late: rows of the window before the open one's part
        run_all(T0 + (minute + 5) * MIN_MS + 10_000)
        if minute == 65:
            traffic.part(T0 + 10 * MIN_MS, 5 * MIN_MS)  # a late part of hour 0, never absorbed, then compacted
            assert compact_endpoint(client.artifacts.uri, "ep", settle=0, now=(T0 + 70 * MIN_MS) / 1000) > 0
    run_all(T0 + 3 * HOUR_MS)
    assert _same(client, "q", "q-rows") == 9  # 8 with traffic, then the idle one
    assert _same(client, "h", "h-rows") == 1
    assert _same(client, "auc", "auc-rows") == 9
    results = client.store.list_monitor_results("h")
    assert any(r.signal == "data_drift" and r.status == "breach" for r in results)


def test_a_part_is_read_once_and_a_compacted_file_not_again(client: Client, traffic: Traffic) -> None:
    create_monitor(client, "m", _spec("2h", True))
    monitor = client.store.get_monitor("m")
    sketch = load_sketch(client, monitor)
    for minute in range(0, 60, 10):
        traffic.part(T0 + minute * MIN_MS, 10 * MIN_MS)
    acc = Accumulator(client, monitor, sketch, _proba_fn(client, monitor))
    assert acc.absorb(T0, T0 + 61 * MIN_MS)
    assert acc.absorbed == 12  # 6 request parts and 6 feedback parts
    again = Accumulator(client, monitor, sketch, None)
    assert again.absorb(T0, T0 + 62 * MIN_MS) and again.absorbed == 0
    compact_endpoint(client.artifacts.uri, "ep", settle=0, now=(T0 + 2 * HOUR_MS) / 1000)
    after = Accumulator(client, monitor, sketch, None)
    assert after.absorb(T0, T0 + 63 * MIN_MS) and after.absorbed == 0  # merged files hold absorbed parts only
    results, rows = after.results(T0, T0 + 2 * HOUR_MS)
    total = sum(r.rows for r in results if r.signal == "request_rate")
    assert rows == acc.results(T0, T0 + 2 * HOUR_MS)[1] and total > 0


@pytest.mark.parametrize("lose", ["state", "labels"])
def test_a_lost_state_is_rebuilt_without_counting_twice(
    client: Client, traffic: Traffic, monkeypatch: pytest.MonkeyPatch, lose: str
) -> None:
    monkeypatch.setattr("mloop.monitoring.incremental._GROUP", 2)  # parts summarised a few at a time
    for name, inc in (("m", True), ("m-rows", False)):
        create_monitor(client, name, _spec("1h", inc))
    for minute in range(0, 60, 10):
        traffic.part(T0 + minute * MIN_MS, 10 * MIN_MS)
        run_monitor(client, "m", now=T0 + (minute + 10) * MIN_MS - 1)
    fs, base = CollectedRoot(client.artifacts.uri).filesystem()
    [state] = fs.glob(f"{base}/monitors/m/incremental/*/state.json")
    if lose == "state":
        fs.rm(state)  # as if the state had never been published: its parts are absorbed again, once
    else:  # a file the state names is gone (a racing run removed it): the state is rebuilt from the parts
        [labels] = fs.glob(f"{base}/monitors/m/incremental/*/labels-*")
        fs.rm(labels)
    for name in ("m", "m-rows"):
        assert len(run_monitor(client, name, now=T0 + HOUR_MS + 10_000)) == 1
    assert _same(client, "m", "m-rows") == 1
    assert not math.isnan(client.store.list_monitor_results("m")[0].value or 0.0)
