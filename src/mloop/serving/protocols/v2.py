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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound, shown
from mloop.serving.protocols.tensors import (
    DATATYPES,
    binary_size,
    datatype_of,
    decode_tensor,
    encode_binary,
    encode_tensor,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from mloop.flavors import LoadedModel

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

OUTPUTS = ("predict", "predict_proba")
INLINE_BYTES = 4096  # larger bodies are decoded and scored in a worker thread (the event loop keeps answering)


def _bad(what: str, fix: str) -> InvalidInput:
    return InvalidInput(f"{what}; {fix}")


@dataclass(frozen=True)
class InferRequest:
    """A parsed infer request: decoded inputs in order, the outputs asked for, the id and parameters."""

    inputs: tuple[tuple[str, Any], ...]
    outputs: tuple[str, ...]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    binary_outputs: frozenset[str] = frozenset()  # outputs asked for as binary tensor data


def parse_infer_request(body: Any, available: Sequence[str] = OUTPUTS, binary: bytes | None = None) -> InferRequest:
    """Validate an infer request body (already JSON-decoded); ``available`` are the output names served.

    ``binary`` is the part after the JSON header when the request uses the binary tensor data extension: the
    inputs with ``binary_data_size`` take their bytes from it in order.
    """
    if not isinstance(body, dict):
        raise _bad(f"The request body is {shown(body)}", 'send an object {"inputs": [...]}')
    rid = body.get("id")
    if rid is not None and not isinstance(rid, str):
        raise _bad(f"Field 'id' is {shown(rid)}", "send a string id or leave it out")
    params = body.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise _bad(f"Field 'parameters' is {shown(params)}", "send an object or leave it out")
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise _bad(f"Field 'inputs' is {shown(raw_inputs)}", "send a non-empty list of input tensors")
    decoded = []
    offset = 0
    for i, t in enumerate(raw_inputs):
        where = "input" if _named(t) else f"input {i}"
        size = binary_size(t) if binary is not None else None
        chunk = None
        if size is not None and binary is not None:
            chunk = binary[offset : offset + size]
            if len(chunk) != size:
                raise _bad(
                    f"{where} {shown(t.get('name'))} has binary_data_size {size} but only {len(chunk)} byte(s) "
                    "are left in the binary part",
                    "send every tensor's bytes, in input order",
                )
            offset += size
        decoded.append(decode_tensor(t, where, chunk))
    if binary is not None and offset != len(binary):
        raise _bad(f"The binary part has {len(binary) - offset} byte(s) no input claims",
                   "make the inputs' binary_data_size add up to the bytes after the JSON header")  # fmt: skip
    inputs = tuple(decoded)
    names = [n for n, _ in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _bad(f"Input tensor {dupes[0]!r} is given more than once", "send each input tensor once")
    raw_outputs = body.get("outputs")
    all_binary = (params or {}).get("binary_data_output") is True
    binary_outputs = set()
    if raw_outputs is None:
        outputs: tuple[str, ...] = (available[0],)
    elif not isinstance(raw_outputs, list) or not raw_outputs:
        raise _bad(f"Field 'outputs' is {shown(raw_outputs)}", 'send a list like [{"name": "predict"}] or leave it out')
    else:
        wanted = []
        for i, out in enumerate(raw_outputs):
            oname = out.get("name") if isinstance(out, dict) else None
            if oname not in available:
                raise _bad(f"Requested output {i} is {shown(oname if oname is not None else out)}",
                           f"this model's outputs are {', '.join(map(repr, available))}")  # fmt: skip
            wanted.append(str(oname))
            out_params = out.get("parameters") if isinstance(out, dict) else None
            flag = out_params.get("binary_data") if isinstance(out_params, dict) else None
            if flag is True or (flag is None and all_binary):
                binary_outputs.add(str(oname))
        outputs = tuple(dict.fromkeys(wanted))
    if raw_outputs is None and all_binary:
        binary_outputs = set(outputs)
    return InferRequest(inputs, outputs, rid, dict(params or {}), frozenset(binary_outputs))


def _named(tensor: Any) -> bool:
    return isinstance(tensor, dict) and isinstance(tensor.get("name"), str) and bool(tensor.get("name"))


def model_input(
    inputs: Sequence[tuple[str, Any]], columns: Sequence[str], feature_names: Sequence[str] | None,
    column_types: Mapping[str, str] | None = None,
) -> Any:  # fmt: skip
    """What ``predict`` takes: one tensor per signature column (a DataFrame), or one ``[N, F]`` tensor.

    ``column_types`` (signature column -> its training dtype) refuses a column tensor of another kind: a
    number column takes INT*, UINT* or FP*, a bool column BOOL, any other column BYTES.
    """
    names = [n for n, _ in inputs]
    if columns and all(n in columns for n in names) and (len(columns) > 1 or inputs[0][1].ndim <= 1 or
                                                         inputs[0][1].shape[-1] == 1):  # fmt: skip
        return _frame(inputs, columns, column_types or {})
    if len(inputs) != 1:
        expected = ", ".join(map(repr, columns)) if columns else "one [N, F] tensor"
        raise _bad(f"Input tensors {', '.join(map(repr, names))} do not match the model's inputs",
                   f"send one tensor per column ({expected}) or a single [N, F] tensor")  # fmt: skip
    name, arr = inputs[0]
    width = len(feature_names) if feature_names is not None else (len(columns) or None)
    if arr.ndim != 2 or arr.shape[0] == 0 or (width is not None and arr.shape[1] != width):
        need = f"[N, {width}]" if width is not None else "[N, F]"
        raise _bad(
            f"Input tensor {name!r} has shape {list(arr.shape)}; the model takes {need}",
            f"send N >= 1 rows of {width or 'F'} features, e.g. shape [1, {width or 'F'}] for one row",
        )
    if feature_names is not None:
        import pandas as pd

        return pd.DataFrame(arr, columns=list(feature_names))
    return arr


def _accepts(dtype: str) -> tuple[str, ...]:
    v2 = datatype_of(dtype)
    if v2 in ("BOOL", "BYTES"):
        return (v2,)
    return tuple(k for k in DATATYPES if k not in ("BOOL", "BYTES"))


def _frame(inputs: Sequence[tuple[str, Any]], columns: Sequence[str], types: Mapping[str, str]) -> Any:
    got = dict(inputs)
    for name, arr in inputs:
        allowed = _accepts(types[name]) if name in types else None
        if allowed is not None and datatype_of(arr.dtype) not in allowed:
            want = allowed[0] if len(allowed) == 1 else "a number type (INT*, UINT* or FP*)"
            raise _bad(f"Input tensor {name!r} is {datatype_of(arr.dtype)} but the model's column {name!r} is "
                       f"{types[name]}", f"send it as {want}")  # fmt: skip
    missing = [c for c in columns if c not in got]
    if missing:
        raise _bad(f"Input tensor(s) {', '.join(map(repr, missing))} are missing",
                   f"the model takes one tensor per column: {', '.join(map(repr, columns))}")  # fmt: skip
    rows: int | None = None
    for name, arr in inputs:
        if not (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)) or arr.shape[0] == 0:
            raise _bad(f"Input tensor {name!r} has shape {list(arr.shape)}",
                       "a column tensor has shape [N] or [N, 1] with N >= 1 rows")  # fmt: skip
        if rows is not None and arr.shape[0] != rows:
            raise _bad(f"Input tensor {name!r} has {arr.shape[0]} rows but {inputs[0][0]!r} has {rows}",
                       "send the same number of rows in every column tensor")  # fmt: skip
        rows = arr.shape[0]
    import pandas as pd

    return pd.DataFrame({c: got[c].reshape(-1) for c in columns}, columns=list(columns))


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
        self.outputs = OUTPUTS if model.has_proba else OUTPUTS[:1]

    def metadata(self) -> dict[str, Any]:
        inputs = [{"name": c, "datatype": datatype_of(t), "shape": [-1]} for c, t in self.column_types.items()]
        out_shape = list(self.output_sig.get("shape") or [-1])
        outputs = [{"name": "predict", "datatype": datatype_of(self.output_sig.get("type", "object")),
                    "shape": out_shape}]  # fmt: skip
        if "predict_proba" in self.outputs:
            classes = getattr(self.model.raw, "classes_", None)
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(classes) if classes is not None else -1]})  # fmt: skip
        return {"name": self.name, "versions": [self.version], "platform": f"mloop-{self.model.flavor}",
                "inputs": inputs, "outputs": outputs}  # fmt: skip

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
        data = model_input(request.inputs, self.columns, self.feature_names, self.column_types)
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


def _json(content: Any, status: int = 200) -> Response:
    import orjson
    from starlette.responses import Response

    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


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
    source: LoadedModel | Callable[[], LoadedModel | None], *, max_body_bytes: int | None = None, **names: str
) -> list[Route]:
    """The V2 routes for one model: a loaded model, or a callable returning it once loaded (``None`` before).

    ``names`` may set ``name`` and ``version`` (defaults: from the model's registry reference); a body over
    ``max_body_bytes`` is answered 413.
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
        try:
            model = _model(request)
            raw = await _read_body(request, max_body_bytes)
            head, binary = _split_body(raw, request.headers.get("inference-header-content-length"))
            if len(raw) <= INLINE_BYTES:
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
            return _json({"error": f"{request.method} is not allowed on {path}; use {' or '.join(allowed)}."}, 405)
        return _json({"error": f"No V2 route {path}; the routes are /v2, /v2/health/live|ready and "
                               "/v2/models/{name}[/versions/{version}][/ready|/infer]."}, 404)  # fmt: skip

    return [*routes, Route("/v2/{rest:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]


class _NotReady(Exception):
    """The model is not loaded yet (answered 503)."""


class _TooLarge(Exception):
    """The request body is over the server's limit (answered 413)."""
