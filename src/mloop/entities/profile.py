"""Profiles of tables: schema, row count and per-column statistics. Frozen values, no I/O.

A :class:`TableProfile` is recorded with every tabular dataset version and reused as the drift reference
(monitoring) and as the model signature (input columns, types, observed ranges and categories), so it is a
stable, versioned value: :meth:`TableProfile.to_json` writes sorted keys and a ``"format"`` number, encodes
non-finite floats as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the output is strict JSON), and
:meth:`TableProfile.from_json` reads it back to an equal value (NaN equals NaN here).

Fields by kind (absent ones are ``None``/empty and are left out of the JSON):

* every column: ``name``, ``type`` (the Arrow type, e.g. ``"int64"``, ``"timestamp[us]"``), ``kind``,
  ``count`` (non-missing values) and ``missing`` (nulls, and NaN in float columns);
* ``numeric``: ``min``, ``max`` (ints stay ints), ``mean``, ``std`` (sample, ddof=1), ``quantiles``
  (probability -> value) and ``histogram`` (equal-width bins over the finite range);
* ``categorical`` and ``boolean``: ``cardinality`` (distinct non-missing values) and ``top`` (the most
  frequent values as text, with their counts, most frequent first); ``approximate`` is true when the
  column had too many distinct values to count exactly, and then both are estimates;
* ``datetime``: ``min`` and ``max`` as ISO 8601 strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from mloop.errors import InvalidInput, NotFound

__all__ = ["ColumnKind", "ColumnProfile", "Histogram", "SchemaDiff", "TableProfile"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    OTHER = "other"


def _enc(value: float) -> float | str:
    """A float as JSON allows it: non-finite values become strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _enc_number(value: int | float) -> int | float | str:
    return value if isinstance(value, int) else _enc(value)


def _dec_float(value: Any, where: str) -> float:
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"Profile field {where} must be a number, got {value!r}. Re-create the profile.")
    return float(value)


def _dec_number(value: Any, where: str) -> int | float:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _dec_float(value, where)


def _dec_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"Profile field {where} must be a non-negative integer, got {value!r}.")
    return value


def _dec_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"Profile field {where} must be a string, got {value!r}.")
    return value


@dataclass(frozen=True, eq=False)
class Histogram:
    """Counts of values in consecutive bins: bin ``i`` is ``[edges[i], edges[i+1])``, the last one closed.

    Infinite values are counted in the first (``-inf``) or last (``+inf``) bin, so the counts add up to the
    column's ``count``.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "edges": [_enc(e) for e in self.edges]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "histogram") -> Histogram:
        if not isinstance(data, Mapping) or not isinstance(data.get("edges"), list | tuple):
            raise InvalidInput(f"Profile field {where} must be an object with 'edges' and 'counts', got {data!r}.")
        edges = tuple(_dec_float(e, f"{where}.edges") for e in data["edges"])
        counts_raw = data.get("counts")
        if not isinstance(counts_raw, list | tuple):
            raise InvalidInput(f"Profile field {where}.counts must be a list, got {counts_raw!r}.")
        counts = tuple(_dec_int(c, f"{where}.counts") for c in counts_raw)
        if len(edges) != len(counts) + 1:
            raise InvalidInput(
                f"Profile field {where} has {len(edges)} edges for {len(counts)} counts; expected one more."
            )
        return cls(edges=edges, counts=counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.counts)


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """Statistics of one column; see the module docstring for which fields each kind fills."""

    name: str
    type: str
    kind: ColumnKind
    count: int
    missing: int
    min: int | float | str | None = None
    max: int | float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: Mapping[float, float] = field(default_factory=dict)
    histogram: Histogram | None = None
    cardinality: int | None = None
    top: tuple[tuple[str, int], ...] = ()
    approximate: bool = False

    @property
    def missing_fraction(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    @property
    def frequencies(self) -> dict[str, float]:
        """The top values with their share of the non-missing values."""
        return {value: n / self.count for value, n in self.top} if self.count else {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "kind": str(self.kind),
            "count": self.count,
            "missing": self.missing,
        }
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value if isinstance(value, str) else _enc_number(value)
        if self.mean is not None:
            out["mean"] = _enc(self.mean)
        if self.std is not None:
            out["std"] = _enc(self.std)
        if self.quantiles:
            out["quantiles"] = {repr(float(q)): _enc(v) for q, v in sorted(self.quantiles.items())}
        if self.histogram is not None:
            out["histogram"] = self.histogram.to_dict()
        if self.cardinality is not None:
            out["cardinality"] = self.cardinality
        if self.top:
            out["top"] = [[value, n] for value, n in self.top]
        if self.approximate:
            out["approximate"] = True
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ColumnProfile:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"A column profile must be a JSON object, got {data!r}.")
        name = _dec_str(data.get("name"), "column.name")
        where = f"columns[{name!r}]"
        try:
            kind = ColumnKind(str(data.get("kind")))
        except ValueError:
            known = ", ".join(k.value for k in ColumnKind)
            raise InvalidInput(
                f"Profile field {where}.kind is {data.get('kind')!r}; expected one of {known}."
            ) from None
        bounds: dict[str, int | float | str | None] = {}
        for key in ("min", "max"):
            raw = data.get(key)
            if raw is None:
                bounds[key] = None
            elif kind is ColumnKind.DATETIME:
                bounds[key] = _dec_str(raw, f"{where}.{key}")
            else:
                bounds[key] = _dec_number(raw, f"{where}.{key}")
        quantiles_raw = data.get("quantiles") or {}
        if not isinstance(quantiles_raw, Mapping):
            raise InvalidInput(f"Profile field {where}.quantiles must be an object, got {quantiles_raw!r}.")
        quantiles: dict[float, float] = {}
        for q, v in quantiles_raw.items():
            try:
                quantiles[float(q)] = _dec_float(v, f"{where}.quantiles")
            except ValueError:
                raise InvalidInput(f"Profile field {where}.quantiles has a non-numeric key {q!r}.") from None
        top_raw = data.get("top") or []
        if not isinstance(top_raw, list | tuple) or not all(
            isinstance(t, list | tuple) and len(t) == 2 for t in top_raw
        ):
            raise InvalidInput(f"Profile field {where}.top must be a list of [value, count] pairs, got {top_raw!r}.")
        hist = data.get("histogram")
        mean, std, card = data.get("mean"), data.get("std"), data.get("cardinality")
        return cls(
            name=name,
            type=_dec_str(data.get("type"), f"{where}.type"),
            kind=kind,
            count=_dec_int(data.get("count"), f"{where}.count"),
            missing=_dec_int(data.get("missing"), f"{where}.missing"),
            min=bounds["min"],
            max=bounds["max"],
            mean=None if mean is None else _dec_float(mean, f"{where}.mean"),
            std=None if std is None else _dec_float(std, f"{where}.std"),
            quantiles=dict(sorted(quantiles.items())),
            histogram=None if hist is None else Histogram.from_dict(hist, f"{where}.histogram"),
            cardinality=None if card is None else _dec_int(card, f"{where}.cardinality"),
            top=tuple((_dec_str(v, f"{where}.top"), _dec_int(n, f"{where}.top")) for v, n in top_raw),
            approximate=bool(data.get("approximate", False)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.type, self.count, self.missing))


@dataclass(frozen=True)
class SchemaDiff:
    """How the schema of table ``b`` differs from table ``a`` (columns as ``(name, type)``)."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()  # (name, type in a, type in b)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [list(c) for c in self.added],
            "removed": [list(c) for c in self.removed],
            "retyped": [list(c) for c in self.retyped],
        }


@dataclass(frozen=True, eq=False)
class TableProfile:
    """Row count and one :class:`ColumnProfile` per column, in table order."""

    FORMAT: ClassVar[int] = 1

    rows: int
    columns: tuple[ColumnProfile, ...]

    @property
    def schema(self) -> list[tuple[str, str]]:
        """``[(column name, Arrow type string), ...]`` in table order."""
        return [(c.name, c.type) for c in self.columns]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        known = ", ".join(repr(n) for n in self.names) or "none"
        raise NotFound(f"The profile has no column {name!r}; its columns are: {known}.")

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.FORMAT, "rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Any) -> TableProfile:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"A table profile must be a JSON object, got {type(data).__name__}.")
        fmt = data.get("format")
        if fmt != cls.FORMAT:
            raise InvalidInput(
                f"Profile format {fmt!r} is not supported; this mloop reads format {cls.FORMAT}. "
                "Upgrade mloop or re-create the profile."
            )
        columns = data.get("columns")
        if not isinstance(columns, Sequence) or isinstance(columns, str):
            raise InvalidInput(f"Profile field columns must be a list, got {columns!r}.")
        parsed = tuple(ColumnProfile.from_dict(c) for c in columns)
        names = [c.name for c in parsed]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"Profile has duplicate column names {dupes}; every column name must be unique.")
        return cls(rows=_dec_int(data.get("rows"), "rows"), columns=parsed)

    def to_json(self, *, indent: int | None = None) -> str:
        """Strict JSON with sorted keys; identical profiles give identical text."""
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False, indent=indent, separators=separators)

    @classmethod
    def from_json(cls, text: str | bytes) -> TableProfile:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"Profile text is not valid JSON ({exc}). Re-create the profile.") from None
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableProfile):
            return NotImplemented
        return self.rows == other.rows and self.columns == other.columns

    def __hash__(self) -> int:
        return hash((self.rows, tuple(self.schema)))
