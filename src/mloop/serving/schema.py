"""Input validation against a model's signature: rows or columns of JSON values to what ``predict`` takes.

Every payload shape the protocols accept is first reduced to columns (``{name: [values]}``); each column is
then checked against the signature's type, and turned into one numpy array. A model fitted without feature
names on numeric columns gets one 2-D array (no DataFrame per request); otherwise a DataFrame is built from
the column arrays. A bad value raises :class:`RequestError` naming the field, the expected type and what was
sent; the app turns it into a 400/413/422 JSON body.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInput, shown

__all__ = ["Column", "RequestError", "Schema"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class RequestError(InvalidInput):
    """A request the server refuses: ``status`` (400, 413, 422), the ``field`` at fault, ``expected`` and ``got``."""

    def __init__(
        self, message: str, *, status: int = 422, field: str | None = None, expected: str | None = None,
        got: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.field = field
        self.expected = expected
        self.got = got

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "field": self.field, "expected": self.expected, "got": self.got}}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


@dataclass(frozen=True)
class Column:
    """One signature input: ``kind`` is ``number``, ``boolean`` or ``string``; ``nullable`` if training had gaps."""

    name: str
    dtype: str
    kind: str
    nullable: bool

    @classmethod
    def from_signature(cls, col: Mapping[str, Any]) -> Column:
        dtype = str(col.get("type", "object"))
        if dtype in {"bool", "boolean"}:
            kind = "boolean"
        elif dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float")):
            kind = "number"
        else:
            kind = "string"
        return cls(str(col["name"]), dtype, kind, int(col.get("missing", 0) or 0) > 0)

    def expected(self) -> str:
        base = {"number": "a number", "boolean": "true or false", "string": "a string"}[self.kind]
        return f"{base} ({self.dtype}){' or null' if self.nullable else ''}"

    def to_array(self, values: Sequence[Any]) -> Any:
        import numpy as np

        for i, v in enumerate(values):
            ok = (
                (v is None and self.nullable)
                or (self.kind == "number" and isinstance(v, int | float) and not isinstance(v, bool))
                or (self.kind == "boolean" and isinstance(v, bool))
                or (self.kind == "string" and isinstance(v, str))
            )
            if not ok:
                where = f"row {i}, column {self.name!r}" if len(values) > 1 else f"column {self.name!r}"
                raise RequestError(
                    f"{where}: expected {self.expected()}, got {_json_type(v)} {shown(v)}.",
                    field=self.name, expected=self.expected(), got=f"{_json_type(v)} {shown(v)}",
                )  # fmt: skip
            if self.kind == "number" and isinstance(v, float) and not math.isfinite(v):
                raise RequestError(
                    f"column {self.name!r}: {v} is not a finite number; send null for a missing value.",
                    field=self.name, expected=self.expected(), got=str(v),
                )  # fmt: skip
        if self.kind == "number":
            has_null = any(v is None for v in values)
            if has_null or self.dtype.startswith(("float", "Float")):
                return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            ints = all(isinstance(v, int) and _INT64_MIN <= v <= _INT64_MAX for v in values)
            return np.array(values, dtype=np.int64 if ints else np.float64)  # 2**63 and above become floats
        return np.array(values, dtype=object)


class Schema:
    """The signature's inputs, in order; ``None`` columns (no signature) accept what the model accepts."""

    def __init__(self, signature: Mapping[str, Any] | None, *, names_needed: bool) -> None:
        cols = (signature or {}).get("inputs") or []
        self.columns: tuple[Column, ...] | None = tuple(Column.from_signature(c) for c in cols) if cols else None
        self.names = tuple(c.name for c in self.columns) if self.columns else ()
        self.by_name = {c.name: c for c in self.columns or ()}
        numeric = self.columns is not None and all(c.kind == "number" for c in self.columns)
        self.names_needed = names_needed  # False: a model fitted on an array (no feature names)
        self.numeric_matrix = numeric and not names_needed  # one 2-D float array, no DataFrame
        self.named_matrix = numeric and names_needed  # a DataFrame over one 2-D float array (cheap to build)
        self.frames = True  # False: a named matrix stays a bare float array (the caller frames a whole batch)

    def framed(self, matrix: Any) -> Any:
        """A named matrix as the DataFrame the model was fitted on (its columns in signature order)."""
        import pandas as pd

        return pd.DataFrame(matrix, columns=list(self.names), copy=False)

    def check_names(self, names: Sequence[str], where: str = "the input") -> None:
        if self.columns is None:
            return
        missing = [n for n in self.names if n not in names]
        if missing:
            raise RequestError(
                f"{where} lacks column(s) {', '.join(map(repr, missing))}; the model expects "
                f"{', '.join(map(repr, self.names))}.",
                field=missing[0], expected=self.by_name[missing[0]].expected(), got="missing",
            )  # fmt: skip
        extra = [n for n in names if n not in self.by_name]
        if extra:
            raise RequestError(
                f"{where} has column(s) {', '.join(shown(n) for n in extra)} the model does not take; it "
                f"expects {', '.join(map(repr, self.names))}. Remove them.",
                field=str(extra[0]), expected="no such column", got="present",
            )  # fmt: skip

    def from_columns(self, columns: Mapping[str, Sequence[Any]]) -> Any:
        """The model input (2-D array or DataFrame) from ``{name: [values]}`` of equal, non-zero lengths."""
        import numpy as np

        names = list(columns)
        self.check_names(names)
        if not names:
            raise RequestError("The input has no columns.", field=None, expected="at least one column", got="{}")
        lengths = {n: len(v) for n, v in columns.items()}
        n_rows = lengths[names[0]]
        for name, length in lengths.items():
            if length != n_rows:
                raise RequestError(
                    f"column {name!r} has {length} value(s) but {names[0]!r} has {n_rows}; columns must be equal.",
                    field=name, expected=f"{n_rows} values", got=f"{length} values",
                )  # fmt: skip
        if n_rows == 0:
            raise RequestError("The batch is empty: send at least one row.", expected="1 or more rows", got="0 rows")
        if self.columns is None:
            import pandas as pd

            for name, values in columns.items():  # no signature: any scalars, but scalars
                bad = next((i for i, v in enumerate(values) if isinstance(v, list | dict)), None)
                if bad is not None:
                    raise RequestError(
                        f"row {bad}, column {name!r}: expected a number, string, boolean or null, got "
                        f"{_json_type(values[bad])} {shown(values[bad])}.", field=str(name),
                        expected="a scalar", got=f"{_json_type(values[bad])} {shown(values[bad])}",
                    )  # fmt: skip
            frame = pd.DataFrame({n: np.array(v, dtype=object) for n, v in columns.items()}).infer_objects()
            return frame if self.names_needed else frame.to_numpy()  # in the order sent
        arrays = {c.name: c.to_array(columns[c.name]) for c in self.columns}
        if self.numeric_matrix or self.named_matrix:
            matrix = np.column_stack([arrays[n].astype(np.float64, copy=False) for n in self.names])
            return matrix if self.numeric_matrix or not self.frames else self.framed(matrix)
        import pandas as pd

        return pd.DataFrame(arrays, columns=list(self.names))

    def _plain_numbers(self, records: Sequence[Any]) -> Any:
        """The float matrix of rows that hold only numbers, exactly the signature's columns (objects, or arrays
        in signature order); ``None`` when anything else is there: the checked path then names the fault."""
        import numpy as np

        width = len(self.names)
        rows: Sequence[Any] = records
        if type(records[0]) is dict:
            names = self.names
            if any(type(row) is not dict or len(row) != width for row in records):
                return None
            try:
                rows = [[row[n] for n in names] for row in records]
            except KeyError:
                return None
        for row in rows:
            if type(row) is not list or len(row) != width:
                return None
            for v in row:
                if type(v) is not float and type(v) is not int:
                    return None
        try:
            return np.array(rows, dtype=np.float64)
        except (OverflowError, ValueError):  # an integer beyond float range: the checked path says so
            return None

    def from_records(self, records: Sequence[Any], field: str = "records") -> Any:
        """The model input from rows: objects (``{name: value}``) or arrays in signature order."""
        if not records:
            raise RequestError("The batch is empty: send at least one row.", field=field,
                               expected="1 or more rows", got="[]")  # fmt: skip
        if self.numeric_matrix or self.named_matrix:
            matrix = self._plain_numbers(records)
            if matrix is not None:
                return matrix if self.numeric_matrix or not self.frames else self.framed(matrix)
        first = records[0]
        if isinstance(first, dict):
            names = list(first)
            for i, row in enumerate(records):
                if not isinstance(row, dict):
                    raise RequestError(f"{field}[{i}] is {_json_type(row)}; every row must be an object.",
                                       field=f"{field}[{i}]", expected="object", got=_json_type(row))  # fmt: skip
                if row.keys() != first.keys():
                    self.check_names(list(row), where=f"{field}[{i}]")
                    raise RequestError(
                        f"{field}[{i}] has columns {sorted(row)} but {field}[0] has {sorted(first)}.",
                        field=f"{field}[{i}]", expected=str(sorted(first)), got=str(sorted(row)),
                    )  # fmt: skip
            return self.from_columns({n: [row[n] for row in records] for n in names})
        if isinstance(first, list):
            if self.columns is None and self.names_needed:
                raise RequestError(f"{field} are arrays but the model has no signature naming its columns; "
                                   "send objects ({name: value}).", field=field, expected="objects",
                                   got="arrays")  # fmt: skip
            order = self.names or tuple(str(j) for j in range(len(first)))  # no signature: positions
            width = len(order)
            for i, row in enumerate(records):
                if not isinstance(row, list) or len(row) != width:
                    got = f"{len(row)} values" if isinstance(row, list) else _json_type(row)
                    raise RequestError(
                        f"{field}[{i}] must be an array of {width} values ({', '.join(order)}); got {got}.",
                        field=f"{field}[{i}]", expected=f"{width} values", got=got,
                    )  # fmt: skip
            return self.from_columns({n: [row[j] for row in records] for j, n in enumerate(order)})
        if self.columns is not None and len(self.names) == 1:
            return self.from_columns({self.names[0]: list(records)})
        raise RequestError(f"{field}[0] is {_json_type(first)}; rows must be objects or arrays.",
                           field=f"{field}[0]", expected="object or array", got=_json_type(first))  # fmt: skip

    def from_object(self, obj: Mapping[str, Any], field: str = "body") -> Any:
        """One row (``{name: scalar}``) or columns (``{name: [values]}``); a mix is refused."""
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        if not lists:
            return self.from_columns({k: [v] for k, v in obj.items()})
        if len(lists) != len(obj):
            scalar = next(k for k in obj if k not in lists)
            raise RequestError(
                f"{field} mixes columns (lists, e.g. {lists[0]!r}) with a single value ({scalar!r}); send all "
                "values as lists (columns) or all as scalars (one row).",
                field=scalar, expected="a list", got=_json_type(obj[scalar]),
            )  # fmt: skip
        return self.from_columns(obj)
