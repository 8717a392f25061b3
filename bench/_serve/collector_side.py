"""The two sides of ``bench_collector.py``: the same scoring app with the request collector off and on.

    python bench/_serve/collector_side.py PORT off|on|before|noop|append      (run from the workspace folder)

Both sides are this script: the model resolved and loaded before listening exactly as ``mloop serve`` does
(``create_app`` + ``run_one``: one uvicorn process, access log off, default batching), with
``collector=collector_for(context, "bench")`` on the ``on`` side (its defaults: flush every second, to
Parquet under the workspace's artifact folder) and on the ``before`` side, which runs another mloop source tree
(``PYTHONPATH``, e.g. the collector as it was before its writer process); the ``noop`` side has a collector
whose ``record`` does nothing (what attaching a collector costs besides recording), the ``append`` side one whose
``record`` only appends a tuple to a list (the least a request path can do). On SIGTERM the collector is closed
(everything written).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from _serve.servers import BIN, Server, free_port  # noqa: E402

__all__ = ["CollectorSide", "setup"]


def setup(folder: Path) -> dict[str, Any]:
    """The model of ``bench_serve.py`` (LogisticRegression on 10 float columns, fitted on a DataFrame) in a
    fresh workspace, and the same single-row request body (``dataframe_records``, ``/invocations``)."""
    import json

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import mloop
    from mloop.tracking.client import Client

    features = [f"f{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(5000, len(features))), columns=features)
    y = (train["f0"] + train["f1"] * 0.5 > 0).astype(int)
    model = LogisticRegression().fit(train, y)
    client = Client(workspace=mloop.init_workspace(folder / "ws"))
    with client.start_run("bench", "train") as run:
        run.log_model(model, "bench", signature_data=train, input_example=train.head(1))
    artifacts = Path(client.artifacts.uri)
    client.close()
    row = {c: round(float(v), 6) for c, v in zip(features, rng.normal(size=len(features)), strict=True)}
    body = json.dumps({"dataframe_records": [row]}, separators=(",", ":")).encode()
    expected = int(model.predict(pd.DataFrame([row]))[0])
    return {"workspace": folder / "ws", "artifacts": artifacts, "body": body, "expected": expected}


class CollectorSide(Server):
    """One side's server process (``off`` or ``on``), on a free loopback port, in its own process group."""

    def __init__(self, side: str, env_setup: dict[str, Any], *, cpus: set[int] | None,
                 source: Path | None = None) -> None:  # fmt: skip
        self.side = side
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
        env.update({"PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                    "MLOOP_HOME": str(env_setup["workspace"].parent / "home")})  # fmt: skip
        if source is not None:  # this side runs mloop from another source tree
            env["PYTHONPATH"] = str(source)
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen([sys.executable, str(HERE), str(self.port), side], cwd=env_setup["workspace"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)
        self.url = f"http://127.0.0.1:{self.port}"

    def ready_path(self) -> str:
        return "/health/ready"

    def stop(self) -> None:
        """Stop (SIGTERM: the collector writes what it holds) and keep the last output (its stats line)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        self.final_output = self.output()
        super().stop()

    def stats(self) -> dict[str, Any] | None:
        """The collector's stats printed at shutdown (after :meth:`stop`)."""
        import ast

        found = re.search(r"collector stats (\{.*\})", getattr(self, "final_output", ""))
        return None if found is None else dict(ast.literal_eval(found.group(1)))

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as reply:
            return str(reply.read().decode())


def _main() -> None:
    from mloop.context import Context
    from mloop.registry.loader import resolve_model
    from mloop.serving.app import create_app
    from mloop.serving.collector import collector_for
    from mloop.serving.server import run_one

    port, side = int(sys.argv[1]), sys.argv[2]
    with Context() as context:
        pinned = resolve_model(context, "model:bench").ref
        collector = collector_for(context, "bench") if side != "off" else None
        if side == "noop":  # everything a collector brings to the app except recording requests
            collector.record = lambda *args, **kwargs: None  # type: ignore[method-assign,union-attr]
        elif side == "append":  # the least a request path can do: one tuple appended, nothing tabulated or written
            kept: list[Any] = []

            def append(rid: str, model: str, data: Any, result: Any, latency_s: float, status: int = 200,
                       role: str = "live", *, columns: Any = None) -> None:  # fmt: skip
                kept.append((time.time_ns(), rid, model, role, data, columns, result, latency_s, status))
                if len(kept) >= 100_000:
                    kept.clear()

            collector.record = append  # type: ignore[method-assign,union-attr]
        elif side == "copy":  # the request's bytes copied into a ring here; nothing kept, tabulated or written
            import struct

            ring, at, head = bytearray(16 * 2**20), [0], struct.Struct("<IIqdii48s")

            def copy(rid: str, model: str, data: Any, result: Any, latency_s: float, status: int = 200,
                     role: str = "live", *, columns: Any = None) -> None:  # fmt: skip
                inputs = b"" if data is None else data.tobytes()
                outputs = b"" if result is None else result["predictions"].tobytes()
                size = head.size + len(inputs) + len(outputs)
                start = at[0] if at[0] + size <= len(ring) else 0
                head.pack_into(ring, start, size, 2, time.time_ns() // 1000, latency_s * 1e3, status, 1, rid.encode())
                ring[start + head.size : start + head.size + len(inputs)] = inputs
                ring[start + head.size + len(inputs) : start + size] = outputs
                at[0] = start + size

            collector.record = copy  # type: ignore[method-assign,union-attr]
        app = create_app(pinned, context, collector=collector)
        app.state.load()
        if collector is None:
            run_one(app, "127.0.0.1", port, "warning", False)
            return

        async def closing(scope: Any, receive: Any, send: Any) -> None:
            """Close the collector at lifespan shutdown: uvicorn re-raises SIGTERM after it, so code after
            ``run()`` never runs."""
            if scope["type"] != "lifespan":
                return await app(scope, receive, send)

            async def send_closing(message: Any) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    collector.close()
                    print("collector stats", collector.stats(), flush=True)
                await send(message)

            return await app(scope, receive, send_closing)

        run_one(closing, "127.0.0.1", port, "warning", False)  # type: ignore[arg-type]


if __name__ == "__main__":
    _main()
