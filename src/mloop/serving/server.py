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

__all__ = ["app_from_env", "checked_limit", "run_one", "run_workers", "serve"]

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
    from mloop.context import Context
    from mloop.registry.loader import load_model, resolve_model
    from mloop.serving.app import create_app

    limit = checked_limit(port, workers, max_body_bytes)
    with Context(uri, artifact_uri) as context:
        pinned = resolve_model(context, ref).ref
        if workers == 1:
            app = create_app(pinned, context, max_body_bytes=limit, batching=batching)
            app.state.load()  # before listening: a typed error (e.g. IntegrityError naming the file) stops here
            run_one(app, host, port, log_level, access_log)
            return
        load_model(pinned, client=context)  # verified once here: a tampered file stops before any worker starts
    env = {_REF: pinned, _MAX_BODY: str(limit)}
    if uri:
        env["MLOOP_URI"] = uri
    if artifact_uri:
        env["MLOOP_ARTIFACT_URI"] = artifact_uri
    if batching is not None:
        env[_BATCH] = batch_env(batching)
    run_workers("mloop.serving.server:app_from_env", env, host, port, workers, log_level, access_log)


def checked_limit(port: int, workers: int, max_body_bytes: int | None) -> int:
    """The body limit, after refusing a bad port, worker count or limit (naming the value)."""
    from mloop.serving.app import DEFAULT_MAX_BODY_BYTES

    if not 0 <= port <= 65535:
        raise InvalidInput(f"Port {port} is out of range; use 0-65535 (0 picks a free port).")
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}.")
    limit = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    if limit < 1:
        raise InvalidInput(f"The body limit must be at least 1 byte, got {limit}.")
    return limit


def batch_env(batching: BatchConfig) -> str:
    """The batching settings as the workers read them back (JSON of the :class:`BatchConfig`)."""
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(batching))


def run_one(app: ScoringApp, host: str, port: int, log_level: str, access_log: bool) -> None:
    """Serve ``app`` in this process until SIGINT/SIGTERM (in-flight requests finish first)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=access_log)
    uvicorn.Server(config).run()


def run_workers(
    factory: str, env: dict[str, str], host: str, port: int, workers: int, log_level: str, access_log: bool
) -> None:
    """Serve ``workers`` uvicorn processes that each build their app with ``factory`` from ``env``; their
    ``/metrics`` add up every worker through a private ``PROMETHEUS_MULTIPROC_DIR`` (removed at the end)."""
    import uvicorn

    os.environ.update(env)
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="mloop-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                    lifespan="on", access_log=access_log)  # fmt: skip
    finally:
        if metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
