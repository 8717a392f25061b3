"""The Open Inference Protocol v2 (KServe / Triton "V2" REST): health, metadata and ``infer`` routes.

Routes (``{name}`` is the served model's name, ``{version}`` its registered version)::

    GET  /v2                                          server metadata {name, version, extensions}
    GET  /v2/health/live | /v2/health/ready           200 {"live": true} / {"ready": true}; 503 when not ready
    GET  /v2/models/{name}[/versions/{version}]        model metadata {name, versions, platform, inputs, outputs}
    GET  /v2/models/{name}[/versions/{version}]/ready  200 {"name", "ready": true}
    POST /v2/models/{name}[/versions/{version}]/infer  {id?, parameters?, inputs: [...], outputs?: [...]}

Tensors (:mod:`mloop.serving.protocols.tensors`) are ``{"name", "shape", "datatype", "data"}``. Errors are
``{"error": "..."}``: 400 for a bad request (naming the tensor and the field), 404 for another model or
version. The conversions are pure functions (``decode_tensor``, ``encode_tensor``, :func:`parse_infer_request`,
:func:`model_input`) so they are tested without a server.

A model takes either one tensor per signature column (shape ``[N]`` or ``[N, 1]``; mixed types work) or one
``[N, F]`` tensor of any name. Outputs are ``predict`` (the default) and ``predict_proba`` when the model has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound, Overloaded, shown
from mloop.serving.protocols.tensors import (
    DATATYPES,
    datatype_of,
    decode_tensor,
    encode_binary,
    encode_tensor,
)
from mloop.serving.protocols.v2_request import OUTPUTS, InferRequest, model_input, parse_infer_request

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from mloop.flavors import LoadedModel
    from mloop.serving.batching import Batcher

__all__ = [
    "DATATYPES",
    "InferRequest",
    "V2Model",
    "datatype_of",
    "decode_tensor",
    "encode_tensor",
    "model_input",
    "parse_infer_request",
    "v2_routes",
]

INLINE_BYTES = 4096  # larger bodies are decoded and scored in a worker thread (the event loop keeps answering)


def _bad(what: str, fix: str) -> InvalidInput:
    return InvalidInput(f"{what}; {fix}")


class V2Model:
    """The served model as the V2 routes see it: name, version, signature columns and outputs."""

    def __init__(self, model: LoadedModel, *, name: str | None = None, version: str | None = None) -> None:
        from mloop.refs import parse_ref

        self.model = model
        ref = parse_ref(model.ref, default_kind="model") if model.ref else None
        self.name = name or (ref.name if ref else "model")
        self.version = version or str(model.meta.get("version") or (ref.version if ref and ref.version else 1))
        signature = model.meta.get("signature") or {}
        self.columns = tuple(str(c["name"]) for c in signature.get("inputs") or ())
        self.column_types = {str(c["name"]): str(c.get("type", "object")) for c in signature.get("inputs") or ()}
        self.output_sig = signature.get("output") or {}
        names = getattr(model.raw, "feature_names_in_", None)
        self.feature_names = [str(n) for n in names] if names is not None else None
        self.names_needed = model.flavor != "sklearn" or names is not None  # as the native routes' Schema
        self.outputs = OUTPUTS if model.has_proba else OUTPUTS[:1]

    def metadata(self) -> dict[str, Any]:
        inputs = [{"name": c, "datatype": datatype_of(t), "shape": [-1]} for c, t in self.column_types.items()]
        out_shape = list(self.output_sig.get("shape") or [-1])
        outputs = [{"name": "predict", "datatype": datatype_of(self._output_type()),
                    "shape": out_shape}]  # fmt: skip
        if "predict_proba" in self.outputs:
            classes = getattr(self.model.raw, "classes_", None)
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(classes) if classes is not None else -1]})  # fmt: skip
        return {"name": self.name, "versions": [self.version], "platform": f"mloop-{self.model.flavor}",
                "inputs": inputs, "outputs": outputs}  # fmt: skip

    def _output_type(self) -> str:
        """The signature's output type; without one, the classes' dtype (a classifier) or float64 (another
        scikit-learn model); ``object`` (BYTES) only where nothing says more."""
        declared = self.output_sig.get("type")
        if declared:
            return str(declared)
        classes = getattr(self.model.raw, "classes_", None)
        if classes is not None:
            import numpy as np

            return str(np.asarray(classes).dtype)
        return "float64" if self.model.flavor == "sklearn" else "object"

    def check(self, name: str, version: str | None) -> None:
        if name != self.name:
            raise NotFound(f"Model {name!r} is not served here; this server serves {self.name!r} "
                           f"(GET /v2/models/{self.name}).")  # fmt: skip
        if version is not None and version != self.version:
            raise NotFound(f"Model {name!r} has no version {version!r} on this server; it serves version "
                           f"{self.version} (/v2/models/{self.name}/versions/{self.version}).")  # fmt: skip

    def infer(self, body: Any, binary: bytes | None = None) -> tuple[dict[str, Any], bytes]:
        """The response object and its binary part (empty unless binary outputs were asked for)."""
        request = parse_infer_request(body, self.outputs, binary)
        data = model_input(request.inputs, self.columns, self.feature_names, self.column_types,
                           names_needed=self.names_needed)  # fmt: skip
        outputs = []
        parts: list[bytes] = []
        for out in request.outputs:
            fn = self.model.predict if out == "predict" else self.model.predict_proba
            try:
                result = fn(data)
            except (ValueError, TypeError) as exc:  # the estimator refused the values (e.g. an unknown category)
                raise _bad(
                    f"The model refused the input tensors: {shown(str(exc), 300)}",
                    "send values of the types and ranges in GET /v2/models/" + self.name,
                ) from None
            if out in request.binary_outputs:
                datatype, raw = encode_binary(result)
                shape = list(getattr(result, "shape", None) or [len(result)])
                outputs.append({"name": out, "datatype": datatype, "shape": shape,
                                "parameters": {"binary_data_size": len(raw)}})  # fmt: skip
                parts.append(raw)
            else:
                outputs.append(encode_tensor(out, result))
        response: dict[str, Any] = {"model_name": self.name, "model_version": self.version, "outputs": outputs}
        if request.id is not None:
            response["id"] = request.id
        if request.parameters:
            response["parameters"] = request.parameters
        return response, b"".join(parts)


def _infer_response(content: dict[str, Any], binary: bytes) -> Response:
    import orjson
    from starlette.responses import Response

    if not binary:
        return _json(content)
    header = orjson.dumps(content)
    return Response(header + binary, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(header))})  # fmt: skip


def _split_body(raw: bytes, header: str | None) -> tuple[bytes, bytes | None]:
    """The JSON part and the binary part (``None`` without the Inference-Header-Content-Length header)."""
    if header is None:
        return raw, None
    if not header.isdigit() or int(header) > len(raw):
        raise InvalidInput(f"Inference-Header-Content-Length is {shown(header)} for a {len(raw)}-byte body; give "
                           "the byte length of the JSON part that starts the body.")  # fmt: skip
    return raw[: int(header)], raw[int(header) :]


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type="application/json")


def _parse_body(raw: bytes) -> Any:
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        hint = next((f" {t} is not JSON; send finite numbers." for t in ("NaN", "Infinity") if t.encode() in raw), "")
        raise InvalidInput(f"The request body is not valid JSON ({exc}); send a JSON object.{hint}") from None


def _error(exc: Exception) -> Response:
    status = 404 if isinstance(exc, NotFound) else 400
    return _json({"error": str(exc)}, status)


async def _read_body(request: Request, limit: int | None) -> bytes:
    length = request.headers.get("content-length", "")
    if limit is not None and length.isdigit() and int(length) > limit:
        raise _TooLarge(f"The request body is {length} bytes; the limit is {limit}. Send smaller batches.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit is not None and size > limit:
            raise _TooLarge(f"The request body is over {limit} bytes (the limit). Send smaller batches.")
        chunks.append(chunk)
    return b"".join(chunks)


def v2_routes(
    source: LoadedModel | Callable[[], LoadedModel | None], *, max_body_bytes: int | None = None,
    batcher: Callable[[], Batcher] | None = None, **names: str,
) -> list[Route]:  # fmt: skip
    """The V2 routes for one model: a loaded model, or a callable returning it once loaded (``None`` before).

    ``names`` may set ``name`` and ``version`` (defaults: from the model's registry reference); a body over
    ``max_body_bytes`` is answered 413. With ``batcher`` (the app's), inference is admitted and queued under the
    app's bound (503 with ``Retry-After`` past it), one request per call.
    """
    from starlette.routing import Route

    cache: list[V2Model] = []

    def served() -> V2Model | None:
        if not cache:
            model = source() if callable(source) else source
            if model is None:
                return None
            cache.append(V2Model(model, **names))
        return cache[0]

    async def server_metadata(request: Request) -> Response:
        from importlib.metadata import PackageNotFoundError, version

        try:
            mloop_version = version("mloop")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            mloop_version = "0"
        return _json({"name": "mloop", "version": mloop_version, "extensions": ["binary_tensor_data"]})

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        ok = served() is not None
        return _json({"ready": ok}, 200 if ok else 503)

    def _model(request: Request) -> V2Model:
        model = served()
        if model is None:
            raise _NotReady()
        model.check(request.path_params["name"], request.path_params.get("version"))
        return model

    async def model_metadata(request: Request) -> Response:
        try:
            return _json(_model(request).metadata())
        except _NotReady:
            return _json({"error": "The model is still loading; retry when /v2/health/ready answers 200."}, 503)
        except NotFound as exc:
            return _error(exc)

    async def model_ready(request: Request) -> Response:
        try:
            model = _model(request)
        except _NotReady:
            return _json({"name": request.path_params["name"], "ready": False}, 503)
        except NotFound as exc:
            return _error(exc)
        return _json({"name": model.name, "ready": True})

    async def infer(request: Request) -> Response:
        gate = batcher() if batcher is not None else None
        if gate is not None:
            try:
                gate.admit()
            except Overloaded as exc:
                return _json({"error": str(exc)}, 503, {"Retry-After": str(exc.retry_after)})
        try:
            return await _infer(request, gate)
        finally:
            if gate is not None:
                gate.release()

    async def _infer(request: Request, gate: Batcher | None) -> Response:
        try:
            try:
                model = _model(request)
                raw = await _read_body(request, max_body_bytes)
            finally:
                if gate is not None:
                    gate.arrived()
            head, binary = _split_body(raw, request.headers.get("inference-header-content-length"))
            heavy = len(raw) > INLINE_BYTES
            if gate is not None:
                work = gate.score(lambda _: model.infer(_parse_body(head), binary), None, 1, None, heavy=heavy)
                return _infer_response(*await work)
            if not heavy:
                return _infer_response(*model.infer(_parse_body(head), binary))
            from starlette.concurrency import run_in_threadpool

            return _infer_response(*await run_in_threadpool(lambda: model.infer(_parse_body(head), binary)))
        except _NotReady:
            return _json({"error": "The model is still loading; retry when /v2/health/ready answers 200."}, 503)
        except (InvalidInput, NotFound) as exc:
            return _error(exc)
        except _TooLarge as exc:
            return _json({"error": str(exc)}, 413)
        except Exception:  # a fault of the model or the server: logged, answered without internals
            rid = request.scope.get("mloop.request_id", "")
            logging.getLogger("mloop.serving").exception("V2 infer request %s to %s failed", rid, request.url.path)
            return _json({"error": f"Internal error in {request.url.path} (request {rid}); see the server log."}, 500)

    model_paths = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
    for base in model_paths:
        routes += [
            Route(base, model_metadata, methods=["GET"]),
            Route(base + "/ready", model_ready, methods=["GET"]),
            Route(base + "/infer", infer, methods=["POST"]),
        ]

    async def unknown(request: Request) -> Response:  # V2 clients get the protocol's error body, not text
        from starlette.routing import Match

        path = request.url.path
        allowed = sorted(
            {m for r in routes if r.matches(request.scope)[0] == Match.PARTIAL for m in r.methods or () if m != "HEAD"}
        )
        if allowed:
            response = _json({"error": f"{request.method} is not allowed on {path}; use {' or '.join(allowed)}."}, 405)
            response.headers["Allow"] = ", ".join([*allowed, "HEAD"] if "GET" in allowed else allowed)  # RFC 9110
            return response
        return _json({"error": f"No V2 route {path}; the routes are /v2, /v2/health/live|ready and "
                               "/v2/models/{name}[/versions/{version}][/ready|/infer]."}, 404)  # fmt: skip

    return [*routes, Route("/v2/{rest:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]


class _NotReady(Exception):
    """The model is not loaded yet (answered 503)."""


class _TooLarge(Exception):
    """The request body is over the server's limit (answered 413)."""
