"""Running Debian's ``wrk`` (a C, event-driven HTTP/1.1 keep-alive generator) with a POST body, and reading
its report: requests a second, latency percentiles (``--latency``), non-2xx answers and socket errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian's package).")
    return path


def lua_script(body: bytes, folder: Path, content_type: str = "application/json") -> Path:
    """A wrk script that POSTs ``body`` on every request."""
    text = body.decode()
    if "]]" in text:
        raise ValueError("the body must not contain ']]' (it is quoted as a Lua long string)")
    path = folder / "post.lua"
    path.write_text(f'wrk.method = "POST"\nwrk.body = [[{text}]]\nwrk.headers["Content-Type"] = "{content_type}"\n')
    return path


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk's time {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> dict[str, Any]:
    """Figures of one wrk report (seconds for latencies)."""
    out: dict[str, Any] = {"non_2xx": 0, "socket_errors": 0}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk's output:\n{output}")
    out["throughput"] = float(rps.group(1))
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    if total:
        out["requests"] = int(total.group(1))
    for pct in ("50", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE)
        out[f"p{pct}"] = _seconds(found.group(1)) if found else None
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        out["non_2xx"] = int(non2xx.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors:
        out["socket_errors"] = sum(int(g) for g in errors.groups())
    return out


def run_wrk(url: str, body: bytes, *, connections: int, duration: float, threads: int = 1,
            timeout: float = 10.0) -> dict[str, Any]:  # fmt: skip
    """One closed-loop wrk run of ``duration`` seconds with ``connections`` keep-alive connections."""
    with tempfile.TemporaryDirectory() as tmp:
        script = lua_script(body, Path(tmp))
        cmd = [wrk_path(), f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               f"--timeout={max(1, round(timeout))}s", "--latency", "-s", str(script), url]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse(proc.stdout)
