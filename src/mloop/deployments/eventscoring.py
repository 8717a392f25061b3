"""Scoring a micro-batch of stream events: decode, route, validate, one ``predict`` call per version, encode.

An event is a JSON object, either one row of features by column name (``{"age": 42, "plan": "pro"}``) or an
envelope ``{"id": "e-17", "inputs": {...}}``. Its **id** is the value of the stream's key field (``?key=``)
when the event has it, else the envelope's ``"id"``, else the transport's own id (the JetStream sequence
number, the Redis entry id). The key field is also the **routing key** (sticky routing: the same key always
reaches the same version); without one the router draws at random. A key field that is not one of the model's
columns is taken out of the row before validation.

Each version the router names is loaded once through the registry's verified loader and kept by reference
(:class:`Versions`); its input :class:`~mloop.serving.schema.Schema` and calls come from serving
(:func:`~mloop.serving.modelcall.model_calls`), so a stream validates exactly like ``POST /predict``. The rows
routed to a version are validated and scored together; when the batch is refused, each row is validated alone
and the bad ones get an error message while the rest are still scored in one call (and a model that refuses a
batch is retried row by row). An event never blocks its batch.

Every event gets exactly one output message (JSON):
``{"id": ..., "source": ..., "model": "model:churn/3", "prediction": 1}`` (``"probabilities": {class: p}``
with ``?proba=true``), or ``{"id": ..., "source": ..., "error": {"message", "field", "expected", "got"}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson

from mloop.serving.modelcall import model_calls
from mloop.serving.schema import RequestError, Schema

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.deployments.router import Router

__all__ = ["BatchResult", "Collector", "Event", "VersionModel", "Versions", "score_events"]

_log = logging.getLogger("mloop.deployments.stream")
_REFUSED = (ValueError, TypeError, KeyError, IndexError)  # a model refusing values the signature let through


class Event(NamedTuple):
    """One consumed event: ``source`` is the transport's id, ``data`` the raw payload, ``handle`` what the
    transport needs to acknowledge it (a reply subject, an entry id)."""

    source: str
    data: bytes
    handle: Any
    problem: str = ""  # why the transport could not give the event's data (answered as an error)


class Collector(Protocol):
    """Where scored rows are recorded off the critical path (:class:`mloop.serving.collector.Collector`)."""

    def record_rows(
        self,
        ids: Sequence[str],
        model: str,
        data: Any,
        outputs: Any,
        latency_s: float,
        role: str = "live",
        *,
        columns: Sequence[str] | None = None,
    ) -> None: ...


class VersionModel:
    """One registered version ready to score: the verified model, its schema, calls and classes."""

    def __init__(self, context: Context, ref: str) -> None:
        from mloop.registry.loader import load_model, resolve_model

        version = resolve_model(context, ref)
        model = load_model(version.ref, client=context)
        names_needed = model.flavor != "sklearn" or hasattr(model.raw, "feature_names_in_")
        self.ref = version.ref
        self.flavor = model.flavor
        self.schema = Schema(version.signature, names_needed=names_needed)
        self.calls = model_calls(model, self.schema)
        classes = getattr(model.raw, "classes_", None)
        self.classes: list[str] | None = None if classes is None else [str(c) for c in _plain(classes)]


class Versions:
    """The versions loaded so far, by the reference the router names (each loaded once, on first use)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._loaded: dict[str, VersionModel] = {}

    def get(self, ref: str) -> VersionModel:
        model = self._loaded.get(ref)
        if model is None:
            import gc

            model = self._loaded[ref] = VersionModel(self.context, ref)
            gc.freeze()  # long-lived from now on (see mloop.deployments.streaming)
            _log.info("stream: loaded %s as %s (%s)", ref, model.ref, model.calls.path)
        return model

    def preload(self, router: Router) -> None:
        for ref in (*router.versions, *([router.shadow] if router.shadow else [])):
            self.get(ref)


def _plain(values: Any) -> list[Any]:
    import numpy as np

    return list(np.asarray(values).tolist())


class _Row(NamedTuple):
    at: int  # position in the batch
    id: Any
    row: dict[str, Any]


def _decode(event: Event, key: str | None) -> tuple[Any, bytes | None, dict[str, Any] | RequestError]:
    """(event id, routing key, the row or the error that makes the event unscorable)."""
    if event.problem:
        return event.source, None, RequestError(event.problem, field="event", expected="a JSON event", got="none")
    try:
        obj = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        got = event.data[:80].decode("utf-8", "replace")
        return event.source, None, RequestError(f"The event is not valid JSON: {exc}.", field="event",
                                                expected="a JSON object", got=got)  # fmt: skip
    if type(obj) is not dict:
        return event.source, None, RequestError(
            f"The event is a JSON {type(obj).__name__}; send an object of features or {{'inputs': {{...}}}}.",
            field="event", expected="a JSON object", got=type(obj).__name__,
        )  # fmt: skip
    row: dict[str, Any] = obj
    ident: Any = event.source
    inputs = obj.get("inputs")
    if type(inputs) is dict:
        row = inputs
        ident = obj.get("id", ident)
    if key is None:
        return ident, None, row
    value = obj.get(key, row.get(key))
    if value is None:
        return ident, None, row
    if key in row:
        del row[key]  # the event's own dict (fresh from the JSON): no copy
    return value, str(value).encode(), row


def _error_body(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, RequestError):
        body: dict[str, Any] = exc.body()["error"]
        return body
    return {"message": str(exc), "field": None, "expected": None, "got": type(exc).__name__}


class BatchResult:
    """What scoring a batch gave: one output message per event (in event order) and, per version, what the
    collector records (ids, model input, predictions)."""

    def __init__(self, size: int) -> None:
        self.messages: list[bytes] = [b""] * size
        self.scored: list[tuple[str, list[str], Any, Any, list[str] | None]] = []  # ref, ids, input, output, names
        self.errors = 0
        self.shadow: dict[str, list[_Row]] = {}


def _with_key_column(rows: list[_Row], schema: Schema, key: str | None) -> None:
    """Put the key back where the model takes it as a column (it was taken out at decode time)."""
    if key is not None and key in schema.by_name:
        for r in rows:
            if key not in r.row:
                r.row[key] = r.id


class _Scored(NamedTuple):
    ok: list[_Row]
    data: Any
    predictions: Any
    probabilities: Any
    failed: list[tuple[_Row, Exception]]


def _score_rows(model: VersionModel, rows: list[_Row], proba: bool) -> _Scored:
    """Score ``rows`` in one call when the batch is valid; otherwise isolate the bad rows and score the rest."""
    try:
        return _call(model, rows, proba)
    except RequestError:
        pass
    except _REFUSED as exc:  # the model refused the batch: find the row(s) it refuses
        _log.debug("stream: %s refused a batch of %d (%s); scoring row by row", model.ref, len(rows), exc)
        return _one_by_one(model, rows, proba)
    good: list[_Row] = []
    failed: list[tuple[_Row, Exception]] = []
    for r in rows:
        try:
            model.schema.from_records([r.row], field="event")
            good.append(r)
        except RequestError as exc:
            failed.append((r, exc))
    if not good:
        return _Scored([], None, None, None, failed)
    try:
        scored = _call(model, good, proba)
    except (RequestError, *_REFUSED):
        scored = _one_by_one(model, good, proba)
    return scored._replace(failed=failed + scored.failed)


def _call(model: VersionModel, rows: list[_Row], proba: bool) -> _Scored:
    data = model.schema.from_records([r.row for r in rows], field="event")
    predictions = model.calls.predict(data)
    probabilities = model.calls.proba(data) if proba and model.calls.proba is not None else None
    return _Scored(rows, data, predictions, probabilities, [])


def _one_by_one(model: VersionModel, rows: list[_Row], proba: bool) -> _Scored:
    import numpy as np

    ok: list[_Row] = []
    preds: list[Any] = []
    probs: list[Any] = []
    failed: list[tuple[_Row, Exception]] = []
    for r in rows:
        try:
            one = _call(model, [r], proba)
        except (RequestError, *_REFUSED) as exc:
            failed.append((r, exc))
            continue
        ok.append(r)
        preds.append(np.asarray(one.predictions)[0])
        if one.probabilities is not None:
            probs.append(np.asarray(one.probabilities)[0])
    data = model.schema.from_records([r.row for r in ok], field="event") if ok else None
    return _Scored(ok, data, np.asarray(preds) if ok else None, np.asarray(probs) if probs else None, failed)


def score_events(
    events: Sequence[Event], router: Router, versions: Versions, *, key: str | None = None, proba: bool = False,
    mirror: bool = False,
) -> BatchResult:  # fmt: skip
    """Score ``events`` (one predict call per version) into one output message per event, in order.

    With ``mirror`` the events the router mirrors are kept by shadow version in ``result.shadow`` (the caller
    scores them with :func:`score_shadow` after publishing the live answers)."""
    result = BatchResult(len(events))
    groups: dict[str, list[_Row]] = {}
    dumps = orjson.dumps
    choose = router.choose
    for i, event in enumerate(events):
        ident, routing, row = _decode(event, key)
        if isinstance(row, RequestError):
            result.messages[i] = dumps({"id": ident, "source": event.source, "error": _error_body(row)})
            result.errors += 1
            continue
        item = _Row(i, ident, row)
        ref = choose(routing)
        group = groups.get(ref)
        if group is None:
            group = groups[ref] = []
        group.append(item)
        if mirror:
            shadow = router.mirror(routing)
            if shadow is not None:
                result.shadow.setdefault(shadow, []).append(item)
    for ref, rows in groups.items():
        model = versions.get(ref)
        _with_key_column(rows, model.schema, key)
        scored = _score_rows(model, rows, proba)
        for r, exc in scored.failed:
            ev = events[r.at]
            result.messages[r.at] = dumps({"id": r.id, "source": ev.source, "model": model.ref,
                                              "error": _error_body(exc)})  # fmt: skip
        result.errors += len(scored.failed)
        if not scored.ok:
            continue
        _encode(result, events, model, scored, dumps)
        result.scored.append(
            (
                model.ref,
                [str(r.id) for r in scored.ok],
                scored.data,
                scored.predictions,
                list(model.schema.names) or None,
            )
        )
    return result


def _encode(result: BatchResult, events: Sequence[Event], model: VersionModel, scored: _Scored,
            dumps: Callable[[Any], bytes]) -> None:  # fmt: skip
    import numpy as np

    preds = np.asarray(scored.predictions).tolist()
    ref = model.ref
    messages = result.messages
    if scored.probabilities is None:
        for r, p in zip(scored.ok, preds, strict=True):
            messages[r.at] = dumps({"id": r.id, "source": events[r.at].source, "model": ref, "prediction": p})
        return
    classes = model.classes or [str(j) for j in range(np.asarray(scored.probabilities).shape[1])]
    for r, p, row in zip(scored.ok, preds, np.asarray(scored.probabilities).tolist(), strict=True):
        messages[r.at] = dumps({"id": r.id, "source": events[r.at].source, "model": ref, "prediction": p,
                                   "probabilities": dict(zip(classes, row, strict=True))})  # fmt: skip


def score_shadow(
    result: BatchResult, versions: Versions, collector: Collector, latency_s: float, key: str | None = None
) -> None:
    """Score the mirrored rows with their shadow version and record them (role ``shadow``); never published."""
    for ref, rows in result.shadow.items():
        try:
            model = versions.get(ref)
            _with_key_column(rows, model.schema, key)
            scored = _score_rows(model, rows, False)
        except Exception:  # a shadow never hurts the live stream
            _log.exception("stream: shadow %s failed on %d events", ref, len(rows))
            continue
        if scored.ok:
            collector.record_rows([str(r.id) for r in scored.ok], model.ref, scored.data, scored.predictions,
                                  latency_s, role="shadow", columns=list(model.schema.names) or None)  # fmt: skip
