"""Bad input gets 400/413/422 with a JSON body naming the field, the expected type and what was sent; a 500
only for a real fault of the server (a model that crashes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import mloop
from mloop.tracking.client import Client

GOOD = {"age": 30, "income": 50.0, "plan": "pro"}


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json" and r.headers["x-request-id"]
    err: dict[str, Any] = r.json()["error"]
    assert err["message"]
    return err


@pytest.fixture
def tc(churn: Any, serve: Any) -> Any:
    return serve("model:churn/1")


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        (b'[{"age": 30,', "not valid JSON"),
        (b'[{"age": NaN, "income": 1.0, "plan": "pro"}]', "NaN is not valid JSON; send null"),
        (b'[{"age": 1, "income": Infinity, "plan": "pro"}]', "Infinity is not valid JSON"),
        (b'[{"age": 1, "income": 1e400, "plan": "pro"}]', "infinity"),
        (b"", "empty"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_json_is_400(tc: Any, raw: bytes, hint: str) -> None:
    for route in ("/predict", "/invocations"):
        err = _error(tc.post(route, content=raw, headers={"content-type": "application/json"}), 400)
        assert hint in err["message"] and err["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field", "expected", "got"),
    [
        ({"age": 30, "plan": "pro"}, "income", "a number (float64)", "missing"),
        ({**GOOD, "zip": "10115"}, "zip", "no such column", "present"),
        ({**GOOD, "age": "old"}, "age", "a number (int64)", "string 'old'"),
        ({**GOOD, "age": True}, "age", "a number (int64)", "boolean True"),
        ({**GOOD, "plan": 3}, "plan", "a string (", "number 3"),
        ({**GOOD, "income": None}, "income", "a number (float64)", "null None"),
        ({**GOOD, "income": [1.0]}, "age", "a list", "number"),  # a row mixed with a column
        ({"age": [1, 2], "income": [1.0], "plan": ["a", "b"]}, "income", "2 values", "1 values"),
        ({"age": [], "income": [], "plan": []}, None, "1 or more rows", "0 rows"),
        ([], "body", "1 or more rows", "[]"),
        ([GOOD, {"age": 1, "income": 2.0}], "plan", "a string (", "missing"),
        ([GOOD, 5], "body[1]", "object", "number"),
        (5, "body", "array or object", "int"),
        ({"inputs": [GOOD], "proba": "yes"}, "proba", "true or false", "'yes'"),
        ([[30, 50.0, "pro", 1]], "body[0]", "3 values", "4 values"),
    ],
)
def test_bad_predict_input_is_422_naming_the_field(
    tc: Any, body: Any, field: str | None, expected: str, got: str
) -> None:
    err = _error(tc.post("/predict", json=body), 422)
    assert err["field"] == field
    assert expected in err["expected"] and got in err["got"], err
    if field and not field.startswith("body"):
        assert repr(field) in err["message"] or field in err["message"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([GOOD], 400, "body"),
        ({"instances": [GOOD], "inputs": [GOOD]}, 400, "body"),
        ({"instance": [GOOD]}, 400, "body"),
        ({}, 400, "body"),
        ({"dataframe_split": {"columns": ["age", "income", "plan"], "data": []}}, 422, "dataframe_split.data"),
        (
            {"dataframe_split": {"columns": ["age", "income"], "data": [[1, 2.0, "pro"]]}},
            422,
            "dataframe_split.data[0]",
        ),
        (
            {"dataframe_split": {"columns": ["age", "age", "plan"], "data": [[1, 2, "p"]]}},
            422,
            "dataframe_split.columns",
        ),
        ({"dataframe_split": [[1, 2.0, "pro"]]}, 422, "dataframe_split"),
        ({"dataframe_records": {"age": 1}}, 422, "dataframe_records"),
        ({"dataframe_records": [{"age": 1, "income": 2.0}]}, 422, "plan"),
        ({"instances": 5}, 422, "instances"),
        ({"inputs": {"age": [1], "income": ["x"], "plan": ["pro"]}}, 422, "income"),
    ],
)
def test_bad_invocations_input(tc: Any, body: Any, status: int, field: str) -> None:
    assert _error(tc.post("/invocations", json=body), status)["field"] == field


def test_payload_over_the_limit_is_413(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1", max_body_bytes=1000)
    rows = [GOOD] * 40  # about 1,500 bytes
    err = _error(tc.post("/predict", json=rows), 413)
    assert err["expected"] == "at most 1000 bytes" and "1000" in err["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        yield b"["
        for _ in range(100):
            yield b'{"age": 30, "income": 50.0, "plan": "pro"},'
        yield b"{}]"

    assert _error(tc.post("/predict", content=chunks()), 413)["got"] == "over 1000 bytes"
    assert tc.post("/predict", json=[GOOD]).status_code == 200  # under the limit still scores


def test_bad_proba_query_is_400(tc: Any) -> None:
    assert _error(tc.post("/predict?proba=maybe", json=[GOOD]), 400)["field"] == "proba"


def test_value_the_model_refuses_is_422_not_500(tc: Any) -> None:
    # the signature lets any string through; the fitted OneHotEncoder refuses an unseen category
    err = _error(tc.post("/predict", json=[{**GOOD, "plan": "enterprise"}]), 422)
    assert "model:churn/1 refused the input" in err["message"] and "enterprise" in err["message"]


class NoProba:
    def predict(self, x: Any) -> np.ndarray:
        return np.zeros(len(x))


class Crashing:
    def predict(self, x: Any) -> np.ndarray:
        raise RuntimeError("disk on fire")


def test_proba_of_a_model_without_it_is_422(client: Client, serve: Any) -> None:
    with mloop.start_run("plain") as run:
        run.log_model(NoProba(), "plain", signature_data=np.zeros((3, 2)))
    tc = serve("model:plain/1")
    assert tc.post("/predict", json=[{"0": 1.0, "1": 2.0}]).json()["predictions"] == [0.0]
    err = _error(tc.post("/predict?proba=true", json=[{"0": 1.0, "1": 2.0}]), 422)
    assert err["field"] == "proba" and "no predict_proba" in err["message"]


def test_a_crashing_model_is_a_500_with_the_request_id(client: Client, serve: Any) -> None:
    with mloop.start_run("crash") as run:
        run.log_model(Crashing(), "crash", signature_data=np.zeros((3, 2)))
    tc = serve("model:crash/1")
    r = tc.post("/predict", json=[{"0": 1.0, "1": 2.0}], headers={"X-Request-ID": "r-500"})
    err = _error(r, 500)
    assert "r-500" in err["message"] and "disk on fire" not in err["message"]  # no internals leaked
    assert _error(tc.post("/predict", json=[{"0": "x", "1": 2.0}]), 422)["field"] == "0"  # validated first
