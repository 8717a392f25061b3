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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mloop.errors import FilterSyntaxError

__all__ = [
    "ATTRIBUTES",
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
      (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
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
                f"Cannot read the filter {text!r} at position {pos} ({text[pos : pos + 20]!r}). "
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
                f"Unknown field {text!r} in {source or text!r}. Use metrics.<key>, params.<key>, tags.<key> "
                f"or one of the attributes {', '.join(ATTRIBUTES)}."
            )
        return Field("attributes", key)
    key = _unquote_key(rest)
    if entity == "attributes":
        key = _ATTR_ALIASES.get(key.lower(), key.lower())
        if key not in ATTRIBUTES:
            raise FilterSyntaxError(
                f"Unknown attribute {rest!r} in {source or text!r}. Attributes are {', '.join(ATTRIBUTES)}."
            )
    if not key:
        raise FilterSyntaxError(f"Field {text!r} has no key. Write e.g. metrics.accuracy.")
    return Field(entity, key)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def error(self, what: str) -> FilterSyntaxError:
        pos = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        return FilterSyntaxError(
            f"Invalid filter {self.text!r} at position {pos}: {what}. "
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
            raise self.error(f"expected {value or kind}, found {v!r}")
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
            self.i += 1
            node = self.expr()
            self.take("punct", ")")
            return node
        return self.comparison()

    def literal(self) -> float | str:
        if self.i >= len(self.toks):
            raise self.error("expected a value but the filter ended")
        kind, value, _ = self.toks[self.i]
        self.i += 1
        if kind == "num":
            return float(value)
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        raise self.error(f"expected a number or a quoted string, found {value!r}")

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
            raise self.error(f"unexpected {self.toks[self.i][1]!r} (join comparisons with 'and' / 'or')")
        return node


def _checked(cmp: Comparison, text: str) -> Comparison:
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    numeric = cmp.field.entity == "metrics" or cmp.field.key in NUMERIC_ATTRIBUTES
    if numeric:
        if cmp.op in {"like", "ilike"} or not all(isinstance(v, float) for v in values):
            raise FilterSyntaxError(
                f"{cmp.field} is numeric: compare it with a number using = != < <= > >= or IN (in {text!r})."
            )
    elif not all(isinstance(v, str) for v in values) or cmp.op in {"<", "<=", ">", ">="}:
        raise FilterSyntaxError(
            f"{cmp.field} holds text: compare it with a quoted string using = != LIKE ILIKE or IN "
            f"(in {text!r}). Log numbers you want to compare as metrics."
        )
    return cmp


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string; ``None``/empty means no filter."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(items: str | list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """Parse ``["metrics.acc DESC", "start_time"]``."""
    if not items:
        return []
    if isinstance(items, str):
        items = [items]
    out: list[OrderBy] = []
    for item in items:
        parts = item.strip().rsplit(None, 1)
        descending = False
        if len(parts) == 2 and parts[1].lower() in {"asc", "desc"}:
            descending = parts[1].lower() == "desc"
            name = parts[0]
        else:
            name = item.strip()
        if not name:
            raise FilterSyntaxError(f"Empty order_by item {item!r}. Write e.g. 'metrics.acc DESC'.")
        out.append(OrderBy(parse_field(name, source=item), descending))
    return out
