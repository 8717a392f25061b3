"""Running the scoring server under uvicorn: one process, or several workers (``--workers``).

:func:`serve` verifies the model before the server listens: the reference is resolved to one version (so every
worker serves the same version even if an alias moves) and loaded through the registry's verified loader; a
tampered file raises :class:`~mloop.errors.IntegrityError` naming it, and nothing listens. With one worker the
app is built and its model loaded in this process (once); with several, uvicorn starts workers that each build
it with :func:`app_from_env` from the ``MLOOP_SERVE_*`` variables set here and load it at their startup; their
``/metrics`` add up every worker through a private ``PROMETHEUS_MULTIPROC_DIR`` (removed when the server stops).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from mloop.serving.app import ScoringApp
    from mloop.serving.batching import BatchConfig

__all__ = ["app_from_env", "serve"]

_REF, _MAX_BODY, _BATCH = "MLOOP_SERVE_REF", "MLOOP_SERVE_MAX_BODY_BYTES", "MLOOP_SERVE_BATCH"


def app_from_env() -> ScoringApp:
    """The app a uvicorn worker builds (``mloop.serving.server:app_from_env``, factory)."""
    import json

    from mloop.context import Context
    from mloop.serving.app import create_app
    from mloop.serving.batching import BatchConfig

    ref = os.environ.get(_REF)
    if not ref:
        raise InvalidInput(f"{_REF} is not set; start workers with `mloop serve MODEL_REF --workers N`.")
    batching = BatchConfig(**json.loads(os.environ[_BATCH])) if os.environ.get(_BATCH) else None
    return create_app(ref, Context(), max_body_bytes=int(os.environ[_MAX_BODY]), batching=batching)


def serve(
    ref: str,
    *,
    uri: str | None = None,
    artifact_uri: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    max_body_bytes: int | None = None,
    log_level: str = "info",
    access_log: bool = False,
    batching: BatchConfig | None = None,
) -> None:
    """Serve ``ref`` on ``host:port`` until interrupted (SIGINT/SIGTERM finish in-flight requests first).

    ``access_log`` logs a line per request (off by default: it costs a sizeable share of a one-row request);
    ``batching`` sets micro-batching and the queue bound (:class:`~mloop.serving.batching.BatchConfig`).
    """
    import uvicorn

    from mloop.context import Context
    from mloop.registry.loader import load_model, resolve_model
    from mloop.serving.app import DEFAULT_MAX_BODY_BYTES, create_app

    if not 0 <= port <= 65535:
        raise InvalidInput(f"Port {port} is out of range; use 0-65535 (0 picks a free port).")
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}.")
    limit = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    if limit < 1:
        raise InvalidInput(f"The body limit must be at least 1 byte, got {limit}.")
    with Context(uri, artifact_uri) as context:
        pinned = resolve_model(context, ref).ref
        if workers == 1:
            app = create_app(pinned, context, max_body_bytes=limit, batching=batching)
            app.state.load()  # before listening: a typed error (e.g. IntegrityError naming the file) stops here
            config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                                    access_log=access_log)  # fmt: skip
            uvicorn.Server(config).run()
            return
        load_model(pinned, client=context)  # verified once here: a tampered file stops before any worker starts
    os.environ[_REF], os.environ[_MAX_BODY] = pinned, str(limit)
    if batching is not None:
        import dataclasses
        import json

        os.environ[_BATCH] = json.dumps(dataclasses.asdict(batching))
    if uri:
        os.environ["MLOOP_URI"] = uri
    if artifact_uri:
        os.environ["MLOOP_ARTIFACT_URI"] = artifact_uri
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # each worker's figures, added up by /metrics
        metrics_dir = tempfile.mkdtemp(prefix="mloop-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "mloop.serving.server:app_from_env", factory=True, host=host, port=port, workers=workers,
            log_level=log_level, lifespan="on", access_log=access_log,
        )  # fmt: skip
    finally:
        if metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
