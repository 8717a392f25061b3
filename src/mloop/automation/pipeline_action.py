"""``run_pipeline`` actions: each a triggered run of a published pipeline in a process of its own.

The engine starts ``python -m mloop.pipelines.scheduled_run <folder>/<action id>.json`` (the scheduler's own
runner) in a new session, with ``MLOOP_USER`` set to the action's actor, so every write of the run (the pipeline
run, its step runs, the model versions it registers) is recorded as the automation's, and events it causes are
one step deeper in the chain. The run is tagged ``mloop.trigger = automation:<name>`` and
``mloop.automation.action = <action id>``.

**Across a crash.** The child survives the engine (kill -9 included). A restarted engine finds an action still
``running`` and, in order: a live process whose command line names the action's spec file (it waits for it),
the result file, or the run tagged with the action id (finished: its outcome is adopted). Only when none of them
is there does it start the run again, as the next attempt. So a run is started once per attempt and a finished
run is never repeated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.context import Context
from mloop.entities import AutomationAction
from mloop.pipelines.trigger import TRIGGER_TAGS, check_params, resolve_published

__all__ = ["ACTION_TAG", "PipelineChildren"]

ACTION_TAG = "mloop.automation.action"


@dataclass
class _Child:
    action_id: str
    pipeline: str
    process: subprocess.Popen[bytes] | None  # None: adopted from an engine that died (not our child)
    pid: int


def _alive(pid: int, needle: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return needle in cmdline and ") Z " not in stat  # a zombie has finished


def _find(needle: str) -> int | None:
    """The pid of a live process whose command line holds ``needle`` (Linux /proc), else None."""
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit() and _alive(int(entry.name), needle):
            return int(entry.name)
    return None


class PipelineChildren:
    """The run processes of ``run_pipeline`` actions: started, polled, adopted after a restart."""

    def __init__(self, ctx: Context, *, python: str = sys.executable) -> None:
        self.ctx, self.python = ctx, python
        self.folder = ctx.settings.local_dir / "automations"
        self.children: dict[str, _Child] = {}

    def spec_path(self, action_id: str) -> Path:
        return self.folder / f"{action_id}.json"

    def result_path(self, action_id: str) -> Path:
        return self.folder / f"{action_id}.result.json"

    def start(self, action: AutomationAction, do: dict[str, Any]) -> str:
        """Check the pipeline and its parameters, then start the run; returns the pipeline version's ref."""
        pv = resolve_published(self.ctx, str(do["pipeline"]))
        params = dict(do.get("params") or {})
        check_params(pv, params)
        self.folder.mkdir(parents=True, exist_ok=True)
        spec, result = self.spec_path(action.id), self.result_path(action.id)
        result.unlink(missing_ok=True)
        body = {"pipeline": pv.name, "version": pv.version, "params": params, "result": str(result),
                "triggered_by": f"automation:{action.automation}", "tags": {ACTION_TAG: action.id}}  # fmt: skip
        tmp = spec.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, spec)
        env = {**os.environ, "MLOOP_URI": self.ctx.settings.store_uri, "MLOOP_ARTIFACT_URI": self.ctx.artifacts.uri,
               "MLOOP_USER": action.actor}  # fmt: skip
        with open(self.folder / f"{action.id}.log", "ab") as log:
            process = subprocess.Popen(
                [self.python, "-m", "mloop.pipelines.scheduled_run", str(spec)], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )  # fmt: skip
        self.children[action.id] = _Child(action.id, pv.ref, process, process.pid)
        return pv.ref

    def adopt(self, action: AutomationAction) -> bool:
        """After a restart: is the run process of ``action`` still alive? (It is then watched until it ends.)"""
        if action.id in self.children:
            return True
        pid = _find(str(self.spec_path(action.id)))
        if pid is None:
            return False
        self.children[action.id] = _Child(action.id, "", None, pid)
        return True

    def running(self, action_id: str) -> bool:
        child = self.children.get(action_id)
        if child is None:
            return False
        if child.process is not None:
            if child.process.poll() is None:
                return True
        elif _alive(child.pid, str(self.spec_path(action_id))):
            return True
        del self.children[action_id]
        return False

    def outcome(self, action: AutomationAction) -> dict[str, Any] | None:
        """The finished run's result (from the result file, else the run tagged with the action), or None."""
        try:
            result: dict[str, Any] | None = json.loads(self.result_path(action.id).read_text())
        except (OSError, ValueError):
            result = None
        if result is None:
            found = self.ctx.store.search_runs(filter=f"tags.`{ACTION_TAG}` = '{action.id}'", max_results=10).items
            done = [r for r in found if r.status.value == "FINISHED" and r.tags.get(TRIGGER_TAGS.BY)]
            if not done:
                return None
            result = {"run_id": done[0].id, "status": "FINISHED", "adopted": True}
        return result

    def clean(self, action_id: str) -> None:
        for path in (self.spec_path(action_id), self.result_path(action_id), self.folder / f"{action_id}.log"):
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        """SIGTERM our run processes (their runs end KILLED; the next engine starts those actions again)."""
        for child in self.children.values():
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        for child in self.children.values():
            if child.process is not None:
                try:
                    child.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.process.kill()
        self.children.clear()
