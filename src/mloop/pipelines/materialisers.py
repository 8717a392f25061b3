"""Materialisers: how a step's output value becomes one blob in the artifact store, and back.

Chosen by the value's type, first match wins: ``bytes``, ``str`` (UTF-8), JSON (dicts, lists, numbers, booleans,
``None`` that survive a JSON round trip unchanged), numpy arrays (``.npy``, no pickled objects), pandas data
frames and Arrow tables (Parquet), scikit-learn estimators (pickle: scikit-learn's own persistence, recorded
with its version), dataset and model versions (a JSON reference, never a copy: see
:mod:`mloop.pipelines.references`), then the **pickle fallback**, which works for anything picklable but is flagged
(``fallback: true``) and shown as such: it is tied to the Python classes that wrote it.

Heavy libraries are imported only when a value of theirs is stored or loaded.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInput
from mloop.pipelines import files

__all__ = ["MATERIALISERS", "Materialiser", "Stored", "dumps", "loads"]


@dataclass(frozen=True)
class Materialiser:
    name: str
    handles: Callable[[Any], bool]
    save: Callable[[Any], bytes]
    load: Callable[[bytes], Any]
    fallback: bool = False


@dataclass(frozen=True)
class Stored:
    """An output as stored: its blob digest, size, materialiser, Python type, and whether pickle was a fallback."""

    digest: str
    size: int
    materialiser: str
    type: str
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "materialiser": self.materialiser, "type": self.type,
                "fallback": self.fallback}  # fmt: skip


def _loaded(module: str, obj: Any) -> bool:
    return type(obj).__module__.partition(".")[0] == module and module in sys.modules


def _json_ok(obj: Any) -> bool:
    if not isinstance(obj, (dict, list, int, float, bool)) and obj is not None:
        return False
    try:
        return bool(json.loads(json.dumps(obj, allow_nan=False)) == obj)
    except (TypeError, ValueError, RecursionError):
        return False


def _np_ok(obj: Any) -> bool:
    if not _loaded("numpy", obj):
        return False
    import numpy as np

    return isinstance(obj, np.ndarray) and not obj.dtype.hasobject


def _np_save(obj: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=False)
    return buf.getvalue()


def _np_load(data: bytes) -> Any:
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def _pandas_ok(obj: Any) -> bool:
    if not _loaded("pandas", obj):
        return False
    import pandas as pd

    return isinstance(obj, pd.DataFrame) and all(isinstance(c, str) for c in obj.columns)


def _pandas_save(obj: Any) -> bytes:
    buf = io.BytesIO()
    obj.to_parquet(buf, engine="pyarrow")
    return buf.getvalue()


def _pandas_load(data: bytes) -> Any:
    import pandas as pd

    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")


def _arrow_ok(obj: Any) -> bool:
    if not _loaded("pyarrow", obj):
        return False
    import pyarrow as pa

    return isinstance(obj, pa.Table)


def _arrow_save(obj: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(obj, buf)
    return buf.getvalue()


def _arrow_load(data: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data))


def _sklearn_ok(obj: Any) -> bool:
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def _reference_ok(obj: Any) -> bool:
    if not type(obj).__module__.startswith("mloop."):
        return False
    from mloop.pipelines.references import is_reference

    return is_reference(obj)


def _reference_save(obj: Any) -> bytes:
    from mloop.pipelines.references import reference_bytes

    return reference_bytes(obj)


def _reference_load(data: bytes) -> Any:
    from mloop.pipelines.references import load_reference

    return load_reference(data)


def _pickle_save(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def _pickle_load(data: bytes) -> Any:
    return pickle.loads(data)  # our own blob, verified by its digest on read


MATERIALISERS: tuple[Materialiser, ...] = (
    Materialiser("bytes", lambda o: isinstance(o, bytes), bytes, bytes),
    Materialiser("str", lambda o: isinstance(o, str), lambda o: o.encode(), lambda b: b.decode()),
    Materialiser("json", _json_ok, lambda o: json.dumps(o, allow_nan=False).encode(), json.loads),
    Materialiser("numpy", _np_ok, _np_save, _np_load),
    Materialiser("pandas", _pandas_ok, _pandas_save, _pandas_load),
    Materialiser("arrow", _arrow_ok, _arrow_save, _arrow_load),
    Materialiser("sklearn", _sklearn_ok, _pickle_save, _pickle_load),
    Materialiser("reference", _reference_ok, _reference_save, _reference_load),
    Materialiser("path", files.is_path, files.save_path, files.load_path),  # files and folders: mloop.pipelines.files
    Materialiser("pickle", lambda o: True, _pickle_save, _pickle_load, fallback=True),
)
_BY_NAME = {m.name: m for m in MATERIALISERS}


def dumps(value: Any) -> tuple[bytes, Materialiser]:
    """The bytes of ``value`` and the materialiser that wrote them."""
    for m in MATERIALISERS:
        if m.handles(value):
            try:
                return m.save(value), m
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                if m.fallback:
                    raise InvalidInput(
                        f"A step output of type {type(value).__qualname__} cannot be stored: {exc}. Return bytes, "
                        "text, JSON, a numpy array, a data frame or a picklable object."
                    ) from exc
                continue
    raise AssertionError("unreachable: pickle handles everything")


def loads(data: bytes, materialiser: str) -> Any:
    m = _BY_NAME.get(materialiser)
    if m is None:
        raise InvalidInput(f"Unknown materialiser {materialiser!r}; known: {sorted(_BY_NAME)}.")
    return m.load(data)
