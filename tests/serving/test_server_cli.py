"""``mloop serve`` as a real process on loopback: ready, scoring, SIGTERM; a tampered model never listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mloop.tracking.client import Client

MLOOP = str(Path(sys.executable).parent / "mloop")
ROW = {"age": 61, "income": 55.0, "plan": "pro"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(client: Client, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    folder = client.workspace.settings.workspace
    assert folder is not None
    env = {k: v for k, v in os.environ.items() if k not in ("MLOOP_URI", "MLOOP_ARTIFACT_URI")}
    proc = subprocess.Popen(  # the workspace (and its verified model cache) found from the working directory
        [MLOOP, "serve", *args, "--port", str(port)], env=env, cwd=folder.parent, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    return proc, port


def _wait_ready(proc: subprocess.Popen[str], port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"not ready in {timeout} s: {proc.communicate()}")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stdout + stderr


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_scores_over_http_and_stops_on_sigterm(client: Client, churn: Any, workers: int) -> None:
    model, _ = churn
    proc, port = _start(client, "model:churn", "--workers", str(workers))
    try:
        _wait_ready(proc, port)
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json=[ROW], headers={"X-Request-ID": "cli-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "cli-1"
        import pandas as pd

        assert r.json() == {"predictions": model.predict(pd.DataFrame([ROW])).tolist(), "model": "model:churn/1"}
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": [ROW]})
        assert r.status_code == 200 and r.json()["predictions"] == model.predict(pd.DataFrame([ROW])).tolist()
        series = 'mloop_requests_total{model="model:churn/1",route="predict",status="200"} 1.0'
        for _ in range(6):  # whichever worker answers the scrape, it reports every worker's requests
            assert series in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        code, stderr = _stop(proc)
    # uvicorn drains, then re-raises the SIGTERM it caught (one process) or exits 0 (the worker supervisor)
    assert code in (0, -signal.SIGTERM) and "Finished server process" in stderr, stderr
    assert "Traceback" not in stderr and '"POST /predict' not in stderr  # no access log unless --access-log


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_refuses_a_tampered_model_naming_the_file(client: Client, churn: Any, workers: int) -> None:
    import mloop

    mloop.load_model("model:churn/1")  # fills the verified local cache, which is then changed
    version = client.store.get_model_version("churn", 1, None)
    pkl = client.workspace.settings.local_dir / "models" / version.id / "model.pkl"
    pkl.write_bytes(pkl.read_bytes()[:-1] + b"!")
    proc, port = _start(client, "model:churn/1", "--workers", str(workers))
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 6, stderr  # IntegrityError's exit code
    assert "model.pkl" in stderr and "does not match its registered digest" in stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)


def test_serve_rejects_a_bad_reference_before_listening(client: Client, churn: Any) -> None:
    proc, _ = _start(client, "model:churn/9")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "9" in stderr  # NotFound's exit code


@pytest.mark.slow
def test_sigterm_drains_a_request_in_flight(client: Client, tmp_path: Path) -> None:
    import threading

    import mloop

    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "score.py").write_text(
        "import time\n\ndef init():\n    pass\n\ndef run(data):\n    time.sleep(1.5)\n    return [1] * len(data)\n"
    )
    mloop.register_model(folder, "slow")
    proc, port = _start(client, "model:slow/1")
    answers: list[Any] = []
    try:
        _wait_ready(proc, port)
        thread = threading.Thread(target=lambda: answers.append(
            httpx.post(f"http://127.0.0.1:{port}/predict", json=[{"a": 1}], timeout=30)))  # fmt: skip
        thread.start()
        time.sleep(0.5)  # the request is being scored
        code, output = _stop(proc)
        thread.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert answers and answers[0].status_code == 200 and answers[0].json()["predictions"] == [1]
    assert code in (0, -signal.SIGTERM) and "Finished server process" in output


@pytest.mark.slow
def test_closed_loop_clients_fill_their_batches_over_the_network(client: Client, churn: Any) -> None:
    """Eight clients that each send again as soon as they are answered: the batcher waits (within
    --batch-wait-ms) for the ones just answered, so batches hold about eight requests, not the two or three
    that happen to arrive in one read of the sockets."""
    import orjson

    from mloop.serving.loadgen import generate_load

    proc, port = _start(client, "model:churn")
    try:
        _wait_ready(proc, port)
        result = generate_load(f"http://127.0.0.1:{port}/predict", orjson.dumps([ROW]), concurrency=8,
                               duration=1.5, warmup=0.3)  # fmt: skip
        assert result.status_counts == {200: result.requests} and result.requests > 100
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                  if line.startswith(("mloop_batch_rows_sum", "mloop_batch_rows_count"))}  # fmt: skip
        per_call = values["mloop_batch_rows_sum"] / values["mloop_batch_rows_count"]
        assert per_call >= 6, f"{per_call:.1f} requests per predict call at concurrency 8"
    finally:
        _stop(proc)
