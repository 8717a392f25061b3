"""The run search language: parsed here, compiled to SQL by each store implementation.

Grammar (keywords case-insensitive)::

    expr       := conj ("or" conj)*
    conj       := atom ("and" atom)*
    atom       := "(" expr ")" | comparison
    comparison := field op literal | field ["not"] "in" "(" literal ("," literal)* ")"
    field      := ("metrics" | "params" | "tags" | "attributes") "." key  |  attribute
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "like" | "ilike"
    literal    := number | 'text' | "text"

Keys with spaces or symbols are written in backticks: ``metrics.`val acc` > 0.5``. Attributes are
``run_id``, ``name``, ``status``, ``start_time``, ``end_time``, ``experiment_id``, ``actor`` and
``parent_id``. ``order_by`` items are ``field [ASC|DESC]``.

Limits (refused with :class:`~mloop.errors.FilterSyntaxError`, the same on every store): parentheses nest at most
:data:`MAX_FILTER_DEPTH` deep; a filter has at most :data:`MAX_FILTER_COMPARISONS` comparisons and
:data:`MAX_FILTER_VALUES` literal values; numbers are finite, and ``start_time`` / ``end_time`` compare with
signed 64-bit integers; text holds no NUL byte and is valid UTF-8; ``order_by`` has at most
:data:`MAX_ORDER_BY` items.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mloop.errors import FilterSyntaxError, shown

__all__ = [
    "ATTRIBUTES",
    "MAX_FILTER_COMPARISONS",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_VALUES",
    "MAX_ORDER_BY",
    "And",
    "Comparison",
    "Field",
    "Node",
    "Or",
    "OrderBy",
    "parse_filter",
    "parse_order_by",
]

ATTRIBUTES = ("run_id", "name", "status", "start_time", "end_time", "experiment_id", "actor", "parent_id")
NUMERIC_ATTRIBUTES = ("start_time", "end_time")
MAX_FILTER_DEPTH = 32  # nested parentheses
MAX_FILTER_COMPARISONS = 200  # SQLite refuses expression trees deeper than 1,000
MAX_FILTER_VALUES = 10_000  # literals in all IN lists together (PostgreSQL binds at most 65,535 parameters)
MAX_ORDER_BY = 20  # each item may join a table; SQLite joins at most 64
_INT64 = (-(2**63), 2**63 - 1)  # start_time and end_time are BIGINT columns
_ENTITY_ALIASES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ATTR_ALIASES = {"id": "run_id", "run_name": "name", "user": "actor"}
_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<name>(?:[A-Za-z_][\w\-/:]*|`[^`]+`)(?:\.(?:[\w\-/:]+|`[^`]+`))*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Field:
    entity: str  # metrics | params | tags | attributes
    key: str

    def __str__(self) -> str:
        return f"{self.entity}.{self.key}"


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str  # = != < <= > >= like ilike in not in
    value: float | str | tuple[float | str, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True)
class OrderBy:
    field: Field
    descending: bool


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterSyntaxError(
                f"Cannot read the filter {shown(text)} at position {pos} ({shown(text[pos : pos + 20])}). "
                "Write comparisons like metrics.acc > 0.9 and params.model = 'rf'."
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def _unquote_key(part: str) -> str:
    return part[1:-1] if part.startswith("`") and part.endswith("`") else part


def parse_field(text: str, *, source: str | None = None) -> Field:
    """Parse ``metrics.acc`` / ``params.`my key``` / ``status`` into a :class:`Field`."""
    head, dot, rest = text.partition(".")
    entity = _ENTITY_ALIASES.get(head.lower()) if dot else None
    if entity is None:
        key = _ATTR_ALIASES.get(text.lower(), text.lower())
        if key not in ATTRIBUTES:
            raise FilterSyntaxError(
                f"Unknown field {shown(text)} in {shown(source or text)}. Use metrics.<key>, params.<key>, tags.<key> "
                f"or one of the attributes {', '.join(ATTRIBUTES)}."
            )
        return Field("attributes", key)
    key = _unquote_key(rest)
    if entity == "attributes":
        key = _ATTR_ALIASES.get(key.lower(), key.lower())
        if key not in ATTRIBUTES:
            raise FilterSyntaxError(
                f"Unknown attribute {shown(rest)} in {shown(source or text)}. Attributes are {', '.join(ATTRIBUTES)}."
            )
    if not key:
        raise FilterSyntaxError(f"Field {shown(text)} has no key. Write e.g. metrics.accuracy.")
    return Field(entity, key)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0  # open parentheses
        self.comparisons = 0
        self.values = 0

    def error(self, what: str) -> FilterSyntaxError:
        pos = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        return FilterSyntaxError(
            f"Invalid filter {shown(self.text)} at position {pos}: {what}. "
            "Example: metrics.acc > 0.9 and params.model = 'rf'."
        )

    def peek_word(self) -> str | None:
        if self.i < len(self.toks) and self.toks[self.i][0] == "name":
            return self.toks[self.i][1].lower()
        return None

    def take(self, kind: str, value: str | None = None) -> str:
        if self.i >= len(self.toks):
            raise self.error(f"expected {value or kind} but the filter ended")
        k, v, _ = self.toks[self.i]
        if k != kind or (value is not None and v.lower() != value):
            raise self.error(f"expected {value or kind}, found {shown(v)}")
        self.i += 1
        return v

    def expr(self) -> Node:
        items = [self.conj()]
        while self.peek_word() == "or":
            self.i += 1
            items.append(self.conj())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conj(self) -> Node:
        items = [self.atom()]
        while self.peek_word() == "and":
            self.i += 1
            items.append(self.atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def atom(self) -> Node:
        if self.i < len(self.toks) and self.toks[self.i][:2] == ("punct", "("):
            self.depth += 1
            if self.depth > MAX_FILTER_DEPTH:
                raise self.error(f"parentheses nest more than {MAX_FILTER_DEPTH} deep; flatten the expression")
            self.i += 1
            node = self.expr()
            self.take("punct", ")")
            self.depth -= 1
            return node
        self.comparisons += 1
        if self.comparisons > MAX_FILTER_COMPARISONS:
            raise self.error(
                f"more than {MAX_FILTER_COMPARISONS} comparisons; use IN (...) lists or search in several steps"
            )
        return self.comparison()

    def literal(self) -> float | str:
        if self.i >= len(self.toks):
            raise self.error("expected a value but the filter ended")
        kind, value, _ = self.toks[self.i]
        self.values += 1
        if self.values > MAX_FILTER_VALUES:
            raise self.error(f"more than {MAX_FILTER_VALUES} values; search in several steps")
        if kind == "num":
            number = float(value)
            if not math.isfinite(number):
                raise self.error(f"the number {shown(value)} is out of range; use a finite number (at most 1.8e308)")
            self.i += 1
            return number
        self.i += 1
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        raise self.error(f"expected a number or a quoted string, found {shown(value)}")

    def comparison(self) -> Comparison:
        field = parse_field(self.take("name"), source=self.text)
        word = self.peek_word()
        if word in {"like", "ilike"}:
            self.i += 1
            op = word
        elif word in {"in", "not"}:
            self.i += 1
            op = "in"
            if word == "not":
                self.take("name", "in")
                op = "not in"
            self.take("punct", "(")
            values = [self.literal()]
            while self.i < len(self.toks) and self.toks[self.i][:2] == ("punct", ","):
                self.i += 1
                values.append(self.literal())
            self.take("punct", ")")
            return _checked(Comparison(field, op, tuple(values)), self.text)
        else:
            op = _OPS.get(self.take("op"), "=")
        return _checked(Comparison(field, op, self.literal()), self.text)

    def parse(self) -> Node | None:
        if not self.toks:
            return None
        node = self.expr()
        if self.i != len(self.toks):
            raise self.error(f"unexpected {shown(self.toks[self.i][1])} (join comparisons with 'and' / 'or')")
        return node


def _checked(cmp: Comparison, text: str) -> Comparison:
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    numeric = cmp.field.entity == "metrics" or cmp.field.key in NUMERIC_ATTRIBUTES
    if numeric:
        if cmp.op in {"like", "ilike"} or not all(isinstance(v, float) for v in values):
            raise FilterSyntaxError(
                f"{cmp.field} is numeric: compare it with a number using = != < <= > >= or IN (in {shown(text)})."
            )
        if cmp.field.key in NUMERIC_ATTRIBUTES and not all(_INT64[0] <= int(v) <= _INT64[1] for v in values):
            bad = next(v for v in values if not _INT64[0] <= int(v) <= _INT64[1])
            raise FilterSyntaxError(
                f"{cmp.field} {cmp.op} {bad:g} is out of range in {shown(text)}: {cmp.field} is a time in "
                f"milliseconds; compare it with a whole number between {_INT64[0]} and {_INT64[1]}."
            )
    elif not all(isinstance(v, str) for v in values) or cmp.op in {"<", "<=", ">", ">="}:
        raise FilterSyntaxError(
            f"{cmp.field} holds text: compare it with a quoted string using = != LIKE ILIKE or IN "
            f"(in {shown(text)}). Log numbers you want to compare as metrics."
        )
    return cmp


def _check_text(text: str, what: str) -> None:
    """NUL bytes and text that is not UTF-8 (lone surrogates) are refused: no store can hold or compare them."""
    if "\x00" in text:
        raise FilterSyntaxError(
            f"The {what} {shown(text)} holds a NUL byte (\\x00) at position {text.index(chr(0))}; "
            "no name or value can contain one. Remove it."
        )
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise FilterSyntaxError(
            f"The {what} {shown(text)} is not valid UTF-8 text (position {exc.start}). "
            "Decode the bytes with the right encoding first."
        ) from None


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string; ``None``/empty means no filter."""
    if text is None or not text.strip():
        return None
    _check_text(text, "filter")
    return _Parser(text).parse()


def parse_order_by(items: str | list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """Parse ``["metrics.acc DESC", "start_time"]``."""
    if not items:
        return []
    if isinstance(items, str):
        items = [items]
    if len(items) > MAX_ORDER_BY:
        raise FilterSyntaxError(f"order_by has {len(items)} items; at most {MAX_ORDER_BY} are allowed.")
    out: list[OrderBy] = []
    for item in items:
        _check_text(item, "order_by item")
        parts = item.strip().rsplit(None, 1)
        descending = False
        if len(parts) == 2 and parts[1].lower() in {"asc", "desc"}:
            descending = parts[1].lower() == "desc"
            name = parts[0]
        else:
            name = item.strip()
        if not name:
            raise FilterSyntaxError(f"Empty order_by item {shown(item)}. Write e.g. 'metrics.acc DESC'.")
        out.append(OrderBy(parse_field(name, source=item), descending))
    return out
