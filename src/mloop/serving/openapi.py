"""The scoring server's OpenAPI 3.1 document, generated from the served model version's signature.

:func:`openapi_document` describes every route of one app: ``POST /predict`` (rows, one row, rows as arrays,
columns, the ``{"inputs", "proba"}`` envelope and ``?proba=``), MLflow's ``POST /invocations`` (its four
shapes), the Open Inference Protocol v2 routes (tensors as the protocol's published REST specification has
them, with a model-specific tensor for each signature column), the health routes, ``/metrics`` and the
document itself. Request bodies take the signature's columns and types (``null`` only where the training data
had gaps); responses name their status codes (400/413/422/503 with the ``{"error": {...}}`` body; the V2
routes' ``{"error": "..."}``). ``text/csv`` bodies (a header row, then one line per row) are listed beside JSON.

:func:`openapi_route` serves it at ``GET /openapi.json``; the document lists only the paths the app routes.
Schemathesis fuzzes the app against it (``tests/serving/test_openapi_fuzz.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from mloop.serving.openapi_schemas import component_schemas, ref

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from mloop.serving.app import ServerState

__all__ = ["openapi_document", "openapi_route"]

Json = dict[str, Any]


def _content(schema: Json, media: str = "application/json", example: Any = None) -> Json:
    body: Json = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {media: body}


def _answer(
    description: str, schema: Json | None = None, media: str = "application/json", headers: Json | None = None
) -> Json:
    out: Json = {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}, **(headers or {})},
    }
    if schema is not None:
        out["content"] = _content(schema, media)
    return out


def _errors(codes: Collection[int], schema: str) -> Json:
    text = {
        400: "Malformed request: not JSON (or NaN/Infinity), an empty body, a wrong envelope or query value.",
        404: "Another model name or version than the one served.",
        413: "The body is over the server's limit.",
        422: "The values do not fit the signature (missing/extra columns, wrong types, null where not allowed, "
        "an empty batch), or the model refused them.",
        500: "A fault of the model or the server (the message names the request id).",
        503: "The model is not loaded yet, or the queue is full (with Retry-After).",
    }
    retry: Json = {
        "Retry-After": {
            "description": "Seconds to wait before retrying (when the queue is full).",
            "schema": {"type": "string"},
        }
    }
    return {str(c): _answer(text[c], ref(schema), headers=retry if c == 503 else None) for c in codes}


def _scoring(summary: str, request: str, response: str, example: Any, csv: bool, query: list[Json]) -> Json:
    content = _content(ref(request), example=example)
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
        if (text := _csv_example(example)) is not None:
            content["text/csv"]["example"] = text
    return {
        "post": {
            "summary": summary,
            "parameters": [{"$ref": "#/components/parameters/RequestId"}, *query],
            "requestBody": {"required": True, "content": content},
            "responses": {
                "200": _answer("Predictions (or probabilities) and the model version.", ref(response)),
                **_errors((400, 413, 422, 500, 503), "Error"),
            },
        }
    }


def _csv_example(example: Any) -> str | None:
    rows = example if isinstance(example, list) else None
    if not rows or not isinstance(rows[0], dict):
        return None
    names = list(rows[0])
    lines = [
        ",".join(names),
        *(",".join(str(r[n]).lower() if isinstance(r[n], bool) else str(r[n]) for n in names) for r in rows),
    ]
    return "\n".join(lines) + "\n"


def _get(summary: str, answers: Json) -> Json:
    return {
        "get": {"summary": summary, "parameters": [{"$ref": "#/components/parameters/RequestId"}], "responses": answers}
    }


def openapi_document(state: ServerState, paths: Collection[str] | None = None, *, csv: bool = True) -> Json:
    """The OpenAPI 3.1 document of the app serving ``state`` (loaded), restricted to ``paths`` when given.

    ``csv`` lists ``text/csv`` request bodies for ``/predict`` and ``/invocations``.
    """
    from mloop.errors import InvalidInput
    from mloop.serving.protocols.v2 import V2Model

    if state.model is None or state.schema is None:
        raise InvalidInput(f"{state.ref} is not loaded, so it has no OpenAPI document yet; call state.load() first.")
    v2 = V2Model(state.model)
    schemas = component_schemas(state, v2)
    example_row = schemas["Row"].get("examples", [None])[0]
    rows_example = [example_row] if example_row is not None else None
    proba = {
        "name": "proba",
        "in": "query",
        "required": False,
        "description": "true answers predict_proba.",
        "schema": {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$"},
    }
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "model": {"type": "string"}},
    }
    flag = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "live": {"type": "boolean"}, "ready": {"type": "boolean"}},
    }
    v2_error = ref("V2Error")
    loading = _answer("The model is still loading.", v2_error)
    path_params = {
        "name": {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"enum": [v2.name]},
            "description": "The served model's name.",
        },
        "version": {
            "name": "version",
            "in": "path",
            "required": True,
            "schema": {"enum": [v2.version]},
            "description": "The served model's version.",
        },
    }
    infer_example = (
        {
            "inputs": [
                {"name": t["name"], "shape": [1], "datatype": t["datatype"], "data": [example_row[t["name"]]]}
                for t in v2.metadata()["inputs"]
            ]
        }
        if example_row is not None
        else None
    )
    body_header = {
        "name": "Inference-Header-Content-Length",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "description": "The binary tensor data extension: the byte length of the JSON part.",
    }
    out: Json = {
        "/predict": _scoring(
            "Score rows, one row or columns (native).", "PredictRequest", "PredictResponse", rows_example, csv, [proba]
        ),
        "/invocations": _scoring(
            "Score MLflow's dataframe_split, dataframe_records, instances or inputs.",
            "InvocationsRequest",
            "Predictions",
            None if rows_example is None else {"dataframe_records": rows_example},
            csv,
            [],
        ),
        "/health/live": _get("The process answers.", {"200": _answer("Live.", status)}),
        "/health/ready": _get(
            "The model is loaded and verified.", {"200": _answer("Ready.", status), "503": _answer("Loading.", status)}
        ),
        "/metrics": _get(
            "Prometheus metrics.", {"200": _answer("Prometheus' text format.", {"type": "string"}, "text/plain")}
        ),
        "/openapi.json": _get("This document.", {"200": _answer("OpenAPI 3.1.", {"type": "object"})}),
        "/v2": _get("V2 server metadata.", {"200": _answer("Server metadata.", ref("V2ServerMetadata"))}),
        "/v2/health/live": _get("V2 server live.", {"200": _answer("Live.", flag)}),
        "/v2/health/ready": _get(
            "V2 server ready.", {"200": _answer("Ready.", flag), "503": _answer("Not ready.", flag)}
        ),
    }
    for base, names in (("/v2/models/{name}", ["name"]), ("/v2/models/{name}/versions/{version}", ["name", "version"])):
        params = [path_params[n] for n in names]
        meta = _get(
            "V2 model metadata.",
            {
                "200": _answer("Model metadata.", ref("V2ModelMetadata")),
                "404": _answer("Not served here.", v2_error),
                "503": loading,
            },
        )
        ready = _get(
            "V2 model ready.",
            {
                "200": _answer("Ready.", flag),
                "404": _answer("Not served here.", v2_error),
                "503": _answer("Loading.", flag),
            },
        )
        for op in (meta, ready):
            op["get"]["parameters"] = [*params, *op["get"]["parameters"]]
        infer_answers = {
            "200": _answer(
                "The output tensors (binary ones after the JSON part when asked for).", ref("V2InferResponse")
            )
        }
        infer_answers["200"]["content"]["application/octet-stream"] = {"schema": {"type": "string"}}
        infer_answers.update(_errors((400, 404, 413, 500, 503), "V2Error"))
        infer = {
            "post": {
                "summary": "V2 inference.",
                "parameters": [*params, body_header, {"$ref": "#/components/parameters/RequestId"}],
                "requestBody": {"required": True, "content": _content(ref("V2InferRequest"), example=infer_example)},
                "responses": infer_answers,
            }
        }
        out.update({base: meta, base + "/ready": ready, base + "/infer": infer})
    if paths is not None:
        out = {p: item for p, item in out.items() if p in paths}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"mloop scoring server: {state.version_ref}",
            "version": _mloop_version(),
            "description": "Generated from the model version's signature. Errors are "
            '{"error": {"message", "field", "expected", "got"}} (V2 routes: {"error": "..."}).',
        },
        "paths": out,
        "components": {
            "schemas": schemas,
            "parameters": {
                "RequestId": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Echoed back; up to 200 visible ASCII characters, otherwise the server makes one.",
                }
            },
            "headers": {
                "RequestId": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The caller's request id, or a generated one.",
                }
            },
        },
    }


def _mloop_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mloop")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def openapi_route(state: ServerState, *, csv: bool = True) -> Route:
    """``GET /openapi.json``: the document of the paths the app routes (503 until the model is loaded)."""
    import orjson
    from starlette.responses import Response
    from starlette.routing import Route

    cache: list[bytes] = []

    async def handle(request: Request) -> Response:
        if state.model is None:
            body = {
                "error": {
                    "message": f"{state.ref} is not loaded yet; retry when /health/ready answers 200.",
                    "field": None,
                    "expected": None,
                    "got": None,
                }
            }
            return Response(orjson.dumps(body), 503, media_type="application/json")
        if not cache:
            served = {getattr(r, "path", "") for r in request.app.routes}
            cache.append(orjson.dumps(openapi_document(state, served, csv=csv)))
        return Response(cache[0], media_type="application/json")

    return Route("/openapi.json", handle, methods=["GET"])
