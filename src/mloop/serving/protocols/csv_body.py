"""``text/csv`` request bodies for ``/predict`` and ``/invocations``: a header row, then one line per row.

:func:`parse_csv` returns the same model input as the JSON parsers (:class:`~mloop.serving.schema.Schema`
builds it from columns), checked the same way: the header must name every signature column and no other (in
any order); each cell is read as its column's type: a number column takes decimal or exponent numbers (finite),
a bool column ``true``/``false`` (any case) or ``1``/``0``, a string column any text. An empty cell is a
missing value, allowed only where the training data had gaps (as ``null`` in JSON). Quoted fields (RFC 4180:
``"a, b"``, ``""`` for a quote, line breaks inside quotes) work; a UTF-8 byte order mark is skipped. A body
that is not UTF-8 or not CSV is a 400; a value that does not fit its column is a 422 naming the column, the
row (1-based, data rows) and line, and the value. A model without a signature gets numbers where a whole
column reads as numbers, and text otherwise.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import TYPE_CHECKING, Any

from mloop.errors import shown
from mloop.serving.schema import RequestError

if TYPE_CHECKING:
    from mloop.serving.schema import Column, Schema

__all__ = ["parse_csv"]

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_NON_FINITE = ("nan", "inf", "infinity")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_MAX_DIGITS = 30  # longer integers are read as floats (int() refuses thousands of digits)


def _bad_body(message: str, got: str) -> RequestError:
    return RequestError(message, status=400, field="body", expected="CSV with a header row, in UTF-8", got=got)


def _number(text: str) -> int | float | None:
    """The cell as a number (int when written as one), ``None`` when it is not a number."""
    text = text.strip()
    if len(text) <= _MAX_DIGITS and _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    return None


def _cell(col: Column, text: str, row: int, line: int) -> Any:
    where = f"row {row} (line {line}), column {col.name!r}"
    if text == "":
        if col.nullable:
            return None
        raise RequestError(
            f"{where}: the cell is empty but the column takes {col.expected()} (its training data had no gaps); "
            "fill it in.", field=col.name, expected=col.expected(), got="empty cell",
        )  # fmt: skip
    if col.kind == "string":
        return text
    if col.kind == "boolean":
        value = _BOOLS.get(text.strip().lower())
        if value is not None:
            return value
    else:
        number = _number(text)
        if number is not None and (isinstance(number, int) or math.isfinite(number)):
            return number
        if number is not None or text.strip().lower().lstrip("+-") in _NON_FINITE:
            raise RequestError(f"{where}: {shown(text)} is not a finite number; leave the cell empty for a "
                               "missing value.", field=col.name, expected=col.expected(), got=shown(text))  # fmt: skip
    raise RequestError(f"{where}: expected {col.expected()}, got {shown(text)}.", field=col.name,
                       expected=col.expected(), got=shown(text))  # fmt: skip


def _untyped(values: list[str]) -> list[Any]:
    """A column of a model without a signature: numbers when every cell is one (empty cells missing), else text."""
    numbers = [None if v == "" else _number(v) for v in values]
    read = [n for n, v in zip(numbers, values, strict=True) if v != ""]
    if read and all(n is not None and (isinstance(n, int) or math.isfinite(n)) for n in read):
        return numbers
    return [None if v == "" else v for v in values]


def _rows(raw: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the data rows (each with its line number); blank lines are skipped."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad_body(f"The CSV body is not UTF-8: byte {exc.start} is {raw[exc.start : exc.start + 1]!r}; "
                        "save the file as UTF-8.", got=f"byte {exc.start} not UTF-8") from None  # fmt: skip
    if "\x00" in text:
        raise _bad_body(f"The CSV body holds a NUL character (offset {text.index(chr(0))}); send text.",
                        got="NUL character")  # fmt: skip
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    try:
        for cells in reader:
            if not cells or cells == [""]:
                continue  # a blank line
            if header is None:
                header = cells
            else:
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise _bad_body(f"The CSV body is malformed at line {reader.line_num}: {exc}; quote fields that hold "
                        'commas, quotes or line breaks ("a, b"; "say ""hi""").',
                        got=f"line {reader.line_num}") from None  # fmt: skip
    if header is None:
        raise _bad_body("The CSV body is empty; send a header row naming the columns, then one line per row.",
                        got="empty body")  # fmt: skip
    return header, rows


def parse_csv(raw: bytes, schema: Schema) -> Any:
    """The model input (2-D array or DataFrame, as :meth:`Schema.from_columns` builds it) from a CSV body."""
    header, rows = _rows(raw)
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RequestError(f"The CSV header names column {dupes[0]!r} more than once; name each column once.",
                           field=dupes[0], expected="distinct column names", got=",".join(names)[:80])  # fmt: skip
    schema.check_names(names, where="The CSV header")
    if not rows:
        raise RequestError("The CSV body has a header but no rows; send at least one row.", field="body",
                           expected="1 or more rows", got="0 rows")  # fmt: skip
    width = len(names)
    for i, (line, cells) in enumerate(rows, start=1):
        if len(cells) != width:
            raise RequestError(
                f"row {i} (line {line}) has {len(cells)} cell(s) but the header names {width} column(s) "
                f"({', '.join(names)}); give every row one cell per column.",
                field=f"row {i}", expected=f"{width} cells", got=f"{len(cells)} cells",
            )  # fmt: skip
    if schema.columns is None:
        return schema.from_columns({n: _untyped([cells[j] for _, cells in rows]) for j, n in enumerate(names)})
    columns: dict[str, list[Any]] = {}
    for j, name in enumerate(names):
        col = schema.by_name[name]
        columns[name] = [_cell(col, cells[j], i, line) for i, (line, cells) in enumerate(rows, start=1)]
    return schema.from_columns(columns)
