"""The automation condition grammar: operators, precedence, missing fields, types, errors, limits, properties."""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.automation.rules import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_LENGTH,
    Condition,
    check_type_pattern,
    match_type,
    parse_condition,
)
from mloop.entities.events import Event
from mloop.errors import InvalidInput

PAYLOAD = {"signal": "data_drift", "value": 0.25, "count": 3, "flag": True, "none": None, "tags": ["a", "b", 7],
           "nested": {"deep": {"x": 1}}, "my-key": "odd", "big": 2**70, "pair": [1, "a"], "nan": math.nan}  # fmt: skip
EVENT = {"id": 42, "type": "monitor.alert", "subject": "endpoint:churn", "actor": "scheduler", "time": 1_700_000,
         "payload": PAYLOAD}  # fmt: skip


def ok(text: str, event: Any = None) -> bool:
    return parse_condition(text).matches(EVENT if event is None else event)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payload.signal == 'data_drift'", True), ('payload.signal == "data_drift"', True),
        ("payload.signal != 'data_drift'", False), ("payload.signal != 'x'", True),
        ("payload.value < 0.3", True), ("payload.value < 0.25", False), ("payload.value <= 0.25", True),
        ("payload.value > 0.25", False), ("payload.value >= 0.25", True), ("payload.count > 2.5", True),
        ("payload.count == 3.0", True), ("payload.value >= 2.5e-1", True), ("payload.value > -1", True),
        ("payload.value > 1e-3", True), ("payload.count == 3", True), ("payload.big > 1e20", True),
        ("payload.big == 1180591620717411303424", True), ("payload.count == .5", False),
        ("payload.signal < 'e'", True), ("payload.signal >= 'data'", True),  # strings compare by code point
        ("payload.signal in ['x', 'data_drift']", True), ("payload.signal in ['x']", False),
        ("payload.signal in []", False), ("payload.signal not in ['x']", True), ("payload.count in [3, 4,]", True),
        ("payload.signal not in ['data_drift']", False), ("payload.count in [3.0]", True),
        ("payload.pair in [[1, 'a'], 2]", True), ("payload.pair == [1, 'a']", True), ("payload.pair == [1]", False),
        ("payload.signal contains 'drift'", True), ("payload.signal contains 'x'", False),
        ("payload.tags contains 'a'", True), ("payload.tags contains 7", True), ("payload.tags contains 'z'", False),
        ("payload.signal matches 'data_*'", True), ("payload.signal matches 'Data_*'", False),
        ("payload.signal matches 'd?ta_[a-z]rift'", True), ("subject matches 'endpoint:*'", True),
        ("payload.signal exists", True), ("payload.none exists", True), ("payload.nested.deep.x exists", True),
        ("payload.nested.deep.x == 1", True), ("payload.`my-key` == 'odd'", True),
        ("payload.`nested`.deep.x < 2", True),
        ("payload.flag == true", True), ("payload.flag == TRUE", True), ("payload.flag != false", True),
        ("payload.none == null", True), ("payload.none != null", False), ("payload.value != null", True),
        ("type == 'monitor.alert'", True), ("id == 42", True), ("time > 1000", True), ("actor == 'scheduler'", True),
        ("payload exists", True), ("", True), ("   \n ", True),
        ("payload.signal == 'data_drift' AND payload.value >= 0.2", True), ("Not payload.flag == true", False),
    ],
)  # fmt: skip
def test_operators_literals_and_fields(text: str, expected: bool) -> None:
    assert ok(text) is expected


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        ("payload.s == 'a\\'b\\\"c\\\\d\\ne\\u00e9'", {"payload": {"s": "a'b\"c\\d\neé"}}, True),
        ('payload.s == "tab\\there\\/\\0"', {"payload": {"s": "tab\there/\0"}}, True),
        ("payload.s == 'a  b'", {"payload": {"s": "a  b"}}, True),
        ("payload.s contains ''", {"payload": {"s": ""}}, True),
        ("payload.d.`a.b` == 1", {"payload": {"d": {"a.b": 1}}}, True),
        ("payload.d.`a b`.c == 1", {"payload": {"d": {"a b": {"c": 1}}}}, True),
    ],
)
def test_strings_escapes_and_odd_keys(text: str, event: dict[str, Any], expected: bool) -> None:
    assert ok(text, event) is expected


def test_precedence_not_over_and_over_or() -> None:
    t, f = "type == 'monitor.alert'", "type == 'x'"
    assert ok(f"{t} or {t} and {f}") is True  # t or (t and f)
    assert ok(f"({t} or {t}) and {f}") is False
    assert ok(f"{f} and {f} or {t}") is True  # (f and f) or t
    assert ok(f"{f} and ({f} or {t})") is False
    assert ok(f"not {t} and {f}") is False and ok(f"not ({t} and {f})") is True
    assert ok(f"not {f} or {f}") is True and ok(f"not ({f} or {t})") is False
    assert ok(f"not not {t}") is True and ok(f"((({t})))") is True


@pytest.mark.parametrize(
    "text",
    ["payload.missing == 1", "payload.missing != 1", "payload.missing < 1", "payload.missing >= 1",
     "payload.missing in [1]", "payload.missing not in [1]", "payload.missing contains 'a'",
     "payload.missing matches '*'", "payload.missing exists", "payload.missing == null",
     "payload.signal.deeper == 'x'", "payload.signal.deeper exists", "payload.tags.x exists", "payload.none.x != 1"],
)  # fmt: skip
def test_missing_fields_make_every_comparison_false(text: str) -> None:
    assert ok(text) is False
    assert ok(f"not {text}") is True
    assert ok(text, {"type": "x"}) is False  # no payload at all
    assert ok(text, {}) is False


@pytest.mark.parametrize(
    "text",
    ["payload.signal < 3", "payload.value < 'a'", "payload.value == '0.25'", "payload.flag == 1", "payload.flag > 0",
     "payload.count == true", "payload.none < 1", "payload.tags > 1", "payload.nested == 1", "payload.value contains 2",
     "payload.signal contains 1", "payload.count matches '3'", "payload.tags matches '*'",
     "payload.nested contains 'deep'", "payload.nan == 1", "payload.nan < 1", "payload.nan >= 1",
     "payload.pair in [[1, 'a', 2]]", "payload.count in [[3]]",
     "payload.signal == null", "payload.none == false", "payload.count in ['3']"],
)  # fmt: skip
def test_incompatible_types_compare_false_and_never_raise(text: str) -> None:
    assert ok(text) is False


def test_not_equal_is_true_for_present_values_of_other_types() -> None:
    assert ok("payload.signal != 3") and ok("payload.flag != 1") and ok("payload.count != '3'")
    assert ok("payload.count != 3") is False and ok("payload.count != 3.0") is False


def test_odd_events_never_raise() -> None:
    odd = [
        {"payload": None},
        {"payload": [1, 2]},
        {"payload": "text"},
        {"type": None},
        {"payload": {"signal": object()}},
    ]
    cond = parse_condition("payload.signal == 'x' or payload.signal < 1 or type matches 'a*' or payload.signal exists")
    assert [cond.matches(e) for e in odd] == [False, False, False, False, True]


def test_event_entities_match_like_mappings() -> None:
    event = Event(id=7, type="dataset.version_created", subject="data:sensors/2", actor="ana", time=5,
                  payload={"rows": 1200, "name": "sensors"})  # fmt: skip
    cond = parse_condition("type == 'dataset.version_created' and payload.rows >= 1000 and id == 7")
    assert cond.matches(event) and cond.matches(event.to_dict())


def test_condition_value_object() -> None:
    cond = parse_condition("  payload.a  ==  'x  y'\n\tand   (type == 'b' or payload.a exists) ")
    assert cond.text == "payload.a == 'x  y' and (type == 'b' or payload.a exists)"
    assert cond.fields == ("payload.a", "type")
    assert str(cond) == cond.text and repr(cond) == f"Condition({cond.text!r})"
    assert cond == parse_condition(cond.text) == Condition(cond.text)
    assert hash(cond) == hash(parse_condition(cond.text)) and len({cond, parse_condition(cond.text)}) == 1
    assert pickle.loads(pickle.dumps(cond)) == cond
    with pytest.raises(dataclasses.FrozenInstanceError):
        cond.text = "x"  # type: ignore[misc]
    empty = parse_condition("")
    assert empty.text == "" and empty.fields == () and empty.matches({}) and empty.matches(EVENT)
    assert parse_condition("payload.`my-key` == 1 and payload.x.`a b` exists").fields == ("payload.`my-key`",
                                                                                         "payload.x.`a b`")  # fmt: skip


def test_the_briefs_error_message_exactly() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_condition("payload.value >> 3")
    first, shown, caret = str(err.value).split("\n")
    assert first == (
        "Condition \"payload.value >> 3\": unexpected '>' at column 16; expected a value after '>'. "
        "Example: payload.value > 3"
    )
    assert shown.strip() == "payload.value >> 3" and caret.index("^") == shown.index("payload") + 15


@pytest.mark.parametrize(
    ("text", "column", "expected", "example"),
    [
        ("payload.value >", 16, "the condition ends at column 16; expected a value after '>'", "payload.value > 3"),
        ("foo == 1", 1, "unknown field 'foo' at column 1; expected a field starting with type, subject, actor, id, "
         "time or payload", "payload.foo == 1"),
        ("severity == 'high' and type == 'x'", 1, "unknown field 'severity'", "payload.severity == 'high'"),
        ("Type == 'x'", 1, "unknown field 'Type'", "type == 'x'"),
        ("type.x == 1", 1, "type has no keys", "payload.x == 1"),
        ("payload.x = 3", 11, "unexpected '=' at column 11; expected '=='", "payload.x == 3"),
        ("payload.x not exists", 15, "expected 'in' after 'not' (to test absence write: not <field> exists)", None),
        ("(payload.a == 1", 16, "expected ')' to close the '(' at column 1", None),
        ("payload.a == 1)", 15, "unexpected ')' at column 15; expected 'and', 'or' or the end (this ')' has no", None),
        ("payload.s == 'x\\q'", 16, "unknown escape '\\q'", "payload.path == 'C:\\\\data'"),
        ("'a' == payload.x", 1, "unexpected text 'a' at column 1; expected a field on the left", None),
        ("payload.x in 3", 14, "unexpected number 3 at column 14; expected a list in brackets",
         "payload.x in ['a', 'b']"),
        ("payload.x not in 'a'", 18, "a list in brackets after 'in'", "payload.x not in ['a', 'b']"),
        ("payload.1 == 3", 9, "a missing or odd key", "payload.`my-key` == 1"),
        ("payload. == 3", 9, "a missing or odd key", None),
        ("payload.x == 'abc", 14, "a text that is never closed at column 14; expected a closing '", None),
        ("payload.x && payload.y", 11, "unexpected '&' at column 11; expected 'and' instead of '&'", None),
        ("payload.x || payload.y", 11, "expected 'or' instead of '|'", None),
        ("payload.x == 1e999", 14, "number 1e999 is too large", None),
        ("payload.x == 3abc", 14, "malformed number", None),
        ("payload.x == payload.y", 14, "fields compare with values only", None),
        ("payload.x matches 3", 19, "a quoted pattern after 'matches'", "payload.x matches 'churn-*'"),
        ("payload.x", 10, "the condition ends at column 10; expected an operator after payload.x", "payload.x == 'x'"),
        ("payload.x == [1, 2", 19, "expected ',' or ']' in the list", None),
        ("payload.x in [1 2]", 17, "unexpected number 2 at column 17; expected ',' or ']'", None),
        ("payload.x == 1 and", 19, "expected a field (type, subject, actor, id, time or payload.<key>) or '('", None),
        ("payload.x == 1 payload.y == 2", 16, "unexpected 'payload.y' at column 16; expected 'and', 'or'", None),
        ("()", 2, "unexpected ')' at column 2", None),
        ("payload.x == 1 # comment", 16, "unexpected '#'", None),
        ("payload.`x`` == 1", 12, "a missing or odd key", None),
        ("payload.x == \x00", 14, "unexpected '\\x00'", None),
    ],
)  # fmt: skip
def test_error_messages_name_position_expectation_and_example(text: str, column: int, expected: str,
                                                              example: str | None) -> None:  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        parse_condition(text)
    message = str(err.value)
    first, shown, caret = message.split("\n")
    assert first.startswith('Condition "' + text[:5].replace("\x00", " "))
    assert f"at column {column};" in first and expected in first
    assert "Example: " + (example or "") in first
    assert shown == "    " + "".join(c if c.isprintable() else " " for c in text) and caret == " " * (3 + column) + "^"


def test_limits() -> None:
    longest = "payload.a == '" + "x" * (MAX_CONDITION_LENGTH - 15) + "'"
    assert len(longest) == MAX_CONDITION_LENGTH and ok(longest, {"payload": {"a": "x" * 1985}})
    with pytest.raises(InvalidInput, match=r"Condition of 2,001 characters is too long; the limit is 2,000"):
        parse_condition("type == 'a'" + " " * (2001 - 11))
    nested = "(" * MAX_CONDITION_DEPTH + "type == 'monitor.alert'" + ")" * MAX_CONDITION_DEPTH
    assert ok(nested) and ok("not " * MAX_CONDITION_DEPTH + "type == 'monitor.alert'")
    for deep in ["(" + nested + ")", "not " * (MAX_CONDITION_DEPTH + 1) + "type == 'x'",
                 "payload.a in " + "[" * (MAX_CONDITION_DEPTH + 1) + "]" * (MAX_CONDITION_DEPTH + 1)]:  # fmt: skip
        with pytest.raises(InvalidInput, match=r"nesting deeper than 50 at column \d+; expected at most 50 levels"):
            parse_condition(deep)
    assert ok(" or ".join(["id == 1"] * 150) + " or type == 'monitor.alert'")  # long chains are flat, not deep
    with pytest.raises(InvalidInput, match="A condition is text, not int"):
        parse_condition(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [("monitor.alert", "monitor.alert", True), ("monitor.alert", "monitor.alerts", False),
     ("monitor.*", "monitor.alert", True), ("monitor.*", "monitor.alert.opened", True), ("monitor.*", "model.x", False),
     ("monitor.*", "monitor", False), ("*", "anything.at.all", True), ("*.finished", "run.finished", True),
     ("*.finished", "run.finished.late", False), ("model.*_moved", "model.alias_moved", True),
     ("a*a", "a", False), ("a*b*c", "abc", True), ("a*b*c", "acb", False), ("*a*", "xax", True), ("**", "", True)],
)  # fmt: skip
def test_match_type(pattern: str, event_type: str, expected: bool) -> None:
    assert match_type(pattern, event_type) is expected


def test_check_type_pattern() -> None:
    for good in ["monitor.alert", "monitor.*", "*", "model.version_registered", "a1.b2"]:
        assert check_type_pattern(good) == good
    for bad, fragment in [("", "is empty"), ("  ", "is empty"), ("Monitor.Alert", "'M' at column 1; use lowercase"),
                          ("monitor alert", "' ' at column 8"), ("monitor..x", "empty part between dots. Example: "
                          "monitor.x"), (".x", "empty part"), ("x" * 201, "201 characters; at most 200")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=fragment.replace("*", r"\*").replace(".", r"\.")):
            check_type_pattern(bad)
    with pytest.raises(InvalidInput, match=r"Example: monitor\.alert"):
        check_type_pattern("Monitor.Alert")


# properties: random trees rendered to text give what a direct evaluation gives ------------------------------
PATHS = [("payload", "a"), ("payload", "b"), ("payload", "my-key"), ("payload", "d", "e"), ("payload", "zz"),
         ("type",), ("subject",), ("id",)]  # fmt: skip
texts = st.sampled_from(["", "a", "ab", "b", "1", "True", "x'y", 'q"\\', "é\n"])
numbers = st.one_of(st.integers(-2, 2), st.sampled_from([0.0, 1.0, -1.5, 2**70, float(2**70)]), st.floats(-3, 3))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.one_of(scalars, st.lists(st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=3))
comparisons = st.one_of(
    st.tuples(st.just("cmp"), st.sampled_from(PATHS), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), values),
    st.tuples(st.just("cmp"), st.sampled_from(PATHS), st.sampled_from(["in", "not in"]), st.lists(values, max_size=3)),
    st.tuples(st.just("cmp"), st.sampled_from(PATHS), st.just("contains"), values),
    st.tuples(st.just("cmp"), st.sampled_from(PATHS), st.just("matches"), st.sampled_from(["a*", "*b", "?", "[ab]*"])),
    st.tuples(st.just("cmp"), st.sampled_from(PATHS), st.just("exists"), st.none()),
)
trees = st.recursive(comparisons, lambda sub: st.one_of(st.tuples(st.just("not"), sub),
                     st.tuples(st.sampled_from(["and", "or"]), sub, sub)), max_leaves=8)  # fmt: skip
odd = st.sampled_from([math.nan, math.inf, (1, "a"), {}])
payload_values = st.one_of(values, odd, st.dictionaries(st.sampled_from(["e", "f"]), values, max_size=2))
events = st.fixed_dictionaries(
    {"type": st.sampled_from(["a", "ab", "b"]), "subject": st.sampled_from(["a", 1]), "id": st.integers(0, 3)},
    optional={"payload": st.dictionaries(st.sampled_from(["a", "b", "my-key", "d"]), payload_values, max_size=4)},
)


def render_value(v: Any, quote: str) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(render_value(x, quote) for x in v) + "]"
    if isinstance(v, str):
        return quote + v.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n") + quote
    return {None: "null", True: "true", False: "false"}[v] if v is None or isinstance(v, bool) else repr(v)


def render(node: tuple[Any, ...], quote: str = "'", need: int = 0) -> str:
    head = node[0]
    if head == "cmp":
        path = ".".join(p if p.isidentifier() else f"`{p}`" for p in node[1])
        return f"{path} exists" if node[2] == "exists" else f"{path} {node[2]} {render_value(node[3], quote)}"
    level = {"or": 1, "and": 2, "not": 3}[head]
    text = f"not {render(node[1], quote, 3)}" if head == "not" else \
        f" {head} ".join(render(child, quote, level) for child in node[1:])  # fmt: skip
    return f"({text})" if level < need else text


def kind(x: Any) -> str:
    return {bool: "bool", type(None): "null", str: "str", list: "list", tuple: "list", int: "num", float: "num"}.get(
        type(x), "other")  # fmt: skip


def same(a: Any, b: Any) -> bool:
    if kind(a) != kind(b):
        return False
    return len(a) == len(b) and all(map(same, a, b)) if kind(a) == "list" else bool(a == b)


def reference(node: tuple[Any, ...], event: dict[str, Any]) -> bool:
    if node[0] != "cmp":
        results = [reference(child, event) for child in node[1:]]
        return not results[0] if node[0] == "not" else any(results) if node[0] == "or" else all(results)
    path, op, v = node[1], str(node[2]), node[3]
    x: Any = event
    for key in path:
        if not isinstance(x, dict) or key not in x:
            return False
        x = x[key]
    if op in ("==", "!="):
        return same(x, v) == (op == "==")
    if op in ("<", "<=", ">", ">="):
        return kind(x) == kind(v) in ("num", "str") and bool({"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[op])
    if op in ("in", "not in"):
        return any(same(x, item) for item in v) == (op == "in")
    if op == "contains":
        return (v in x if kind(v) == "str" else False) if kind(x) == "str" else \
            bool(kind(x) == "list" and any(same(item, v) for item in x))  # fmt: skip
    if op == "matches":
        return kind(x) == "str" and fnmatch.fnmatchcase(x, v)
    return True


@settings(max_examples=300, deadline=None)
@given(tree=trees, event=events, quote=st.sampled_from(["'", '"']))
def test_rendered_trees_evaluate_like_python(tree: tuple[Any, ...], event: dict[str, Any], quote: str) -> None:
    cond = parse_condition(render(tree, quote))
    assert cond.matches(event) is reference(tree, event)
    assert parse_condition(f"not ({cond.text})").matches(event) is not cond.matches(event)
    again = parse_condition(cond.text)
    assert again == cond and again.matches(event) is cond.matches(event)
    assert set(cond.fields) <= {".".join(p if p.isidentifier() else f"`{p}`" for p in path) for path in PATHS}


@settings(max_examples=500, deadline=None)
@given(leaf=comparisons, event=events)
def test_single_comparisons_evaluate_like_python(leaf: tuple[Any, ...], event: dict[str, Any]) -> None:
    assert parse_condition(render(leaf)).matches(event) is reference(leaf, event)


MATRIX: list[Any] = [None, True, False, 0, 1, 1.0, -2.5, 2**70, "1", "True", "", "a", [1], [True], ["1"], [[0]], []]


def test_every_pair_of_types_compares_like_the_semantics_say() -> None:
    for actual in MATRIX:
        for literal in MATRIX:
            event = {"payload": {"x": actual}}
            for op in ("==", "!=", "<", "<=", ">", ">="):
                leaf: tuple[Any, ...] = ("cmp", ("payload", "x"), op, literal)
                assert ok(render(leaf), event) is reference(leaf, event), (actual, op, literal)
            leaf = ("cmp", ("payload", "x"), "in", [literal, "zz"])
            assert ok(render(leaf), event) is reference(leaf, event) is same(actual, literal), (actual, literal)


pieces = st.sampled_from(["payload.a", "type", "==", "!=", "<", ">=", "in", "not", "and", "or", "(", ")", "[", "]",
                          ",", "'x'", '"y', "3", "-1.5e3", "true", "null", "exists", "contains", "matches", "`k`", ".",
                          "=", "&", "foo", "payload.`a b`", "1e999", "\\", "\n"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(words=st.lists(pieces, max_size=12), noise=st.text(max_size=20), event=events)
def test_any_text_parses_or_raises_invalid_input_with_a_caret(words: list[str], noise: str, event: Any) -> None:
    for text in (" ".join(words), noise, "".join(words)):
        try:
            cond = parse_condition(text)
        except InvalidInput as err:
            message = str(err)
            assert message.startswith("Condition ") and "Example: " in message and message.endswith("^")
        else:
            assert isinstance(cond.matches(event), bool)
