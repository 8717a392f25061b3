"""Capture of the environment a run executes in: interpreter, platform, packages, git state, command line.

The capture is a JSON-able dict whose digest is stored on the run; identical environments are stored once.
Package lists are read once per :class:`EnvironmentCapture`; git state is re-read at most every few seconds,
so a loop starting a thousand runs does not spawn thousands of ``git`` processes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["EnvironmentCapture", "environment_digest", "git_state"]

_GIT_TTL_S = 5.0


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(cwd: Path) -> dict[str, Any] | None:
    """Commit, branch, dirty flag and a digest of the uncommitted diff; ``None`` outside a git checkout."""
    head = _git(["rev-parse", "HEAD"], cwd)
    if head is None:
        return None
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or b""
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or b""
    state: dict[str, Any] = {
        "commit": head.decode().strip(),
        "branch": branch.decode().strip(),
        "dirty": bool(status.strip()),
    }
    if state["dirty"]:
        diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff"], cwd) or b""
        state["diff_digest"] = "sha256:" + hashlib.sha256(diff).hexdigest()
    return state


def environment_digest(env: dict[str, Any]) -> str:
    body = json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest()


class EnvironmentCapture:
    """Captures environments for one client; caches what rarely changes."""

    def __init__(self) -> None:
        self._packages: dict[str, str] | None = None
        self._git: dict[Path, tuple[float, dict[str, Any] | None]] = {}
        self._last: tuple[tuple[Any, ...], dict[str, Any], str] | None = None

    def packages(self) -> dict[str, str]:
        if self._packages is None:
            from mloop.flavors.lock import installed_packages  # not at import: the flavors package is heavy

            self._packages = installed_packages()
        return self._packages

    def git(self, cwd: Path) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._git.get(cwd)
        if cached is None or now - cached[0] > _GIT_TTL_S:
            cached = (now, git_state(cwd))
            self._git[cwd] = cached
        return cached[1]

    def capture_with_digest(self, cwd: Path | None = None) -> tuple[dict[str, Any], str]:
        """The environment and its digest; re-hashed only when git state, folder or command line changed."""
        where = (cwd or Path.cwd()).resolve()
        git = self.git(where)
        key = (json.dumps(git, sort_keys=True), str(where), tuple(sys.argv))
        if self._last is not None and self._last[0] == key:
            return self._last[1], self._last[2]
        env = self.capture(where)
        digest = environment_digest(env)
        self._last = (key, env, digest)
        return env, digest

    def capture(self, cwd: Path | None = None) -> dict[str, Any]:
        where = (cwd or Path.cwd()).resolve()
        return {
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "executable": sys.executable,
            },
            "platform": {
                "system": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
            },
            "packages": self.packages(),
            "git": self.git(where),
            "command": list(sys.argv),
            "cwd": str(where),
        }
