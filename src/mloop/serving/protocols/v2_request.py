"""Open Inference Protocol v2 infer requests: validating the request object and building the model's input.

Pure functions, tested without a server: :func:`parse_infer_request` checks ``id``, ``parameters``, the
``inputs`` (decoded by :mod:`mloop.serving.protocols.tensors`, binary parts included) and the requested
``outputs``; :func:`model_input` turns the tensors into what ``predict`` takes. Errors are
:class:`~mloop.errors.InvalidInput` naming the tensor and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import InvalidInput, shown
from mloop.serving.protocols.tensors import DATATYPES, binary_size, datatype_of, decode_tensor

__all__ = ["OUTPUTS", "InferRequest", "model_input", "parse_infer_request"]

OUTPUTS = ("predict", "predict_proba")


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
    column_types: Mapping[str, str] | None = None, *, names_needed: bool = True,
) -> Any:  # fmt: skip
    """What ``predict`` takes: one tensor per signature column (a DataFrame), or one ``[N, F]`` tensor.

    ``column_types`` (signature column -> its training dtype) refuses a column tensor of another kind: a
    number column takes INT*, UINT* or FP*, a bool column BOOL, any other column BYTES. A model fitted
    without feature names (``names_needed=False``) gets the column tensors as one 2-D array in column order.
    """
    names = [n for n, _ in inputs]
    if columns and all(n in columns for n in names) and (len(columns) > 1 or inputs[0][1].ndim <= 1 or
                                                         inputs[0][1].shape[-1] == 1):  # fmt: skip
        frame = _frame(inputs, columns, column_types or {})
        return frame if names_needed else frame.to_numpy()
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
