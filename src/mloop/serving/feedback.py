"""``POST /feedback``: ground truth sent after the answer, stored beside the collected requests.

Bodies (JSON)::

    {"request_id": "4f1c…", "ground_truth": 1}                        one request of one row
    {"request_id": "4f1c…", "ground_truth": [1, 0, 1]}                one value per row of a 3-row request
    {"request_id": "4f1c…", "row": 2, "ground_truth": 1}              one row of a multi-row request
    {"items": [{...}, {...}]}  or  [{...}, {...}]                     a batch of the above

``request_id`` is the ``X-Request-ID`` the scoring answer carried (or the event id of a streaming event).
The answer is ``202 {"accepted": <items>, "rows": <rows>}``: the rows are buffered and written with the next
flush of the endpoint's collector (:mod:`mloop.serving.collector`) to
``collected/feedback/endpoint=<name>/hour=<arrival hour>/``, each with the time it arrived; the latest value per
``(request_id, row)`` wins when read back. Bad input gets a 400/413/422 body naming the field; a full buffer
gets 503 with ``Retry-After`` (feedback is never dropped silently).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from mloop.errors import Overloaded
from mloop.serving.schema import RequestError

if TYPE_CHECKING:
    from mloop.serving.collector import Collector
    from mloop.serving.scoring import Answer, Handler

__all__ = ["MAX_FEEDBACK_ITEMS", "feedback_handler", "feedback_rows"]

MAX_FEEDBACK_ITEMS = 100_000
_MAX_ID = 200


def _bad(message: str, field: str, expected: str, got: Any) -> RequestError:
    shown = orjson.dumps(got).decode()[:80] if not isinstance(got, str) else got[:80]
    return RequestError(message, status=422, field=field, expected=expected, got=shown)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def feedback_rows(items: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[int], list[Any]]:
    """The ``(request ids, rows, values)`` of feedback items, or a :class:`RequestError` naming the bad field
    (``items[3].request_id``)."""
    ids: list[str] = []
    rows: list[int] = []
    values: list[Any] = []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, Mapping):
            raise _bad(f"{where} must be an object with request_id and ground_truth.", where, "an object", item)
        unknown = sorted(set(item) - {"request_id", "ground_truth", "row"})
        if unknown:
            raise _bad(f"{where} has unknown field(s) {', '.join(unknown)}; send request_id, ground_truth and "
                       "optionally row.", f"{where}.{unknown[0]}", "request_id, ground_truth, row",
                       unknown)  # fmt: skip
        rid = item.get("request_id")
        if not isinstance(rid, str) or not 0 < len(rid) <= _MAX_ID:
            raise _bad(f"{where}.request_id must be the request's X-Request-ID (a string of 1-{_MAX_ID} "
                       "characters).", f"{where}.request_id", "a non-empty string", rid)  # fmt: skip
        if "ground_truth" not in item:
            raise _bad(f"{where} has no ground_truth.", f"{where}.ground_truth", "a value, or a list with one "
                       "value per row", None)  # fmt: skip
        truth, row = item["ground_truth"], item.get("row")
        if row is not None and (not isinstance(row, int) or isinstance(row, bool) or row < 0):
            raise _bad(f"{where}.row must be a row index (an integer >= 0).", f"{where}.row", "an integer >= 0", row)
        if isinstance(truth, list) and row is None:
            if not truth:
                raise _bad(f"{where}.ground_truth is an empty list; send one value per row of the request.",
                           f"{where}.ground_truth", "one value per row", truth)  # fmt: skip
            for j, value in enumerate(truth):
                if not _scalar(value):
                    raise _bad(f"{where}.ground_truth[{j}] must be a number, string, boolean or null.",
                               f"{where}.ground_truth[{j}]", "a scalar", value)  # fmt: skip
            ids.extend([rid] * len(truth))
            rows.extend(range(len(truth)))
            values.extend(truth)
            continue
        if not _scalar(truth) and not (isinstance(truth, list) and all(_scalar(v) for v in truth)):
            raise _bad(f"{where}.ground_truth must be a number, string, boolean, null or (with row) a list of them.",
                       f"{where}.ground_truth", "a scalar", truth)  # fmt: skip
        ids.append(rid)
        rows.append(0 if row is None else row)
        values.append(truth)
    if not ids:
        raise _bad("The feedback has no items.", "items", "at least one item", [])
    return ids, rows, values


def _items(body: Any) -> tuple[list[Any], str]:
    if isinstance(body, list):
        return body, "body"
    if isinstance(body, dict):
        if "items" in body:
            items = body["items"]
            if len(body) > 1:
                raise _bad("Send either {\"items\": [...]} or one item, not both.", "items", "only items",
                           sorted(body))  # fmt: skip
            if not isinstance(items, list):
                raise _bad("items must be a list of feedback objects.", "items", "a list", items)
            return items, "items"
        return [body], "body"
    raise RequestError("The body must be a feedback object, {\"items\": [...]}, or a list of feedback objects.",
                       status=400, field="body", expected="an object or a list", got=type(body).__name__)  # fmt: skip


def feedback_handler(collector: Collector, max_body_bytes: int = 8 * 1024 * 1024) -> Handler:
    """The ``POST /feedback`` handler (the shape of :data:`mloop.serving.scoring.Handler`) writing through
    ``collector``."""
    from mloop.serving.scoring import _read_body, decode_json

    async def handle(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]]) -> Answer:
        try:
            length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
            items, _ = _items(decode_json(await _read_body(receive, max_body_bytes, length)))
            if len(items) > MAX_FEEDBACK_ITEMS:
                raise _bad(f"The batch has {len(items)} items; send at most {MAX_FEEDBACK_ITEMS} per request.",
                           "items", f"at most {MAX_FEEDBACK_ITEMS} items", len(items))  # fmt: skip
            rows = collector.record_feedback(items)
        except RequestError as exc:
            return exc.status, orjson.dumps(exc.body()), []
        except Overloaded as exc:
            body = orjson.dumps({"error": {"message": str(exc)}})
            return 503, body, [(b"retry-after", str(exc.retry_after).encode())]
        return 202, orjson.dumps({"accepted": len(items), "rows": rows}), []

    return handle
