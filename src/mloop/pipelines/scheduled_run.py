"""One scheduled fire, in its own process: ``python -m mloop.pipelines.scheduled_run SPEC.json``.

The scheduler claims a fire in the store and then starts this process, so its loop keeps ticking while the
pipeline runs and each run imports the published snapshot into a fresh interpreter. ``SPEC.json`` holds the
published version, the parameters, what triggered it and the run's extra tags (the stores come from the
environment: a PostgreSQL URI may hold a password);
the :class:`~mloop.pipelines.results.PipelineResult` (or the error) is written to ``result`` as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


def main(argv: list[str]) -> int:
    from mloop.errors import MloopError
    from mloop.pipelines.trigger import trigger
    from mloop.tracking.client import Client

    spec: dict[str, Any] = json.loads(Path(argv[1]).read_text())
    out = Path(spec["result"])
    try:
        client = Client()  # the stores come from MLOOP_URI / MLOOP_ARTIFACT_URI, set by the scheduler
        try:
            result = trigger(spec["pipeline"], spec["version"], spec["params"], triggered_by=spec["triggered_by"],
                             client=client, tags=spec["tags"])  # fmt: skip
        finally:
            client.close()
    except MloopError as exc:
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.write_text(json.dumps(result.to_dict()))
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover - run by the scheduler in a child process
    sys.exit(main(sys.argv))
