"""The model and the three servers of ``bench_serve.py``: set-up (untimed), start on loopback, readiness, RSS.

* ``mlflow``  ``mlflow models serve -m DIR --env-manager local -w 1``: the same fitted model saved with
              ``mlflow.sklearn.save_model`` (MLflow's own uvicorn/FastAPI scoring server, one worker).
* ``mloop``   ``mloop serve model:bench`` (one worker, its defaults: micro-batching on, bounded queue).
* ``bare``    ``bench/_serve/bare_app.py``: Starlette under uvicorn, parses the JSON, returns a fixed reply.

Every side gets the same request bytes on ``/invocations`` (MLflow's route; mloop and the bare app serve it
too). With ``pin``, servers run on CPU 0 and the driver (and the generator it starts) on CPU 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FEATURES = [f"f{i}" for i in range(10)]
SIDES = ("mlflow", "mloop", "bare")
READY_PATH = {"mlflow": "/ping", "mloop": "/health/ready", "bare": "/health/ready"}


def setup(folder: Path) -> dict[str, Any]:
    """Fit a LogisticRegression on 10 float columns; register it in a fresh mloop workspace and save it for
    MLflow. Returns the workspace, the MLflow model folder, the request body and the expected prediction."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.tracking.client import Client

    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(5000, len(FEATURES))), columns=FEATURES)
    y = (train["f0"] + train["f1"] * 0.5 > 0).astype(int)
    model = LogisticRegression().fit(train, y)
    ws = mloop.init_workspace(folder / "ws")
    client = Client(workspace=ws)
    with client.start_run("bench", "train") as run:
        run.log_model(model, "bench", signature_data=train, input_example=train.head(1))
    client.close()

    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow_dir = folder / "mlflow-model"
    mlflow.sklearn.save_model(model, str(mlflow_dir), signature=infer_signature(train, model.predict(train)),
                              input_example=train.head(1))  # fmt: skip
    row = {c: round(float(v), 6) for c, v in zip(FEATURES, rng.normal(size=len(FEATURES)), strict=True)}
    body = json.dumps({"dataframe_records": [row]}, separators=(",", ":")).encode()
    expected = int(model.predict(pd.DataFrame([row]))[0])
    return {"workspace": folder / "ws", "mlflow_dir": mlflow_dir, "body": body, "expected": expected}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One side's server process (its own process group), started on a free loopback port."""

    def __init__(self, side: str, env_setup: dict[str, Any], *, cpus: set[int] | None, extra: list[str]) -> None:
        self.side = side
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "MLFLOW_"))}
        env.update(
            {
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            }
        )  # MLflow runs `uvicorn` from the PATH
        cwd = None
        if side == "mlflow":
            cmd = [str(BIN / "mlflow"), "models", "serve", "-m", str(env_setup["mlflow_dir"]), "--env-manager",
                   "local", "-w", "1", "-h", "127.0.0.1", "-p", str(self.port)]  # fmt: skip
        elif side == "mloop":
            cmd = [str(BIN / "mloop"), "serve", "model:bench", "--port", str(self.port), *extra]
            cwd = env_setup["workspace"]  # the workspace folder (holding .mloop), found from the working directory
            env["MLOOP_HOME"] = str(env_setup["workspace"].parent / "home")
        elif side == "bare":
            cmd = [sys.executable, str(BENCH_DIR / "_serve" / "bare_app.py"), str(self.port)]
        else:
            raise ValueError(f"unknown side {side!r}")
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())

        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        if cpus:  # before it imports anything: the processes it starts later inherit the affinity
            os.sched_setaffinity(self.proc.pid, cpus)
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]

    def ready_path(self) -> str:
        return READY_PATH[self.side]

    def wait_ready(self, timeout: float = 180.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.side} server exited ({self.proc.returncode}):\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path(), timeout=2) as reply:
                    if reply.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.side} server not ready in {timeout} s:\n{self.output()}")

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def pids(self) -> list[int]:
        """The server and its children (MLflow's CLI starts uvicorn as a child)."""
        import psutil

        try:
            proc = psutil.Process(self.proc.pid)
            return [proc.pid, *(c.pid for c in proc.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far."""
        import psutil

        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        """Resident memory of the server's processes now (bytes)."""
        import psutil

        total = 0
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def prediction_of(side: str, reply: Any) -> Any:
    """The first prediction in a reply (MLflow and mloop both answer {"predictions": [...]})."""
    if isinstance(reply, dict) and isinstance(reply.get("predictions"), list) and reply["predictions"]:
        return reply["predictions"][0]
    raise RuntimeError(f"{side} answered an unexpected body: {reply!r}")
