"""Native ``POST /predict``: rows (``[{...}]``), one row (``{...}``) or columns (``{"col": [...]}``).

An envelope ``{"inputs": <any of those>, "proba": true}`` (or ``?proba=true``) asks for ``predict_proba``.
The answer is ``{"predictions": [...]}`` or ``{"probabilities": [[...]], "classes": [...]}``, with the model.
"""

from __future__ import annotations

from typing import Any

from mloop.serving.schema import RequestError, Schema

__all__ = ["parse_predict"]

_ENVELOPE = {"inputs", "proba"}


def parse_predict(body: Any, schema: Schema, proba_query: bool) -> tuple[Any, bool]:
    """The model input and whether probabilities were asked for."""
    proba = proba_query
    if isinstance(body, dict) and "inputs" in body and "inputs" not in schema.by_name and body.keys() <= _ENVELOPE:
        flag = body.get("proba", False)
        if not isinstance(flag, bool):
            raise RequestError(f"'proba' must be true or false, got {flag!r}.", status=422, field="proba",
                               expected="true or false", got=repr(flag))  # fmt: skip
        proba = proba or flag
        body = body["inputs"]
        field = "inputs"
    else:
        field = "body"
    if isinstance(body, list):
        return schema.from_records(body, field=field), proba
    if isinstance(body, dict):
        return schema.from_object(body, field=field), proba
    raise RequestError(
        f"The {field} is {type(body).__name__}; send rows ([{{...}}]), one row ({{...}}) or columns "
        '({"col": [...]}).', field=field, expected="array or object", got=type(body).__name__,
    )  # fmt: skip
