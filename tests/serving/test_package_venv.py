"""The build context without Docker: its environment built from its own requirements in a fresh virtual
environment, as the Dockerfile's RUN lines build it, then its ENTRYPOINT started from the bundle.

pip's cache makes the install take seconds to tens of seconds after the first run (the packages are large).
When pip cannot reach an index the test is skipped, naming the reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mloop.serving.bundle import MANIFEST_NAME
from mloop.serving.package import BUNDLE_PATH, package_model
from mloop.tracking.client import Client

ROW = {"age": 61, "income": 55.0, "plan": "pro"}
# pip's own cache: the autouse fixture gives each test a fresh HOME, which would make every run download again
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path("~/.cache/pip").expanduser())
# what pip prints when it cannot reach an index (a pin the index does not have is a failure, not a skip)
OFFLINE = ("NewConnectionError", "ConnectionError", "ProxyError", "Max retries exceeded",
           "Temporary failure in name resolution", "Network is unreachable")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dockerfile(ctx: Path) -> tuple[list[list[str]], list[str]]:
    """The Dockerfile's ``RUN pip install ...`` commands and its ENTRYPOINT, container paths mapped into ``ctx``."""
    text = (ctx / "Dockerfile").read_text().replace("/opt/mloop/", f"{ctx}/")
    runs = [shlex.split(line[4:]) for line in text.splitlines() if line.startswith("RUN pip install ")]
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", text, re.M).group(1))  # type: ignore[union-attr]
    return runs, entry


def _install(venv: Path, runs: list[list[str]]) -> float:
    started = time.monotonic()
    for cmd in runs:
        assert cmd[:2] == ["pip", "install"], cmd
        # the outer pip installs into the fresh environment (--python), without compiling .pyc files (as
        # PYTHONDONTWRITEBYTECODE in the image; it halves the time); everything else is the Dockerfile's command
        full = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-compile",
                *(a for a in cmd[2:] if a != "--no-cache-dir")]  # fmt: skip
        done = subprocess.run(full, capture_output=True, text=True, env={**os.environ, "PIP_CACHE_DIR": PIP_CACHE},
                              timeout=600)  # fmt: skip
        if done.returncode != 0:
            if any(marker in done.stderr for marker in OFFLINE) and "mloop" not in cmd[-1]:
                pytest.skip(f"pip could not fetch the pinned packages (no index reachable?): {done.stderr[-300:]}")
            pytest.fail(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


def _entrypoint(entry: list[str], venv: Path, bundle: Path, port: int, cwd: Path) -> subprocess.Popen[str]:
    assert entry[:4] == ["mloop", "serve", "--bundle", str(bundle)], entry
    args = [str(venv / "bin" / "mloop"), *entry[1:]]
    args[args.index("--host") + 1] = "127.0.0.1"  # the container listens on all interfaces; here loopback only
    args[args.index("--port") + 1] = str(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    return subprocess.Popen(args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_ready(proc: subprocess.Popen[str], port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the entrypoint exited with {proc.returncode}: {proc.communicate()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"not ready in {timeout} s: {proc.communicate()}")


@pytest.mark.slow
def test_the_context_builds_in_a_fresh_venv_and_its_entrypoint_serves_the_bundle(
    client: Client, churn: Any, tmp_path: Path
) -> None:
    model, _ = churn
    ctx = tmp_path / "ctx"
    package_model(client, "model:churn", docker=ctx)
    runs, entry = _dockerfile(ctx)
    assert len(runs) == 2 and BUNDLE_PATH.replace("/opt/mloop/", f"{ctx}/") == str(ctx / "bundle")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    seconds = _install(venv, runs)
    print(f"fresh environment installed in {seconds:.1f} s")  # the figure for docs/serving.md
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "check"],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr  # requirements.txt is complete and consistent
    outside = tmp_path / "nowhere"  # no workspace anywhere above: the bundle is all the server has
    outside.mkdir()

    port = _free_port()
    proc = _entrypoint(entry, venv, ctx / "bundle", port, outside)
    try:
        _wait_ready(proc, port)
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json=[ROW], timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": model.predict(pd.DataFrame([ROW])).tolist(), "model": "model:churn/1"}
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM) and "Finished server process" in err, err  # drained, stopped
    assert not (outside / ".mloop").exists()

    manifest = json.loads((ctx / "bundle" / MANIFEST_NAME).read_text())
    name = manifest["files"][0]["path"]
    victim = ctx / "bundle" / "model" / name
    victim.write_bytes(victim.read_bytes() + b"\0")
    port = _free_port()
    proc = _entrypoint(entry, venv, ctx / "bundle", port, outside)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 6, (out, err)  # IntegrityError's exit code: nothing listened
    assert f"File {name!r} of the bundle" in err and "does not match its manifest" in err
    assert "Traceback" not in err
