"""Monitors end to end on real collected Parquet files: windows computed once each (incrementally), drift per
feature, dataset drift, quality, live performance from feedback, technical signals, damped alerts delivered to a
real local webhook receiver, and a receiver that fails never blocking monitoring."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mloop
from mloop.artifacts.collected import FEEDBACK, REQUESTS, CollectedRoot, hour_of
from mloop.errors import InvalidInput
from mloop.monitoring.monitors import create_monitor, run_monitor, set_paused
from mloop.tracking.client import Client

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000 // HOUR_MS * HOUR_MS  # an hour boundary in the past (UTC ms)


class Receiver:
    """A real HTTP server on loopback that records POSTed JSON (or answers 500 when ``fail``)."""

    def __init__(self, fail: bool = False) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if fail:
                    self.send_response(500)
                else:
                    received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"a": rng.normal(shift, 1.0, n), "b": rng.normal(0.0, 1.0, n),
                         "plan": rng.choice(["basic", "pro"], n)})  # fmt: skip


def _labels(x: pd.DataFrame) -> np.ndarray:
    return ((x["a"] + x["b"]) > 0).astype(int).to_numpy()


@pytest.fixture
def setup(client: Client) -> dict[str, Any]:
    """A model on (a, b), its training dataset version, an endpoint record, and three hours of collected traffic:
    hour 0 like training, hours 1 and 2 with ``a`` shifted by +2 (and the model no longer right about them)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    train = _frame(rng, 3000)
    y = _labels(train)
    model = LogisticRegression().fit(train[["a", "b"]], y)
    with mloop.start_run("fit") as run:
        run.log_model(model, "clf", signature_data=train[["a", "b"]])
    folder = client.workspace.settings.local_dir / "train"
    folder.mkdir()
    train[["a", "b"]].assign(label=y).to_parquet(folder / "train.parquet")
    mloop.Dataset.add(folder, "train", client=client)
    client.store.create_endpoint("ep", spec={"traffic": [{"model": "model:clf/1", "weight": 100.0}]}, actor="t")
    root = CollectedRoot(client.artifacts.uri)
    for hour in range(3):
        x = _frame(rng, 1200, shift=0.0 if hour == 0 else 2.0)
        ts = (T0 + hour * HOUR_MS) * 1000 + np.sort(rng.integers(0, HOUR_MS * 1000, len(x)))
        ids = [f"h{hour}-{i}" for i in range(len(x))]
        status = np.where(np.arange(len(x)) < (60 if hour == 2 else 0), 500, 200).astype(np.int32)
        table = pa.table({
            "request_id": ids, "row": np.zeros(len(x), np.int64), "endpoint": ["ep"] * len(x),
            "model": ["model:clf/1"] * len(x), "role": ["live"] * len(x),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "latency_ms": rng.uniform(0.5, 3.0, len(x)),
            "status": status, "input.a": x["a"], "input.b": x["b"],
            "prediction": model.predict(x[["a", "b"]]),
        })  # fmt: skip
        root.write_table(REQUESTS, "ep", hour_of(int(ts[0])), table)
        labelled = slice(0, 400)  # ground truth for a third of the rows, sent later
        truth = _labels(x)
        feedback = pa.table({"request_id": ids[labelled], "row": np.zeros(400, np.int64),
                             "ground_truth": truth[labelled], "ts": pa.array(ts[labelled] + 10**9,
                             pa.timestamp("us", tz="UTC")), "endpoint": ["ep"] * 400})  # fmt: skip
        root.write_table(FEEDBACK, "ep", hour_of(int(ts[0]) + 10**9), feedback)
    return {"model": model}


def _spec(url: str, **extra: Any) -> dict[str, Any]:
    return {"endpoint": "ep", "reference": {"dataset": "data:train/1", "target": "label"}, "window": {"every": "1h"},
            "performance": {"min": 0.9}, "alerts": {"consecutive": 2, "notify": [{"type": "webhook", "url": url}]},
            **extra}  # fmt: skip


def test_windows_signals_alerts_and_webhook(client: Client, setup: dict[str, Any], receiver: Receiver) -> None:
    made = create_monitor(client, "churn", _spec(receiver.url))
    assert made.spec["reference"]["model"] == "model:clf/1" and made.spec["features"] == ["a", "b"]
    assert made.spec["reference"]["task"] == "classification"
    later = T0 + 3 * HOUR_MS + 10_000
    windows = run_monitor(client, "churn", now=later)
    assert [w["window_start"] for w in windows] == [T0, T0 + HOUR_MS, T0 + 2 * HOUR_MS]
    assert run_monitor(client, "churn", now=later) == []  # each window once: the cursor moved past them
    results = client.store.list_monitor_results("churn")
    by = {(r.window_start, r.signal, r.feature): r for r in results}
    assert by[(T0, "data_drift", "a")].status == "ok" and by[(T0, "data_drift", "b")].status == "ok"
    assert by[(T0 + HOUR_MS, "data_drift", "a")].status == "breach"
    assert by[(T0 + HOUR_MS, "data_drift", "b")].status == "ok"
    assert by[(T0 + HOUR_MS, "data_drift", "a")].detail["method"] == "wasserstein"
    assert by[(T0 + HOUR_MS, "dataset_drift", "")].value == 0.5
    assert by[(T0, "prediction_drift", "prediction")].status == "ok"
    accuracy = by[(T0, "accuracy", "")]
    assert accuracy.rows == 400 and accuracy.value > 0.95 and accuracy.status == "ok"
    assert by[(T0 + HOUR_MS, "accuracy", "")].status == "ok"  # the model still knows (a + b > 0): a is shifted
    estimated = by[(T0, "estimated_accuracy", "")]  # from predict_proba on the window's inputs, no labels needed
    assert estimated.rows == 1200 and abs(estimated.value - accuracy.value) < 0.05
    assert by[(T0 + 2 * HOUR_MS, "error_rate", "")].value == pytest.approx(60 / 1200)
    assert by[(T0 + 2 * HOUR_MS, "error_rate", "")].status == "ok"  # 5.0% is not past 5%
    assert by[(T0, "request_rate", "")].value == pytest.approx(1200 / 3600)
    assert by[(T0, "missing_rate", "a")].value == 0.0
    # damping: a's drift breached in hours 1 and 2, so its alert opened at hour 2 (2 consecutive windows)
    opened = {(a.signal, a.feature): a for a in client.store.list_monitor_alerts("churn", state="open")}
    assert set(opened) == {
        ("data_drift", "a"),
        ("dataset_drift", ""),
        ("prediction_drift", "prediction"),
        ("out_of_range", "a"),
    }  # a + 2 leaves the reference's range for about 7% of rows
    assert opened[("data_drift", "a")].windows == 1 and by[(T0 + HOUR_MS, "prediction_drift", "prediction")].detail[
        "method"] == "jensenshannon"  # fmt: skip
    events = client.store.list_events(subject="monitor:churn", types=["monitor.alert"]).items
    assert sorted(e.payload["signal"] for e in events) == ["data_drift", "dataset_drift", "out_of_range",
                                                           "prediction_drift"]  # fmt: skip
    assert {e.payload["state"] for e in events} == {"opened"}
    assert {e.payload["figures"]["window_start"] for e in events} == {T0 + 2 * HOUR_MS}
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    while len(receiver.received) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    got = {(b["state"], b["signal"], b["feature"]): b for b in receiver.received}
    assert set(got) == {("opened", "data_drift", "a"), ("opened", "dataset_drift", ""),
                        ("opened", "prediction_drift", "prediction"), ("opened", "out_of_range", "a")}  # fmt: skip
    assert got[("opened", "data_drift", "a")]["monitor"] == "churn"
    assert got[("opened", "data_drift", "a")]["figures"]["value"] > 0.1
    # an idle endpoint: only the latest due window is computed, showing no traffic (not one per empty hour)
    [idle] = run_monitor(client, "churn", now=T0 + 10 * HOUR_MS + 10_000)
    assert (idle["window_start"], idle["rows"]) == (T0 + 9 * HOUR_MS, 0)
    rate = client.store.list_monitor_results("churn", since=T0 + 9 * HOUR_MS, signal="request_rate")
    assert [r.value for r in rate] == [0.0]


def test_a_failing_receiver_never_blocks_monitoring(client: Client, setup: dict[str, Any]) -> None:
    bad = Receiver(fail=True)
    try:
        spec = _spec(bad.url)
        spec["alerts"]["notify"] = [{"type": "webhook", "url": bad.url, "retries": 2, "timeout": 1}]
        create_monitor(client, "m", {**spec, "alerts": {**spec["alerts"], "consecutive": 1}})
        started = time.monotonic()
        assert len(run_monitor(client, "m", now=T0 + 3 * HOUR_MS + 10_000)) == 3
        assert time.monotonic() - started < 20
        assert client.store.list_monitor_alerts("m", state="open")  # recorded whatever the receiver did
    finally:
        bad.close()


def test_paused_monitors_do_nothing_and_bad_specs_are_refused(client: Client, setup: dict[str, Any]) -> None:
    create_monitor(client, "m", _spec("http://127.0.0.1:9/x"))
    set_paused(client, "m", True)
    assert run_monitor(client, "m") == []
    with pytest.raises(InvalidInput, match="window must be"):
        create_monitor(client, "m2", {**_spec("http://x/y"), "window": {"every": "1h", "rows": 5}})
    with pytest.raises(InvalidInput, match="not a duration"):
        create_monitor(client, "m2", {**_spec("http://x/y"), "window": {"every": "soon"}})
    with pytest.raises(InvalidInput, match="needs a reference"):
        create_monitor(client, "m2", {"endpoint": "ep"})
    with pytest.raises(InvalidInput, match="Features"):
        create_monitor(client, "m2", {**_spec("http://x/y"), "features": ["nope"]})


def test_count_windows_take_the_next_n_rows(client: Client, setup: dict[str, Any], receiver: Receiver) -> None:
    create_monitor(client, "rows", {**_spec(receiver.url), "window": {"rows": 1000}})
    windows = run_monitor(client, "rows")
    assert [w["rows"] for w in windows] == [1000, 1000, 1000]  # 3,600 rows: 3 whole windows, 600 wait
    assert run_monitor(client, "rows") == []


def test_the_cli_creates_runs_and_shows_a_monitor(
    client: Client, setup: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mloop.cli.app import app

    monkeypatch.chdir(tmp_path / "ws")
    runner = CliRunner()
    config = json.dumps({"alerts": {"consecutive": 1, "notify": [{"type": "log"}]}})
    made = runner.invoke(app, ["monitors", "create", "cli-mon", "-e", "ep", "--reference", "train/1", "--target",
                               "label", "--config", config, "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)[0]["spec"]["alerts"]["consecutive"] == 1
    ran = runner.invoke(app, ["monitors", "run", "cli-mon", "--json"])
    assert ran.exit_code == 0, ran.output
    assert len(json.loads(ran.output)) >= 3
    report = tmp_path / "report.html"
    shown = runner.invoke(app, ["monitors", "show", "cli-mon", "--html", str(report), "--json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert {r["signal"] for r in body["results"]} >= {"data_drift", "accuracy", "latency_p99_ms"}
    assert report.exists() and report.stat().st_size > 1000 and "<html" in report.read_text()[:500].lower()
    terminal = runner.invoke(app, ["monitors", "show", "cli-mon"])
    assert terminal.exit_code == 0 and "data_drift" in terminal.output
    listed = json.loads(runner.invoke(app, ["monitors", "list", "--json"]).output)
    assert [m["name"] for m in listed] == ["cli-mon"]
    assert runner.invoke(app, ["monitors", "pause", "cli-mon"]).exit_code == 0
    bad = runner.invoke(app, ["monitors", "create", "x", "-e", "ep", "--reference", "train/1", "--config", "{"])
    assert bad.exit_code != 0 and "--config is not valid JSON" in bad.output
    assert "Deleted monitor cli-mon" in runner.invoke(app, ["monitors", "delete", "cli-mon"]).output
