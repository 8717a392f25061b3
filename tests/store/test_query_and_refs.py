"""Parsers: the search filter language and references (property-based where it pays)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.errors import FilterSyntaxError, InvalidInput
from mloop.refs import Ref, format_ref, parse_ref
from mloop.store.query import And, Comparison, Field, Or, parse_filter, parse_order_by

keys = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda k: k not in {"and", "or", "in", "not", "like", "ilike"}
)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=32)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="'\\\x00"), max_size=12)


@given(key=keys, value=numbers, op=st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
def test_metric_comparisons_parse(key: str, value: float, op: str) -> None:
    node = parse_filter(f"metrics.{key} {op} {value!r}")
    assert node == Comparison(Field("metrics", key), op, float(repr(value)))


@given(key=keys, value=texts)
def test_param_equality_parses(key: str, value: str) -> None:
    assert parse_filter(f"params.{key} = '{value}'") == Comparison(Field("params", key), "=", value)


@given(st.text(max_size=40))
def test_garbage_never_crashes(text: str) -> None:
    with contextlib.suppress(FilterSyntaxError):
        parse_filter(text)


def test_precedence_and_grouping() -> None:
    a = Comparison(Field("metrics", "a"), ">", 1.0)
    b = Comparison(Field("params", "b"), "=", "x")
    c = Comparison(Field("tags", "c"), "like", "y%")
    assert parse_filter("metrics.a > 1 and params.b = 'x' or tags.c like 'y%'") == Or((And((a, b)), c))
    assert parse_filter("metrics.a > 1 AND (params.b = 'x' OR tags.c LIKE 'y%')") == And((a, Or((b, c))))
    assert parse_filter("metrics.`val acc` > 1") == Comparison(Field("metrics", "val acc"), ">", 1.0)
    assert parse_filter("  ") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metrics.acc >", "ended"),
        ("metrics.acc > 'high'", "numeric"),
        ("params.depth > 3", "holds text"),
        ("colour = 'red'", "Unknown field"),
        ("metrics.acc > 1 metrics.b < 2", "unexpected"),
        ("(metrics.acc > 1", "ended"),
        ("metrics.acc ~ 1", "Cannot read"),
    ],
)
def test_errors_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError, match=fragment) as info:
        parse_filter(text)
    assert text.strip() in str(info.value) or "Unknown" in str(info.value)


def test_order_by() -> None:
    (ob,) = parse_order_by(["metrics.acc DESC"])
    assert ob.field == Field("metrics", "acc") and ob.descending
    assert not parse_order_by("start_time")[0].descending
    with pytest.raises(FilterSyntaxError):
        parse_order_by(["bogus"])


@given(
    kind=st.sampled_from(["data", "model", "pipeline"]),
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    version=st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_versioned_refs_roundtrip(kind: str, name: str, version: int | None) -> None:
    ref = Ref(kind, name, version=version)
    assert parse_ref(format_ref(ref)) == ref


def test_ref_forms() -> None:
    assert parse_ref("model:churn@production") == Ref("model", "churn", alias="production")
    run = parse_ref("run:0123456789ABCDEF/model/model.pkl")
    assert run == Ref("run", "0123456789abcdef", path="model/model.pkl")
    assert parse_ref("0123456789abcdef", default_kind="run").name == "0123456789abcdef"
    assert str(parse_ref("deployment:churn-api")) == "deployment:churn-api"
    for bad in ["", "model:", "model:churn/0", "widget:x", "run:xyz", "data:a b"]:
        with pytest.raises(InvalidInput, match="reference"):
            parse_ref(bad)
