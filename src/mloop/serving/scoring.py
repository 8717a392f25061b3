"""The scoring routes ``POST /predict`` and ``POST /invocations`` as plain ASGI: the hot path of the server.

:func:`scoring_handler` answers one request from its ASGI scope and ``receive`` and gives back the status, the
JSON body and any extra headers; :class:`~mloop.serving.app.ScoringApp` sends them itself (no router, no
Request/Response objects on this path: they cost a sizeable share of a one-row request). The same handler backs
the app's Starlette routes for these paths, so the router still lists them (405 for other methods, OpenAPI).

A request is admitted by the app's batcher (503 + ``Retry-After`` past its bound), read (413 past the body
limit, counted while streaming), parsed as JSON or, with ``Content-Type: text/csv``, as CSV, checked against
the signature, and scored through the batcher (combined with concurrent requests). Bad input gets the
:class:`RequestError` body naming the field; a 500 names the request id and logs the details. With a request
collector (``state.collector``) each answered request is recorded (a few appends; the collector writes in its
own thread), with its role from ``scope["mloop.role"]`` (``live`` unless the endpoint mirrored it as
``shadow``); a refused or failed request is recorded as one row without inputs or outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from mloop.errors import InvalidInput, MloopError, Overloaded
from mloop.serving.protocols.invocations import parse_invocations
from mloop.serving.protocols.native import parse_predict
from mloop.serving.schema import RequestError, Schema

if TYPE_CHECKING:
    from mloop.serving.app import ServerState

__all__ = ["Answer", "scoring_handler"]

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, JSON body, extra headers
Handler = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[MutableMapping[str, Any]]]], Awaitable[Answer]]
Parse = Callable[[Any, Schema, bytes], tuple[Any, bool]]
_log = logging.getLogger("mloop.serving")


def _answer(payload: Any, status: int = 200) -> Answer:
    return status, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), []


def _error(status: int, message: str) -> Answer:
    return _answer({"error": {"message": message}}, status)


def _too_large(limit: int, got: str) -> RequestError:
    return RequestError(f"The body is {got}; the limit is {limit} bytes. Send smaller batches.", status=413,
                        field="body", expected=f"at most {limit} bytes", got=got)  # fmt: skip


async def _read_body(receive: Callable[[], Awaitable[MutableMapping[str, Any]]], limit: int, length: bytes) -> bytes:
    if length and length.isdigit() and int(length) > limit:
        raise _too_large(limit, f"{int(length)} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the client went away
            raise RequestError("The client disconnected before sending the whole body.", status=400, field="body",
                               expected="a complete body", got="a disconnect")  # fmt: skip
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, f"over {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_json(raw: bytes) -> Any:
    """The JSON body, or a 400 naming what is wrong (NaN/Infinity get a hint: they are not JSON)."""
    if not raw.strip():
        raise RequestError("The body is empty; send a JSON object or array.", status=400, field="body",
                           expected="JSON", got="empty body")  # fmt: skip
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        hint = ""
        for token in (b"NaN", b"Infinity"):
            if token in raw:
                hint = f" {token.decode()} is not valid JSON; send null for a missing value."
                break
        raise RequestError(f"The body is not valid JSON: {exc}.{hint}", status=400, field="body",
                           expected="JSON", got=raw[:80].decode("utf-8", "replace")) from None  # fmt: skip


def proba_query(query: bytes) -> bool:
    """``?proba=true|false|1|0`` (absent: false)."""
    if not query:
        return False
    from urllib.parse import parse_qsl

    flag = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)).get("proba", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise RequestError(f"?proba= must be true or false, got {flag!r}.", status=400, field="proba",
                           expected="true or false", got=flag)  # fmt: skip
    return flag in ("true", "1")


def _native(body: Any, schema: Schema, query: bytes) -> tuple[Any, bool]:
    return parse_predict(body, schema, proba_query(query))


def _invocations(body: Any, schema: Schema, query: bytes) -> tuple[Any, bool]:
    return parse_invocations(body, schema), False


async def _score(state: ServerState, data: Any, proba: bool) -> dict[str, Any]:
    model, calls = state.model, state.calls
    assert model is not None and calls is not None
    fn = calls.proba if proba else calls.predict
    if fn is None:
        raise RequestError(f"{state.version_ref} ({model.flavor}) has no predict_proba; ask without proba.",
                           field="proba", expected="false for this model", got="true")  # fmt: skip
    key = ("proba" if proba else "predict") if state.combine else None
    try:
        out = await state.batcher.score(fn, data, int(data.shape[0]), key)
    except RequestError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # the model refused values the signature let through
        raise RequestError(f"{state.version_ref} refused the input: {exc}", field=None,
                           expected="input the model accepts", got=type(exc).__name__) from exc  # fmt: skip
    result: dict[str, Any] = {"probabilities" if proba else "predictions": _plain_array(out)}
    if proba and state.classes is not None:
        result["classes"] = state.classes
    result["model"] = state.version_ref
    return result


def _plain_array(values: Any) -> Any:
    import numpy as np

    arr = np.asarray(values)
    return arr.tolist() if arr.dtype == object or not arr.flags.c_contiguous else arr


def _record_failure(state: ServerState, scope: MutableMapping[str, Any], status: int, started: float) -> None:
    collector = state.collector
    if collector is not None:
        collector.record(scope.get("mloop.request_id", ""), state.version_ref, None, None,
                         time.perf_counter() - started, status, scope.get("mloop.role", "live"))  # fmt: skip


def scoring_handler(state: ServerState, native: bool) -> Handler:
    """The handler of ``/predict`` (``native``) or ``/invocations`` for the app serving ``state``."""
    parse: Parse = _native if native else _invocations

    async def handle(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]]) -> Answer:
        schema = state.schema
        if state.model is None or schema is None:
            return _error(503, f"{state.ref} is not loaded yet; retry when /health/ready answers 200.")
        batcher = state.batcher
        try:
            batcher.admit()
        except Overloaded as exc:
            status, body, _ = _error(503, str(exc))
            return status, body, [(b"retry-after", str(exc.retry_after).encode())]
        started = time.perf_counter()
        try:
            try:
                content_type = length = b""
                for key, value in scope["headers"]:
                    if key == b"content-type":
                        content_type = value
                    elif key == b"content-length":
                        length = value
                raw = await _read_body(receive, state.max_body_bytes, length)
                if content_type.startswith(b"text/csv"):
                    from mloop.serving.protocols.csv_body import parse_csv

                    data, proba = parse_csv(raw, schema), native and proba_query(scope.get("query_string", b""))
                else:
                    data, proba = parse(decode_json(raw), schema, scope.get("query_string", b""))
            finally:
                batcher.arrived()
            scope["mloop.input"] = (data, proba)  # an endpoint's shadow scores the parsed input, not the body again
            result = await _score(state, data, proba)
            collector = state.collector
            if collector is not None:
                collector.record(scope.get("mloop.request_id", ""), result["model"], data, result,
                                 time.perf_counter() - started, 200, scope.get("mloop.role", "live"),
                                 columns=schema.names or None)  # fmt: skip
            return _answer(result)
        except RequestError as exc:
            _record_failure(state, scope, exc.status, started)
            return _answer(exc.body(), exc.status)
        except (InvalidInput, MloopError) as exc:
            _record_failure(state, scope, 422, started)
            return _error(422, str(exc))
        except Exception:
            rid = scope.get("mloop.request_id", "")
            _log.exception("request %s to %s failed", rid, scope.get("path"))
            _record_failure(state, scope, 500, started)
            return _error(500, f"Internal error scoring {state.version_ref} (request {rid}); see the server log.")
        finally:
            batcher.release()

    return handle
