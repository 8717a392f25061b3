"""``mloop serve``: the scoring server for one registered model version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import globals_of, local_path

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Argument(metavar="MODEL_REF", help="model:<name>/<version> or model:<name>@<alias>.")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 for all interfaces).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes, each with the model.")] = 1,
    max_body: Annotated[
        int, typer.Option("--max-body", metavar="BYTES", min=1, help="Largest request body; larger ones get 413.")
    ] = 8 * 1024 * 1024,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log a line per request (off: it costs a share of each request).")
    ] = False,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1, help="Most rows per combined predict call (1 turns batching off).")
    ] = 64,
    batch_wait_ms: Annotated[
        float, typer.Option("--batch-wait-ms", min=0, max=1000, help="Longest wait to gather a batch.")
    ] = 2.0,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, help="Requests admitted at once per worker; past it: 503.")
    ] = 256,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            metavar="DIR",
            parser=local_path,
            help="Serve a bundle written by `mloop package` (no workspace needed) instead of MODEL_REF.",
        ),
    ] = None,
) -> None:
    """Serve a registered model over HTTP.

    The model is loaded through the registry's verified loader (a file that does not match its registered
    digest stops the server, naming it). Routes: POST /predict (rows, one row or columns; ?proba=true),
    POST /invocations (MLflow's dataframe_split, dataframe_records, instances, inputs), the Open Inference
    Protocol v2 under /v2, GET /health/live, GET /health/ready, GET /metrics (Prometheus). Concurrent
    requests are combined into one predict call (--batch-rows, --batch-wait-ms); past --max-queue requests
    get 503 with Retry-After.

    \b
    Examples:
      mloop serve model:churn@production
      mloop serve model:churn/3 --host 0.0.0.0 --port 8080 --workers 4
      mloop serve --bundle build/bundle  (a container's entrypoint; files checked against the manifest)
    """
    from mloop.serving.batching import BatchConfig
    from mloop.serving.server import serve as run_server

    g = globals_of(ctx)
    batching = BatchConfig(max_rows=batch_rows, max_wait=batch_wait_ms / 1000, max_queue=max_queue)
    if (model is None) == (bundle is None):
        raise typer.BadParameter("give a MODEL_REF or --bundle DIR (one of them).", param_hint="MODEL_REF")
    if bundle is not None:
        from mloop.serving.bundle import serve_bundle

        serve_bundle(bundle, host=host, port=port, workers=workers, max_body_bytes=max_body, access_log=access_log,
                     batching=batching)  # fmt: skip
        return
    assert model is not None
    run_server(model, uri=g.uri, artifact_uri=g.artifact_uri, host=host, port=port, workers=workers,
               max_body_bytes=max_body, access_log=access_log, batching=batching)  # fmt: skip
