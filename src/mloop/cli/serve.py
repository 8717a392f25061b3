"""``mloop serve``: the scoring server for one registered model version."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli.common import globals_of

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL_REF", help="model:<name>/<version> or model:<name>@<alias>.")],
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
) -> None:
    """Serve a registered model over HTTP.

    The model is loaded through the registry's verified loader (a file that does not match its registered
    digest stops the server, naming it). Routes: POST /predict (rows, one row or columns; ?proba=true),
    POST /invocations (MLflow's dataframe_split, dataframe_records, instances, inputs), GET /health/live,
    GET /health/ready.

    \b
    Examples:
      mloop serve model:churn@production
      mloop serve model:churn/3 --host 0.0.0.0 --port 8080 --workers 4
    """
    from mloop.serving.server import serve as run_server

    g = globals_of(ctx)
    run_server(model, uri=g.uri, artifact_uri=g.artifact_uri, host=host, port=port, workers=workers,
               max_body_bytes=max_body, access_log=access_log)  # fmt: skip
