"""MLflow-style ``POST /invocations``: ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``.

The same bodies MLflow's scoring server takes, so a caller switches by changing the URL; the answer is
MLflow's ``{"predictions": [...]}``. ``params`` (an object) is accepted and ignored (no flavor takes inference
params yet).
"""

from __future__ import annotations

from typing import Any

from mloop.serving.schema import RequestError, Schema

__all__ = ["parse_invocations"]

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_invocations(body: Any, schema: Schema) -> Any:
    if not isinstance(body, dict):
        raise RequestError(
            f"The body is a JSON {type(body).__name__}; /invocations takes an object with one of "
            f"{', '.join(_KEYS)}.", status=400, field="body", expected="object", got=type(body).__name__,
        )  # fmt: skip
    given = [k for k in _KEYS if k in body]
    unknown = [k for k in body if k not in _KEYS and k != "params"]
    if len(given) != 1 or unknown:
        got = ", ".join(map(repr, list(body))) or "no keys"
        raise RequestError(
            f"/invocations takes exactly one of {', '.join(_KEYS)} (and optionally params); got {got}.",
            status=400, field="body", expected=f"one of {', '.join(_KEYS)}", got=got,
        )  # fmt: skip
    if "params" in body and not isinstance(body["params"], dict):
        raise RequestError(
            f"params must be an object of inference parameters, got {type(body['params']).__name__}; send "
            '{"params": {...}} or leave it out.', status=400, field="params", expected="object",
            got=type(body["params"]).__name__,
        )  # fmt: skip
    key = given[0]
    value = body[key]
    if key == "dataframe_split":
        return _split(value, schema)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise RequestError("dataframe_records must be an array of objects.", field=key,
                               expected="array of objects", got=type(value).__name__)  # fmt: skip
        return schema.from_records(value, field=key)
    if isinstance(value, list):
        return schema.from_records(value, field=key)
    if isinstance(value, dict):
        return schema.from_object(value, field=key)
    raise RequestError(f"{key} must be an array of rows or an object of columns.", field=key,
                       expected="array or object", got=type(value).__name__)  # fmt: skip


def _split(value: Any, schema: Schema) -> Any:
    field = "dataframe_split"
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise RequestError(f'{field} must be {{"columns": [...], "data": [[...], ...]}}.', field=field,
                           expected="object with columns and data", got=repr(value)[:80])  # fmt: skip
    unknown = [k for k in value if k not in ("columns", "data", "index")]
    if unknown:
        raise RequestError(f"{field} has key(s) {', '.join(map(repr, unknown))}; it takes columns, data and index "
                           "(pandas' split orient). Remove them.", field=f"{field}.{unknown[0]}",
                           expected="columns, data or index", got=repr(unknown[0])[:80])  # fmt: skip
    columns = value.get("columns", list(schema.names))
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(f"{field}.columns must be an array of names.", field=f"{field}.columns",
                           expected="array of strings", got=repr(columns)[:80])  # fmt: skip
    if len(set(columns)) != len(columns):
        raise RequestError(f"{field}.columns names a column twice: {columns}.", field=f"{field}.columns",
                           expected="distinct names", got=repr(columns)[:80])  # fmt: skip
    rows = value["data"]
    index = value.get("index", rows)
    if not isinstance(index, list) or len(index) != len(rows):
        got = f"{len(index)} labels" if isinstance(index, list) else type(index).__name__
        raise RequestError(f"{field}.index must be an array of one label per row ({len(rows)}); got {got}.",
                           field=f"{field}.index", expected=f"array of {len(rows)} labels", got=got)  # fmt: skip
    if not rows:
        raise RequestError("The batch is empty: send at least one row.", field=f"{field}.data",
                           expected="1 or more rows", got="[]")  # fmt: skip
    width = len(columns)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(f"{field}.data[{i}] must be an array of {width} values (one per column); got {got}.",
                               field=f"{field}.data[{i}]", expected=f"{width} values", got=got)  # fmt: skip
    return schema.from_columns({c: [row[j] for row in rows] for j, c in enumerate(columns)})
