"""``text/csv`` request bodies: :func:`parse_csv` gives the model input the JSON parsers give, checked the same
way, and ``/predict`` and ``/invocations`` answer CSV as they answer JSON."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.serving.protocols.csv_body import parse_csv
from mloop.serving.schema import RequestError, Schema

SIGNATURE = {"inputs": [
    {"name": "age", "type": "int64", "missing": 0}, {"name": "income", "type": "float64", "missing": 3},
    {"name": "plan", "type": "object", "missing": 1}, {"name": "active", "type": "bool", "missing": 0},
]}  # fmt: skip
SCHEMA = Schema(SIGNATURE, names_needed=True)


def _refused(body: str | bytes, schema: Schema = SCHEMA) -> RequestError:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(RequestError) as info:
        parse_csv(raw, schema)
    return info.value


def test_the_same_input_as_json_with_quoted_fields_any_column_order_and_gaps() -> None:
    body = (
        "\ufeffplan,active,age,income\r\n"  # a byte order mark, CRLF, columns in another order
        '"pro, annual",TRUE,61,55.5\r\n'
        '"say ""hi""\nsecond line",false,25,\r\n'  # quotes and a line break inside quotes; an empty float
        "\r\n"  # a blank line is skipped
        ",1,-3,1e3\r\n"  # an empty string cell (nullable), 1 for true, an exponent
    )
    got = parse_csv(body.encode(), SCHEMA)
    expected = SCHEMA.from_records([
        {"age": 61, "income": 55.5, "plan": "pro, annual", "active": True},
        {"age": 25, "income": None, "plan": 'say "hi"\nsecond line', "active": False},
        {"age": -3, "income": 1000.0, "plan": None, "active": True},
    ])  # fmt: skip
    pd.testing.assert_frame_equal(got, expected)
    assert got["age"].dtype == np.int64


def test_a_numeric_matrix_model_gets_the_same_float_matrix() -> None:
    schema = Schema({"inputs": [{"name": str(i), "type": "float64"} for i in range(3)]}, names_needed=False)
    got = parse_csv(b"2,0,1\n0.5,1,2\n-1,+3,.25\n", schema)  # the header names the columns in another order
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, schema.from_records([[1, 2, 0.5], [3, 0.25, -1]]))


def test_without_a_signature_whole_number_columns_become_numbers() -> None:
    schema = Schema(None, names_needed=True)
    got = parse_csv(b"a,b,c\n1,x,0\n2,,1.5\n", schema)
    pd.testing.assert_frame_equal(got, schema.from_records([{"a": 1, "b": "x", "c": 0}, {"a": 2, "b": None, "c": 1.5}]))
    assert got["a"].dtype == np.int64
    assert got["c"].tolist() == [0.0, 1.5]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ("age,income,plan\n1,2,x\n", 422, "active", ["lacks", "'active'"]),
        ("age,income,plan,active,zip\n1,2,x,true,9\n", 422, "zip", ["'zip'", "Remove"]),
        ("age,age,income,plan,active\n1,1,2,x,true\n", 422, "age", ["more than once"]),
        ("age,income,plan,active\n1,2,x,true\nold,2,x,true\n", 422, "age", ["row 2 (line 3)", "'old'", "int64"]),
        ("age,income,plan,active\n,2,x,true\n", 422, "age", ["row 1 (line 2)", "empty", "no gaps"]),
        ("age,income,plan,active\n1,2,x,yes\n", 422, "active", ["'yes'", "true or false"]),
        ("age,income,plan,active\n1,nan,x,true\n", 422, "income", ["'nan'", "finite"]),
        ("age,income,plan,active\n1,1e400,x,true\n", 422, "income", ["'1e400'", "finite"]),
        ("age,income,plan,active\n1,-Infinity,x,true\n", 422, "income", ["'-Infinity'", "finite", "empty"]),
        ("age,income,plan,active\n1,1_000,x,true\n", 422, "income", ["'1_000'"]),
        ("age,income,plan,active\n1,2,x\n", 422, "row 1", ["3 cell(s)", "4 column(s)"]),
        ("age,income,plan,active\n", 422, "body", ["no rows"]),
        ("", 400, "body", ["empty"]),
        ("\n\n", 400, "body", ["empty"]),
        ('age,income,plan,active\n1,2,"x"y,true\n', 400, "body", ["malformed", "line 2"]),
        ("age,income,plan,active\n1,2,x\x00,true\n", 400, "body", ["NUL"]),
    ],
)
def test_bad_bodies_are_refused_naming_the_column_row_and_value(
    body: str, status: int, field: str, words: list[str]
) -> None:
    exc = _refused(body)
    assert (exc.status, exc.field) == (status, field), str(exc)
    for word in words:
        assert word in str(exc), (word, str(exc))


def test_a_body_that_is_not_utf8_is_a_400_naming_the_byte() -> None:
    exc = _refused(b"age,income,plan,active\n1,2,caf\xe9,true\n")
    assert exc.status == 400
    assert "byte 30" in str(exc)
    assert "UTF-8" in str(exc)


cells = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8)
rows = st.lists(st.tuples(st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False) | st.none(),
                          cells | st.none(), st.booleans()), min_size=1, max_size=5)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(rows=rows)
def test_any_rows_written_by_the_csv_module_read_back_as_their_json(rows: list[tuple[Any, ...]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["age", "income", "plan", "active"])
    writer.writerows([[a, "" if i is None else repr(i), "" if p is None else p, b] for a, i, p, b in rows])
    # an empty string and a missing value are both an empty cell in CSV: both read as missing
    records = [{"age": a, "income": i, "plan": p or None, "active": b} for a, i, p, b in rows]
    pd.testing.assert_frame_equal(parse_csv(out.getvalue().encode(), SCHEMA), SCHEMA.from_records(records))


def test_predict_and_invocations_answer_csv_as_json(churn: Any, serve: Any) -> None:
    _, x = churn
    tc = serve("model:churn/1")
    head = x.head(5)
    body = head.to_csv(index=False).encode()
    records = head.to_dict(orient="records")
    for url in ("/predict", "/predict?proba=true", "/invocations"):
        as_json = tc.post(url, json={"dataframe_records": records} if url == "/invocations" else records)
        as_csv = tc.post(url, content=body, headers={"content-type": "text/csv; charset=utf-8"})
        assert as_csv.status_code == 200, as_csv.text
        assert as_csv.json() == as_json.json()
    r = tc.post("/predict", content=b"age,income\n40,50.0\n", headers={"content-type": "text/csv"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "plan"
    r = tc.post("/invocations", content=b"age,income,plan\n40,\xff,pro\n", headers={"content-type": "text/csv"})
    assert r.status_code == 400
    assert "not UTF-8" in r.json()["error"]["message"]


near_csv = st.lists(
    st.lists(st.sampled_from(["age", "income", "plan", "active", "", "1", "-2.5", "1e400", "nan", "true", '"',
                              '"a,b"', "x\ny", "\r", " 3 ", "\x00", "é"]), max_size=6),
    max_size=5,
).map(lambda rows: "\n".join(",".join(r) for r in rows).encode())  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | near_csv | near_csv.map(lambda b: b"age,income,plan,active\n" + b))
def test_any_bytes_give_a_model_input_or_a_request_error(raw: bytes) -> None:
    for schema in (SCHEMA, Schema(None, names_needed=True)):
        refusal: RequestError | None = None
        try:
            parse_csv(raw, schema)
        except RequestError as exc:  # anything else fails the test
            refusal = exc
        if refusal is not None:
            assert refusal.status in (400, 422)
            assert str(refusal)
