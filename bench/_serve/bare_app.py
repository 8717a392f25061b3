"""The bare peer: a Starlette app that parses the JSON body and returns a fixed reply (no model, no checks).

    uvicorn bench._serve.bare_app:app --port 8000      (or: python bench/_serve/bare_app.py PORT)

Same server stack as ``mloop serve`` (uvicorn, one process, access log off, orjson) so the ratio measures
what mloop adds on top of the framework: routing, validation, the model call, the reply.
"""

from __future__ import annotations

import sys

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REPLY = orjson.dumps({"predictions": [0]})


async def predict(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(REPLY, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/invocations", predict, methods=["POST"]),
                        Route("/health/ready", ready)])  # fmt: skip

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
