"""Conditions on events and event-type patterns: the small grammar automations use instead of ``eval``.

Grammar (keywords case-insensitive; docs/automation.md "Conditions" has examples, semantics and errors)::

    condition  := [or_expr]                      (empty: always matches)
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := field ( ("==" | "!=" | "<" | "<=" | ">" | ">=") value | ["not"] "in" list
                        | "contains" value | "matches" 'glob' | "exists" )
    field      := "type" | "subject" | "actor" | "id" | "time" | "payload" ("." name | "." `odd key`)*
    value      := number | 'text' | "text" | true | false | null | list
    list       := "[" [value ("," value)* [","]] "]"

Matching never raises: a missing field makes every comparison false, incompatible types compare false (``!=``
true), ints and floats compare as numbers, booleans are not numbers. Bad text raises ``InvalidInput``.
"""

from __future__ import annotations

import fnmatch
import math
import numbers
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from mloop.errors import InvalidInput

__all__ = ["Condition", "check_type_pattern", "match_type", "parse_condition"]

MAX_CONDITION_LENGTH = 2_000  # characters
MAX_CONDITION_DEPTH = 50  # parentheses, "not" and lists nested in one another
ROOTS = ("type", "subject", "actor", "id", "time", "payload")  # only payload has nested fields
_KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "matches", "exists", "true", "false", "null"})
_CONSTANTS = {"true": True, "false": False, "null": None}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(
    r"""(?P<num>-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|<|>|=|[()\[\],])
    | (?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`\x00-\x1f]+`))*)""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}
_HINTS = {"&": "'and' instead of '&'", "|": "'or' instead of '|'", "!": "'not', or '!=' to compare"}
_TYPE_PATTERN = re.compile(r"[a-z0-9_.*]+")
_MAX_TYPE_PATTERN = 200  # characters

Value = None | bool | int | float | str | tuple["Value", ...]


@dataclass(frozen=True)
class _Compare:
    path: tuple[str, ...]
    op: str  # == != < <= > >= in notin contains matches exists
    value: Value = None


@dataclass(frozen=True)
class _Group:
    kind: str  # and, or, not (one item)
    items: tuple[_Node, ...]


_Node = _Compare | _Group
_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """Immutable, hashable; ``text`` has its whitespace normalised, ``fields`` are the field paths it reads."""

    text: str
    fields: tuple[str, ...] = field(init=False)
    tree: _Node = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parser = _Parser(self.text)
        tree = parser.parse()
        object.__setattr__(self, "text", parser.normalised())
        object.__setattr__(self, "fields", tuple(dict.fromkeys(parser.fields)))
        object.__setattr__(self, "tree", tree)

    def matches(self, event: Mapping[str, Any] | object) -> bool:
        """Whether ``event`` (a mapping or an ``Event``) satisfies the condition; never raises on odd values."""
        return _evaluate(self.tree, event)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def parse_condition(text: str) -> Condition:
    """Parse ``text`` (grammar in the module docstring); ``""`` gives a condition that always matches."""
    return Condition(text)


def match_type(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` fits ``pattern``: ``*`` matches any text (dots included), the rest exactly."""
    first, *middle, last = pattern.split("*") if "*" in pattern else ["", ""]
    if "*" not in pattern:
        return pattern == event_type
    if len(event_type) < len(first) + len(last) or not (event_type.startswith(first) and event_type.endswith(last)):
        return False
    pos, end = len(first), len(event_type) - len(last)
    for part in middle:
        pos = event_type.find(part, pos, end)
        if pos < 0:
            return False
        pos += len(part)
    return True


def check_type_pattern(text: str) -> str:
    """Return ``text`` if it is a valid event-type pattern (``monitor.alert``, ``monitor.*``, ``*``), else raise."""
    example = "Example: monitor.alert, model.* or *"
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"An event type pattern is empty (got {text!r}). Give an event type or a pattern. {example}")
    if len(text) > _MAX_TYPE_PATTERN:
        raise InvalidInput(
            f"Event type pattern {_quote(text)} has {len(text):,} characters; at most {_MAX_TYPE_PATTERN}."
        )
    if not _TYPE_PATTERN.fullmatch(text):
        col = next(i for i, ch in enumerate(text) if not _TYPE_PATTERN.fullmatch(ch))
        fix = re.sub(r"[^a-z0-9_.*]", "_", text.strip().lower())
        raise InvalidInput(f"Event type pattern {_quote(text)} has {text[col]!r} at column {col + 1}; use lowercase "
                           f"letters, digits, '_', '.' and '*' only. Example: {fix}")  # fmt: skip
    if "" in text.split("."):
        fix = ".".join(p for p in text.split(".") if p) or "*"
        raise InvalidInput(f"Event type pattern {_quote(text)} has an empty part between dots. Example: {fix}")
    return text


def _quote(text: str, limit: int = 80) -> str:
    return '"' + "".join(c if c.isprintable() else " " for c in text[:limit]) + ('..."' if len(text) > limit else '"')


def _path_text(path: tuple[str, ...]) -> str:
    return ".".join(p if _NAME.fullmatch(p) else f"`{p}`" for p in path)


class _Token(NamedTuple):
    kind: str  # num, str, path, end, or the operator, punctuation or keyword itself (lowercase)
    text: str
    pos: int


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidInput(f"A condition is text, not {type(text).__name__}. Example: payload.value >= 0.2")
        if len(text) > MAX_CONDITION_LENGTH:
            raise InvalidInput(f"Condition of {len(text):,} characters is too long; the limit is "
                               f"{MAX_CONDITION_LENGTH:,}. Shorten it (e.g. payload.region in ['eu', 'us'] instead "
                               "of a chain of 'or') or split the automation.")  # fmt: skip
        self.text, self.i, self.depth, self.fields = text, 0, 0, list[str]()
        self.tokens = self.tokenize()

    def fail(self, pos: int, problem: str, expected: str, example: str) -> InvalidInput:
        start, prefix = max(0, pos - 60), "..." if pos > 60 else ""
        shown = "".join(c if c.isprintable() else " " for c in self.text[start : pos + 60])
        return InvalidInput(
            f"Condition {_quote(self.text)}: {problem} at column {pos + 1}; expected {expected}. Example: {example}\n"
            f"    {prefix}{shown}\n    {' ' * (len(prefix) + pos - start)}^"
        )

    def unexpected(self, tok: _Token, expected: str, example: str) -> InvalidInput:
        what = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
        what = {"str": f"text {what}", "num": f"number {what}"}.get(tok.kind, f"'{what}'")
        problem = "the condition ends" if tok.kind == "end" else f"unexpected {what}"
        return self.fail(tok.pos, problem, expected, example)

    def tokenize(self) -> list[_Token]:
        text, pos, out = self.text, 0, list[_Token]()
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return [*out, _Token("end", "", pos)]
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self.bad_char(pos)
            kind, nxt = m.lastgroup or "", text[m.end() : m.end() + 1] or " "
            if kind == "num" and (nxt.isalnum() or nxt in "_.`"):
                raise self.fail(pos, f"malformed number {text[pos : m.end() + 1]!r}", "a number such as 3, -0.5 "
                                "or 1e-3, or a name starting with a letter", "payload.value >= 0.2")  # fmt: skip
            if kind == "path" and nxt in ".`":
                raise self.fail(m.end() + (nxt == "."), "a missing or odd key", "a name after "
                                "'.'; put odd keys in backquotes", "payload.`my-key` == 1")  # fmt: skip
            if kind == "op" or (kind == "path" and m.group().lower() in _KEYWORDS):
                kind = m.group().lower()
            out.append(_Token(kind, m.group(), pos))
            pos = m.end()

    def bad_char(self, pos: int) -> InvalidInput:
        ch = self.text[pos]
        if ch in "'\"":
            return self.fail(pos, "a text that is never closed", f"a closing {ch}", "payload.signal == 'data_drift'")
        if ch == "`":
            return self.fail(pos, "a backquoted key outside a field", "a field such as payload.`my-key`",
                             "payload.`my-key` == 1")  # fmt: skip
        hint = _HINTS.get(ch, "a field, a value, an operator or a parenthesis")
        return self.fail(pos, f"unexpected {ch!r}", hint, "payload.value >= 0.2 and not (type == 'monitor.alert')")

    def normalised(self) -> str:
        """The source with each run of whitespace between tokens made one space (texts inside quotes kept)."""
        toks = self.tokens[:-1]
        return "".join((" " if k and toks[k - 1].pos + len(toks[k - 1].text) < t.pos else "") + t.text
                       for k, t in enumerate(toks))  # fmt: skip

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def accept(self, *kinds: str) -> _Token | None:
        tok = self.tokens[self.i]
        if tok.kind not in kinds:
            return None
        self.i += 1
        return tok

    def nest(self, step: int) -> None:
        self.depth += step
        if self.depth > MAX_CONDITION_DEPTH:
            raise self.fail(self.tok.pos, f"nesting deeper than {MAX_CONDITION_DEPTH}", f"at most "
                            f"{MAX_CONDITION_DEPTH} levels of parentheses, 'not' and lists",
                            "a or b or c instead of a or (b or (c))")  # fmt: skip

    def parse(self) -> _Node:
        if self.accept("end"):
            return _Group("and", ())
        node = self.group("or", lambda: self.group("and", self.not_expr))
        if self.tok.kind != "end":
            extra = " (this ')' has no matching '(')" if self.tok.kind == ")" else ""
            raise self.unexpected(self.tok, f"'and', 'or' or the end{extra}", "payload.a == 1 and payload.b == 2")
        return node

    def group(self, word: str, item: Callable[[], _Node]) -> _Node:
        items = [item()]
        while self.accept(word):
            items.append(item())
        return items[0] if len(items) == 1 else _Group(word, tuple(items))

    def not_expr(self) -> _Node:
        opening = self.tok
        if opening.kind not in ("not", "("):
            return self.comparison()
        self.nest(1)
        self.i += 1
        if opening.kind == "not":
            node: _Node = _Group("not", (self.not_expr(),))
        else:
            node = self.group("or", lambda: self.group("and", self.not_expr))
            if not self.accept(")"):
                raise self.unexpected(self.tok, f"')' to close the '(' at column {opening.pos + 1}",
                                      "(payload.a == 1 or payload.b == 2) and type == 'monitor.alert'")  # fmt: skip
        self.nest(-1)
        return node

    def path(self) -> tuple[str, ...]:
        tok = self.tok
        example = "payload.value >= 0.2 or type == 'monitor.alert'"
        if tok.kind in ("num", "str", "true", "false", "null", "["):
            raise self.unexpected(tok, "a field on the left of the comparison", example)
        if tok.kind != "path":
            raise self.unexpected(tok, "a field (type, subject, actor, id, time or payload.<key>) or '('", example)
        parts = tuple(p[1:-1] if p.startswith("`") else p for p in re.findall(r"`[^`]*`|[^.]+", tok.text))
        if parts[0] not in ROOTS:
            fix = f"payload.{tok.text}" if parts[0].lower() not in ROOTS else tok.text.lower()
            rest = self.text[tok.pos + len(tok.text) :].split(" and ")[0].split(" or ")[0].rstrip()[:40] or " == 1"
            raise self.fail(tok.pos, f"unknown field {tok.text!r}", "a field starting with type, subject, actor, "
                            "id, time or payload", fix + rest)  # fmt: skip
        if len(parts) > 1 and parts[0] != "payload":
            raise self.fail(tok.pos, f"field {tok.text!r}: {parts[0]} has no keys", "payload.<key> for nested "
                            "values (only payload has keys)", f"payload.{tok.text.partition('.')[2]} == 1")  # fmt: skip
        self.i += 1
        self.fields.append(_path_text(parts))
        return parts

    def comparison(self) -> _Node:
        path = self.path()
        name = _path_text(path)
        if op := self.accept("==", "!=", "<", "<=", ">", ">="):
            sample = "3" if op.kind in _ORDER else "'x'"
            return _Compare(path, op.kind, self.value(f"a value after {op.text!r}", f"{name} {op.text} {sample}"))
        if self.tok.kind == "=":
            nxt = self.tokens[self.i + 1]
            sample = nxt.text if nxt.kind in ("num", "str") else "'x'"
            raise self.unexpected(self.tok, "'==' to compare for equality", f"{name} == {sample}")
        negated = bool(self.accept("not"))
        if negated and self.tok.kind != "in":
            raise self.unexpected(self.tok, "'in' after 'not' (to test absence write: not <field> exists)",
                                  f"{name} not in ['a', 'b']")  # fmt: skip
        if self.accept("in"):
            example = f"{name} {'not in' if negated else 'in'} ['a', 'b']"
            if self.tok.kind != "[":
                raise self.unexpected(self.tok, "a list in brackets after 'in'", example)
            return _Compare(path, "notin" if negated else "in", self.value("a list", example))
        if self.accept("contains"):
            return _Compare(path, "contains", self.value("a value after 'contains'", f"{name} contains 'x'"))
        if self.accept("matches"):
            if self.tok.kind != "str":
                raise self.unexpected(self.tok, "a quoted pattern after 'matches'", f"{name} matches 'churn-*'")
            return _Compare(path, "matches", self.value("a quoted pattern", f"{name} matches 'churn-*'"))
        if self.accept("exists"):
            return _Compare(path, "exists")
        raise self.unexpected(self.tok, f"an operator after {name} (==, !=, <, <=, >, >=, in, not in, contains, "
                              "matches or exists)", f"{name} == 'x'")  # fmt: skip

    def value(self, expected: str, example: str) -> Value:
        tok = self.tok
        if tok.kind == "num":
            number: Value = float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
            if isinstance(number, float) and math.isinf(number):
                raise self.fail(tok.pos, f"number {tok.text} is too large", "a finite number", example)
        elif tok.kind in _CONSTANTS or tok.kind == "str":
            number = _CONSTANTS[tok.kind] if tok.kind in _CONSTANTS else self.unescape(tok)
        elif tok.kind == "[":
            self.nest(1)
            self.i += 1
            items: list[Value] = []
            while not self.accept("]"):
                items.append(self.value("a value or ']' in the list", "payload.region in ['eu', 'us']"))
                if not self.accept(",") and self.tok.kind != "]":
                    raise self.unexpected(self.tok, "',' or ']' in the list", "payload.region in ['eu', 'us']")
            self.nest(-1)
            return tuple(items)
        else:
            extra = " (a number, 'text', true, false, null or [list]; fields compare with values only)"
            raise self.unexpected(tok, expected + (extra if tok.kind == "path" else ""), example)
        self.i += 1
        return number

    def unescape(self, tok: _Token) -> str:
        def one(m: re.Match[str]) -> str:
            code = m.group(1)
            if code in _ESCAPES or len(code) == 5:
                return _ESCAPES.get(code) or chr(int(code[1:], 16))
            raise self.fail(tok.pos + 1 + m.start(), f"unknown escape '\\{code}'", "one of \\\\ \\' \\\" \\/ \\n "
                            "\\t \\r \\b \\f \\0 \\uXXXX", "payload.path == 'C:\\\\data'")  # fmt: skip

        return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, tok.text[1:-1], flags=re.DOTALL)


def _lookup(event: Mapping[str, Any] | object, path: tuple[str, ...]) -> Any:
    current = event.get(path[0], _MISSING) if isinstance(event, Mapping) else getattr(event, path[0], _MISSING)
    for key in path[1:]:
        current = current.get(key, _MISSING) if isinstance(current, Mapping) else _MISSING
    return current


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _equal(actual: Any, expected: Value) -> bool:
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    if isinstance(expected, tuple):
        return (isinstance(actual, list | tuple) and len(actual) == len(expected)
                and all(_equal(a, e) for a, e in zip(actual, expected, strict=True)))  # fmt: skip
    return _is_number(actual) and bool(actual == expected)


def _compare(node: _Compare, event: Mapping[str, Any] | object) -> bool:
    actual = _lookup(event, node.path)
    op, expected = node.op, cast(Any, node.value)
    if actual is _MISSING:
        return False
    if op in ("==", "!="):
        return _equal(actual, expected) == (op == "==")
    if op in _ORDER:
        same = (_is_number(actual) and _is_number(expected)) or (isinstance(actual, str) and isinstance(expected, str))
        return same and bool(_ORDER[op](actual, expected))
    if op in ("in", "notin"):
        return any(_equal(actual, item) for item in expected) == (op == "in")
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        return isinstance(actual, list | tuple) and any(_equal(item, expected) for item in actual)
    if op == "matches":
        return isinstance(actual, str) and fnmatch.fnmatchcase(actual, str(expected))
    return True  # exists


def _evaluate(node: _Node, event: Mapping[str, Any] | object) -> bool:
    if isinstance(node, _Compare):
        return _compare(node, event)
    results = (_evaluate(item, event) for item in node.items)
    return not next(results) if node.kind == "not" else any(results) if node.kind == "or" else all(results)
