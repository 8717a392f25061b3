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

__all__ = [
    "DATATYPES",
    "binary_size",
    "datatype_of",
    "decode_binary",
    "decode_tensor",
    "encode_binary",
    "encode_tensor",
]

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


def binary_size(tensor: Any) -> int | None:
    """The tensor's ``parameters.binary_data_size`` (the binary tensor data extension), ``None`` when absent."""
    params = tensor.get("parameters") if isinstance(tensor, dict) else None
    if not isinstance(params, dict) or "binary_data_size" not in params:
        return None
    size = params["binary_data_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(f"Tensor {shown(tensor.get('name'))}: 'binary_data_size' is {shown(size)}",
                   "give the byte length of the tensor's binary data")  # fmt: skip
    return size


def decode_tensor(tensor: Any, where: str = "input", binary: bytes | None = None) -> tuple[str, Any]:
    """``(name, array)`` from a V2 tensor object; anything malformed raises :class:`InvalidInput` naming it.

    ``binary`` holds the tensor's bytes when it uses the binary tensor data extension (``binary_data_size``).
    """
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
        if binary is None:
            raise _bad(
                f"{where} has 'binary_data_size' but the request has no binary part",
                "send the Inference-Header-Content-Length header with the binary data, or JSON 'data'",
            )
        return name, decode_binary(binary, shape, datatype, where)
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


def decode_binary(raw: bytes, shape: tuple[int, ...], datatype: str, where: str = "input") -> Any:
    """A tensor from its binary data: little-endian values, BOOL one byte each, BYTES 4-byte length + bytes."""
    import numpy as np

    size = math.prod(shape)
    if datatype == "BYTES":
        values: list[str] = []
        pos = 0
        while pos < len(raw) and len(values) < size:
            length = int.from_bytes(raw[pos : pos + 4], "little") if pos + 4 <= len(raw) else -1
            if length < 0 or pos + 4 + length > len(raw):
                break
            try:
                values.append(raw[pos + 4 : pos + 4 + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise _bad(f"{where}: BYTES element {len(values)} is not UTF-8", "send text encoded as UTF-8") from None
            pos += 4 + length
        if len(values) != size or pos != len(raw):
            raise _bad(f"{where}: binary BYTES data does not hold {size} length-prefixed element(s)",
                       "send each element as a 4-byte little-endian length and its bytes")  # fmt: skip
        out = np.empty(size, dtype=object)
        out[:] = values
        return out.reshape(shape)
    dtype = np.dtype(DATATYPES[datatype] if datatype != "BOOL" else "uint8").newbyteorder("<")
    if len(raw) != size * dtype.itemsize:
        raise _bad(f"{where}: binary data has {len(raw)} bytes but shape {list(shape)} of {datatype} needs "
                   f"{size * dtype.itemsize}", "set binary_data_size to the tensor's byte length")  # fmt: skip
    arr = np.frombuffer(raw, dtype=dtype).astype(DATATYPES[datatype] if datatype != "BOOL" else "uint8")
    if datatype == "BOOL":
        if bool((arr > 1).any()):
            raise _bad(f"{where}: binary BOOL data holds a byte other than 0 or 1", "send one byte 0 or 1 per value")
        arr = arr.astype(bool)
    elif datatype.startswith("FP") and not bool(np.isfinite(arr).all()):
        raise _bad(f"{where}: binary data holds NaN or infinity", "send finite numbers")
    return arr.reshape(shape)


def encode_binary(array: Any) -> tuple[str, bytes]:
    """``(datatype, bytes)`` of an output tensor in the binary tensor data extension's layout."""
    import numpy as np

    arr = np.asarray(array)
    datatype = datatype_of(arr.dtype)
    if datatype == "BYTES":
        parts = []
        for v in arr.ravel().tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts += [len(b).to_bytes(4, "little"), b]
        return datatype, b"".join(parts)
    if datatype == "BOOL":
        return datatype, arr.astype(np.uint8).tobytes()
    return datatype, np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
