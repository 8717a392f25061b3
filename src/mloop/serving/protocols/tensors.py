"""Open Inference Protocol v2 tensors: datatypes, and JSON tensor objects to numpy arrays and back (pure).

A tensor is ``{"name", "shape", "datatype", "data"}``; ``data`` is row-major, flat (as many values as the
shape's sizes multiply to) or nested exactly as ``shape`` says. Datatypes: BOOL, INT8..INT64, UINT8..UINT64,
FP16/FP32/FP64 and BYTES (JSON strings, decoded to an object array of ``str``). Anything malformed raises
:class:`~mloop.errors.InvalidInput` naming the tensor and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from mloop.errors import InvalidInput, shown

__all__ = ["DATATYPES", "datatype_of", "decode_tensor", "encode_tensor"]

#: V2 datatype -> numpy dtype name (BYTES tensors are object arrays of ``str``)
DATATYPES: Mapping[str, str] = MappingProxyType({
    "BOOL": "bool", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "UINT8": "uint8",
    "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64", "FP16": "float16", "FP32": "float32",
    "FP64": "float64", "BYTES": "object",
})  # fmt: skip
_BY_DTYPE: Mapping[str, str] = MappingProxyType({v: k for k, v in DATATYPES.items() if k != "BYTES"})
_MAX_DIMS = 32
_FITS = object()  # sentinel: every value fits


def _bad(what: str, fix: str) -> InvalidInput:
    return InvalidInput(f"{what}; {fix}")


def datatype_of(dtype: Any) -> str:
    """The V2 datatype of a numpy (or pandas) dtype: strings, objects and categories are BYTES."""
    return _BY_DTYPE.get(str(dtype), "BYTES")


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > _MAX_DIMS:
        raise _bad(
            f"{where}: field 'shape' is {shown(value)}", f"send a list of at most {_MAX_DIMS} sizes, e.g. [1, 4]"
        )
    for dim in value:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise _bad(f"{where}: field 'shape' has {shown(dim)}", "every size must be an integer >= 0, e.g. [2, 3]")
    return tuple(value)


def _leaves(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    else:
        yield data


def _nested_shape(data: Any) -> tuple[int, ...] | None:
    """The shape of regularly nested lists (``None`` when ragged)."""
    if not isinstance(data, list):
        return ()
    if not data:
        return (0,)
    inner = [_nested_shape(item) for item in data]
    if any(s is None or s != inner[0] for s in inner):
        return None
    first = inner[0]
    return None if first is None else (len(data), *first)


def decode_tensor(tensor: Any, where: str = "input") -> tuple[str, Any]:
    """``(name, array)`` from a V2 tensor object; anything malformed raises :class:`InvalidInput` naming it."""
    import numpy as np

    if not isinstance(tensor, dict):
        raise _bad(f"{where} is {shown(tensor)}", 'send an object {"name", "shape", "datatype", "data"}')
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}: field 'name' is {shown(name)}", "give every tensor a non-empty string name")
    where = f"{where} {name!r}"
    shape = _shape(tensor.get("shape"), where)
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise _bad(f"{where}: field 'datatype' is {shown(datatype)}", f"use one of {', '.join(DATATYPES)}")
    params = tensor.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise _bad(f"{where}: field 'parameters' is {shown(params)}", "send an object or leave it out")
    if params and "binary_data_size" in params:
        raise _bad(f"{where} uses the binary data extension", "send the tensor's values as JSON in 'data'")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise _bad(f"{where}: field 'data' is {shown(data)}", "send the values as a (flat or nested) JSON array")
    size = math.prod(shape)
    nested = _nested_shape(data)
    if nested is None or (len(nested) > 1 and nested != shape):
        raise _bad(f"{where}: nested 'data' does not have the declared shape {list(shape)}",
                   "nest the values exactly as 'shape' says, or send them flat in row-major order")  # fmt: skip
    if len(nested) == 1 and nested[0] != size:
        raise _bad(f"{where}: field 'data' has {nested[0]} value(s) but shape {list(shape)} needs {size}",
                   "send as many values as the shape's sizes multiply to")  # fmt: skip
    dtype = DATATYPES[datatype]
    if size == 0:
        return name, np.empty(shape, dtype=dtype)
    return name, _typed(list(_leaves(data)), datatype, dtype, where).reshape(shape)


def _typed(flat: list[Any], datatype: str, dtype: str, where: str) -> Any:
    import numpy as np

    bad = next((v for v in flat if not _fits_kind(v, datatype)), _FITS)
    if bad is not _FITS:
        kind = (
            "numbers"
            if datatype.startswith("FP")
            else {"BYTES": "strings", "BOOL": "true/false"}.get(datatype, "integers")
        )
        raise _bad(f"{where}: field 'data' holds {shown(bad)}, not a {datatype} value",
                   f"{datatype} data must be {kind}, or declare the datatype that matches the values")  # fmt: skip
    if datatype == "BYTES":
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out
    if datatype.startswith(("INT", "UINT")):
        info = np.iinfo(dtype)
        low, high = min(flat), max(flat)
        if low < info.min or high > info.max:
            raise _bad(f"{where}: field 'data' holds {low if low < info.min else high}, outside {datatype}'s range "
                       f"[{info.min}, {info.max}]", "declare a wider datatype")  # fmt: skip
        return np.array(flat, dtype=dtype)
    try:
        with np.errstate(all="ignore"):
            arr = np.array(flat, dtype=dtype)
    except OverflowError:  # an integer beyond float64
        arr = np.array([math.inf])
    if not bool(np.isfinite(arr).all()):
        raise _bad(f"{where}: field 'data' holds a value outside {datatype}'s finite range",
                   "send finite numbers (declare FP64 for large ones)")  # fmt: skip
    return arr


def _fits_kind(v: Any, datatype: str) -> bool:
    if datatype == "BYTES":
        return isinstance(v, str)
    if datatype == "BOOL":
        return isinstance(v, bool)
    if datatype.startswith("FP"):
        return isinstance(v, int | float) and not isinstance(v, bool)
    return isinstance(v, int) and not isinstance(v, bool)


def encode_tensor(name: str, array: Any) -> dict[str, Any]:
    """A V2 output tensor: shape, datatype and flat row-major data (non-finite floats become null)."""
    import numpy as np

    arr = np.asarray(array)
    datatype = datatype_of(arr.dtype)
    flat = arr.ravel()
    if datatype == "BYTES":
        data: list[Any] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    else:
        data = flat.tolist()
        if datatype.startswith("FP") and not bool(np.isfinite(flat).all()):
            data = [v if math.isfinite(v) else None for v in data]
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}
