"""Open Inference Protocol v2: pure tensor conversions (with hypothesis) and the routes end to end."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from starlette.applications import Starlette

import mloop
from mloop.errors import InvalidInput
from mloop.registry.loader import load_model
from mloop.serving.protocols.tensors import decode_binary, encode_binary
from mloop.serving.protocols.v2 import (
    DATATYPES,
    datatype_of,
    decode_tensor,
    encode_tensor,
    model_input,
    parse_infer_request,
    v2_routes,
)
from mloop.tracking.client import Client

# --- pure conversions ---------------------------------------------------------------------------------------

_NUMERIC = [k for k in DATATYPES if k not in ("BYTES",)]


def _dtype_strategy() -> st.SearchStrategy[np.dtype[Any]]:
    return st.sampled_from([np.dtype(DATATYPES[k]) for k in _NUMERIC])


@settings(max_examples=150, deadline=None)
@given(
    arr=_dtype_strategy().flatmap(
        lambda dt: hnp.arrays(
            dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
            elements={"allow_nan": False, "allow_infinity": False} if dt.kind == "f" else None,
        )
    )
)  # fmt: skip
def test_numeric_tensors_round_trip_through_json(arr: np.ndarray) -> None:
    wire = json.loads(json.dumps(encode_tensor("x", arr)))
    assert wire["datatype"] == datatype_of(arr.dtype) and wire["shape"] == list(arr.shape)
    name, back = decode_tensor(wire)
    assert name == "x" and back.dtype == arr.dtype and back.shape == arr.shape
    assert np.array_equal(back, arr)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.text(max_size=5), min_size=0, max_size=12),
    cols=st.integers(1, 3),
)
def test_bytes_tensors_round_trip_nested_or_flat(values: list[str], cols: int) -> None:
    rows = len(values) // cols
    arr = np.array(values[: rows * cols], dtype=object).reshape(rows, cols)
    wire = encode_tensor("s", arr)
    assert wire["datatype"] == "BYTES" and wire["shape"] == [rows, cols]
    _, flat = decode_tensor(wire)
    nested = dict(wire, data=arr.tolist())
    _, from_nested = decode_tensor(nested)
    assert flat.shape == from_nested.shape == (rows, cols)
    assert flat.tolist() == from_nested.tolist() == arr.tolist()


def test_nested_and_flat_data_decode_the_same_row_major() -> None:
    flat = {"name": "x", "shape": [2, 3], "datatype": "INT32", "data": [1, 2, 3, 4, 5, 6]}
    nested = dict(flat, data=[[1, 2, 3], [4, 5, 6]])
    a, b = decode_tensor(flat)[1], decode_tensor(nested)[1]
    assert a.dtype == np.int32 and a.tolist() == b.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert decode_tensor({"name": "b", "shape": [2], "datatype": "BOOL", "data": [True, False]})[1].dtype == bool
    assert decode_tensor({"name": "e", "shape": [0, 4], "datatype": "FP32", "data": []})[1].shape == (0, 4)


@pytest.mark.parametrize(
    ("tensor", "words"),
    [
        ({"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}, ["'x'", "3 value", "needs 4"]),
        ({"name": "x", "shape": [2, 2], "datatype": "FP128", "data": [1, 2, 3, 4]}, ["'x'", "'datatype'", "FP128"]),
        ({"name": "x", "shape": [2, -1], "datatype": "FP32", "data": [1, 2]}, ["'x'", "'shape'", "-1"]),
        ({"name": "x", "shape": "2", "datatype": "FP32", "data": [1, 2]}, ["'x'", "'shape'"]),
        ({"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 300]}, ["'x'", "300", "INT8"]),
        ({"name": "x", "shape": [2], "datatype": "UINT8", "data": [1, -1]}, ["'x'", "-1", "UINT8"]),
        ({"name": "x", "shape": [2], "datatype": "INT64", "data": [1, 2.5]}, ["'x'", "2.5", "INT64"]),
        ({"name": "x", "shape": [2], "datatype": "BOOL", "data": [1, 0]}, ["'x'", "BOOL"]),
        ({"name": "x", "shape": [1], "datatype": "FP16", "data": [1e6]}, ["'x'", "FP16"]),
        ({"name": "x", "shape": [2], "datatype": "BYTES", "data": ["a", 1]}, ["'x'", "BYTES", "strings"]),
        ({"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3]]}, ["'x'", "nested"]),
        ({"name": "x", "shape": [3, 2], "datatype": "FP64", "data": [[1, 2, 3], [4, 5, 6]]}, ["'x'", "[3, 2]"]),
        ({"name": "x", "shape": [1], "datatype": "FP64"}, ["'x'", "'data'"]),
        ({"name": "", "shape": [1], "datatype": "FP64", "data": [1]}, ["'name'"]),
        ({"name": "x", "shape": [1], "datatype": "FP64", "data": [1], "parameters": {"binary_data_size": 8}},
         ["'x'", "binary"]),
    ],
)  # fmt: skip
def test_bad_tensors_name_the_tensor_and_the_field(tensor: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_tensor(tensor)
    for word in words:
        assert word in str(info.value)


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
_json_value = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.text(max_size=3), st.integers(), st.none()),
    shape=st.one_of(st.lists(st.integers(-2, 5), max_size=4), _json_value),
    datatype=st.one_of(st.sampled_from([*DATATYPES, "FP8", "STRING", ""]), st.integers()),
    data=_json_value,
)
def test_any_tensor_decodes_or_raises_invalid_input(name: Any, shape: Any, datatype: Any, data: Any) -> None:
    try:
        decoded_name, arr = decode_tensor({"name": name, "shape": shape, "datatype": datatype, "data": data})
    except InvalidInput:
        return
    assert decoded_name == name and list(arr.shape) == shape and datatype_of(arr.dtype) == datatype


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["id", "inputs", "outputs", "parameters"]), _json_value, max_size=4))
def test_any_request_body_parses_or_raises_invalid_input(body: dict[str, Any]) -> None:
    with contextlib.suppress(InvalidInput):
        parse_infer_request(body)


def test_infer_request_outputs_id_and_parameters() -> None:
    body = {"id": "r1", "parameters": {"p": 1}, "inputs": [{"name": "x", "shape": [1], "datatype": "FP64",
            "data": [1.0]}], "outputs": [{"name": "predict_proba"}]}  # fmt: skip
    req = parse_infer_request(body)
    assert req.id == "r1" and req.parameters == {"p": 1} and req.outputs == ("predict_proba",)
    assert parse_infer_request({"inputs": body["inputs"]}).outputs == ("predict",)
    with pytest.raises(InvalidInput, match=r"'scores'.*'predict'"):
        parse_infer_request(dict(body, outputs=[{"name": "scores"}]), ("predict",))
    with pytest.raises(InvalidInput, match="'x' is given more than once"):
        parse_infer_request({"inputs": [body["inputs"][0], body["inputs"][0]]})  # type: ignore[index]


def test_model_input_columns_or_one_matrix() -> None:
    cols = [("age", np.array([30, 50])), ("plan", np.array(["pro", "basic"], dtype=object))]
    frame = model_input(cols, ("age", "plan"), None)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["age", "plan"] and frame.shape == (2, 2)
    with pytest.raises(InvalidInput, match=r"'plan'.*missing"):
        model_input(cols[:1], ("age", "plan"), None)
    matrix = np.ones((3, 4))
    assert model_input([("input-0", matrix)], ("a", "b", "c", "d"), None) is matrix
    named = model_input([("input-0", matrix)], (), ["a", "b", "c", "d"])
    assert list(named.columns) == ["a", "b", "c", "d"]
    with pytest.raises(InvalidInput, match=r"'input-0' has shape \[3, 4\]; the model takes \[N, 2\]"):
        model_input([("input-0", matrix)], ("a", "b"), None)
    types = {"age": "int64", "plan": "object"}
    assert model_input(cols, ("age", "plan"), None, types).shape == (2, 2)
    as_text = [("age", np.array(["30", "50"], dtype=object)), cols[1]]
    with pytest.raises(InvalidInput, match=r"'age' is BYTES but the model's column 'age' is int64; send it as a num"):
        model_input(as_text, ("age", "plan"), None, types)
    as_number = [cols[0], ("plan", np.array([1, 2]))]
    with pytest.raises(InvalidInput, match=r"'plan' is INT64 .* send it as BYTES"):
        model_input(as_number, ("age", "plan"), None, types)


# --- the routes, end to end on a registered scikit-learn model ----------------------------------------------


@pytest.fixture
def churn_v2(client: Client) -> tuple[Any, pd.DataFrame]:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"age": rng.integers(18, 80, 200), "income": rng.normal(50, 10, 200),
                      "plan": rng.choice(["basic", "pro"], 200)})  # fmt: skip
    y = ((x["age"] > 40) ^ (x["plan"] == "pro")).astype(int).to_numpy()
    pre = make_column_transformer((StandardScaler(), ["age", "income"]), (OneHotEncoder(), ["plan"]))
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(x, y)
    with mloop.start_run("churn") as run:
        run.log_model(model, "churn", input_example=x.head(3), signature_data=x)
    return model, x


def _app(client: Client) -> Starlette:
    return Starlette(routes=v2_routes(load_model("model:churn/1", client=client)))


def _call(app: Any, method: str, url: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:  # in process, through httpx.ASGITransport
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://v2.test") as http:
            return await http.request(method, url, **kw)

    return anyio.run(go)


def _columns(x: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"name": "age", "shape": [len(x)], "datatype": "INT64", "data": x["age"].tolist()},
        {"name": "income", "shape": [len(x), 1], "datatype": "FP64", "data": [[v] for v in x["income"]]},
        {"name": "plan", "shape": [len(x)], "datatype": "BYTES", "data": x["plan"].tolist()},
    ]


def test_health_and_metadata_routes(client: Client, churn_v2: tuple[Any, pd.DataFrame]) -> None:
    app = _app(client)
    server = (_call(app, "GET", "/v2")).json()
    assert server["name"] == "mloop" and server["extensions"] == ["binary_tensor_data"] and server["version"]
    assert (_call(app, "GET", "/v2/health/live")).json() == {"live": True}
    assert (_call(app, "GET", "/v2/health/ready")).json() == {"ready": True}
    meta = (_call(app, "GET", "/v2/models/churn")).json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"] and meta["platform"] == "mloop-sklearn"
    assert meta["inputs"] == [{"name": "age", "datatype": "INT64", "shape": [-1]},
                              {"name": "income", "datatype": "FP64", "shape": [-1]},
                              {"name": "plan", "datatype": "BYTES", "shape": [-1]}]  # fmt: skip
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]  # fmt: skip
    assert (_call(app, "GET", "/v2/models/churn/versions/1")).json() == meta
    ready = _call(app, "GET", "/v2/models/churn/versions/1/ready")
    assert ready.status_code == 200 and ready.json() == {"name": "churn", "ready": True}
    for url in ("/v2/models/fraud", "/v2/models/churn/versions/2", "/v2/models/churn/versions/2/ready"):
        missing = _call(app, "GET", url)
        assert missing.status_code == 404 and set(missing.json()) == {"error"}
    assert "no version '2'" in missing.json()["error"] and "serves version 1" in missing.json()["error"]


def test_infer_matches_the_model(client: Client, churn_v2: tuple[Any, pd.DataFrame]) -> None:
    model, x = churn_v2
    app = _app(client)
    rows = x.head(5)
    body = {"id": "req-7", "inputs": _columns(rows), "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    resp = _call(app, "POST", "/v2/models/churn/versions/1/infer", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["model_name"] == "churn" and out["model_version"] == "1" and out["id"] == "req-7"
    pred, proba = out["outputs"]
    assert pred["name"] == "predict" and pred["datatype"] == "INT64" and pred["shape"] == [5]
    assert pred["data"] == model.predict(rows).tolist()
    assert proba["shape"] == [5, 2] and np.allclose(np.reshape(proba["data"], (5, 2)), model.predict_proba(rows))
    plain = _call(app, "POST", "/v2/models/churn/infer", json={"inputs": _columns(rows.head(1))})
    assert [o["name"] for o in plain.json()["outputs"]] == ["predict"] and "id" not in plain.json()


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"{not json", 400, ["not valid JSON"]),
        (b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [NaN]}]}', 400, ["NaN"]),
        (b"[]", 400, ["body"]),
        (b'{"inputs": []}', 400, ["'inputs'"]),
        (b'{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1]}]}', 400, ["'age'", "needs 2"]),
        (b'{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [30]}]}', 400,
         ["'income'", "'plan'", "missing"]),
        (b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}', 400,
         ["'x'", "[N, 3]"]),
        (b'{"id": 5, "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}', 400, ["'id'"]),
    ],
)  # fmt: skip
def test_bad_infer_requests_are_400_with_an_error_body(
    client: Client, churn_v2: tuple[Any, pd.DataFrame], content: bytes, status: int, words: list[str]
) -> None:
    resp = _call(_app(client), "POST", "/v2/models/churn/infer", content=content,
                       headers={"content-type": "application/json"})  # fmt: skip
    assert resp.status_code == status and list(resp.json()) == ["error"], resp.text
    for word in words:
        assert word in resp.json()["error"]


def test_an_unknown_category_is_a_400_not_a_500(client: Client, churn_v2: tuple[Any, pd.DataFrame]) -> None:
    _, x = churn_v2
    cols = _columns(x.head(1))
    cols[2]["data"] = ["enterprise"]
    resp = _call(_app(client), "POST", "/v2/models/churn/infer", json={"inputs": cols})
    assert resp.status_code == 400 and "refused" in resp.json()["error"] and "enterprise" in resp.json()["error"]


def test_routes_answer_503_until_the_model_is_loaded(client: Client, churn_v2: tuple[Any, pd.DataFrame]) -> None:
    holder: list[Any] = []
    app = Starlette(routes=v2_routes(lambda: holder[0] if holder else None))
    assert (_call(app, "GET", "/v2/health/live")).status_code == 200
    assert (_call(app, "GET", "/v2/health/ready")).status_code == 503
    assert (_call(app, "GET", "/v2/models/churn/ready")).status_code == 503
    holder.append(load_model("model:churn/1", client=client))
    assert (_call(app, "GET", "/v2/health/ready")).json() == {"ready": True}
    assert (_call(app, "GET", "/v2/models/churn/ready")).status_code == 200


def test_a_numeric_model_takes_one_matrix_tensor(client: Client) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 4))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with mloop.start_run("iris") as run:
        run.log_model(model, "iris", signature_data=x)
    app = Starlette(routes=v2_routes(load_model("model:iris", client=client)))
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": x[:2].tolist()}]}
    resp = _call(app, "POST", "/v2/models/iris/infer", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"][0]["data"] == model.predict(x[:2].astype(np.float32)).tolist()


def test_a_large_batch_is_scored_off_the_event_loop_and_matches(client: Client, churn_v2: Any) -> None:
    from mloop.serving.protocols import v2

    model, x = churn_v2
    body = {"inputs": _columns(x)}
    assert len(json.dumps(body)) > v2.INLINE_BYTES  # this request takes the worker-thread path
    resp = _call(_app(client), "POST", "/v2/models/churn/infer", json=body)
    assert resp.status_code == 200 and resp.json()["outputs"][0]["data"] == model.predict(x).tolist()


# --- mounted on the scoring app (create_app), through its lifespan and request ids -------------------------


class Crashing:
    def predict(self, x: Any) -> np.ndarray:
        raise RuntimeError("disk on fire")


def test_v2_on_the_scoring_app(churn: tuple[Any, pd.DataFrame], serve: Any) -> None:
    model, x = churn
    unstarted = serve("model:churn/1", started=False)
    assert unstarted.get("/v2/health/live").status_code == 200
    assert unstarted.get("/v2/health/ready").status_code == 503
    assert unstarted.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": False}
    body = {"id": "a", "inputs": _columns(x.head(3))}
    assert set(unstarted.post("/v2/models/churn/infer", json=body).json()) == {"error"}
    tc = serve("model:churn")
    assert tc.get("/v2/health/ready").json() == {"ready": True}
    assert tc.get("/v2/models/churn").json()["versions"] == ["1"]
    r = tc.post("/v2/models/churn/versions/1/infer", json=body, headers={"X-Request-ID": "v2-req"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "v2-req" and r.json()["id"] == "a"
    assert r.json()["outputs"][0]["data"] == model.predict(x.head(3)).tolist()
    assert tc.post("/v2/models/churn/versions/9/infer", json=body).status_code == 404


def test_v2_body_over_the_limit_is_413(churn: tuple[Any, pd.DataFrame], serve: Any) -> None:
    _, x = churn
    tc = serve("model:churn/1", max_body_bytes=1000)
    big = {"inputs": _columns(x.head(60))}
    r = tc.post("/v2/models/churn/infer", json=big)
    assert r.status_code == 413 and "1000" in r.json()["error"]

    async def chunks() -> Any:  # no Content-Length: counted while streaming
        yield b'{"inputs": [{"name": "age", "shape": [400], "datatype": "INT64", "data": ['
        for _ in range(399):
            yield b"30,"
        yield b"30]}]}"

    r = tc.post("/v2/models/churn/infer", content=chunks())
    assert r.status_code == 413 and "over 1000 bytes" in r.json()["error"]
    assert tc.post("/v2/models/churn/infer", json={"inputs": _columns(x.head(1))}).status_code == 200


def test_v2_crashing_model_is_a_500_with_the_request_id(client: Client, serve: Any) -> None:
    with mloop.start_run("crash") as run:
        run.log_model(Crashing(), "crash", signature_data=np.zeros((3, 2)))
    tc = serve("model:crash/1")
    body = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    r = tc.post("/v2/models/crash/infer", json=body, headers={"X-Request-ID": "r-500"})
    assert r.status_code == 500 and "r-500" in r.json()["error"] and "disk on fire" not in r.json()["error"]


_tensor = st.fixed_dictionaries(
    {"name": st.sampled_from(["age", "income", "plan", "input-0", ""]),
     "shape": st.lists(st.integers(-1, 3), max_size=3), "datatype": st.sampled_from([*DATATYPES, "STRING"]),
     "data": _json_value},
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        _json_value,
        st.fixed_dictionaries({"inputs": st.lists(_tensor, max_size=3)},
                              optional={"id": _json_leaf, "outputs": _json_value, "parameters": _json_value}),
    )
)  # fmt: skip
def test_fuzzed_infer_bodies_never_get_a_500(client: Client, churn_v2: Any, body: Any) -> None:
    """Whatever JSON arrives, the answer is 200 or a 400 {"error"} (one workspace and model for all examples)."""
    resp = _call(_app(client), "POST", "/v2/models/churn/infer", json=body)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert list(resp.json()) == ["error"] and resp.json()["error"]


def test_the_documented_request_works_as_shown(client: Client, churn_v2: Any) -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "serving.md").read_text()
    section = doc.split("## Open Inference Protocol v2", 1)[1]
    body = json.loads(section.split("-d '", 1)[1].split("'", 1)[0])
    resp = _call(_app(client), "POST", "/v2/models/churn/infer", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["id"] == "req-1" and out["model_name"] == "churn" and out["model_version"] == "1"
    assert [(o["name"], o["datatype"], o["shape"]) for o in out["outputs"]] == [
        ("predict", "INT64", [2]), ("predict_proba", "FP64", [2, 2])
    ]  # fmt: skip


def test_unknown_v2_paths_and_methods_get_the_error_body(client: Client, churn_v2: Any) -> None:
    app = _app(client)
    r = _call(app, "GET", "/v2/repository/index")
    assert r.status_code == 404 and "/v2/repository/index" in r.json()["error"]
    r = _call(app, "POST", "/v2/models/churn/ready")
    assert r.status_code == 405 and r.json() == {"error": "POST is not allowed on /v2/models/churn/ready; use GET."}
    r = _call(app, "GET", "/v2/models/churn/versions/1/infer")
    assert r.status_code == 405 and "use POST" in r.json()["error"]
    assert _call(app, "GET", "/v2/models/churn/ready").status_code == 200  # the real routes still win


def test_a_score_py_model_is_served_through_v2(client: Client, tmp_path: Any) -> None:
    script = tmp_path / "scorer"
    script.mkdir()
    (script / "score.py").write_text(
        "import numpy as np\n\ndef init():\n    pass\n\ndef run(data):\n    return np.asarray(data).sum(axis=1)\n"
    )
    version = mloop.register_model(script, "summer")
    app = Starlette(routes=v2_routes(load_model(version.ref, client=client)))
    meta = _call(app, "GET", "/v2/models/summer").json()
    assert meta["platform"] == "mloop-script" and [o["name"] for o in meta["outputs"]] == ["predict"]
    body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "INT32", "data": [[1, 2, 3], [4, 5, 6]]}]}
    out = _call(app, "POST", "/v2/models/summer/infer", json=body).json()["outputs"]
    assert out == [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [6, 15]}]
    asked = dict(body, outputs=[{"name": "predict_proba"}])
    r = _call(app, "POST", "/v2/models/summer/infer", json=asked)
    assert r.status_code == 400 and "'predict_proba'" in r.json()["error"] and "'predict'" in r.json()["error"]


# --- the binary tensor data extension (what tritonclient sends and asks for by default) ---------------------


@settings(max_examples=100, deadline=None)
@given(
    arr=st.one_of(
        _dtype_strategy().flatmap(
            lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
                                  elements={"allow_nan": False, "allow_infinity": False} if dt.kind == "f" else None)
        ),
        st.lists(st.text(max_size=4), max_size=6).map(lambda v: np.array(v, dtype=object)),
    )
)  # fmt: skip
def test_binary_tensors_round_trip(arr: np.ndarray) -> None:
    datatype, raw = encode_binary(arr)
    back = decode_binary(raw, arr.shape, datatype)
    assert back.shape == arr.shape and datatype_of(back.dtype) == datatype and back.tolist() == arr.tolist()


def _bytes_element(text: str) -> bytes:
    b = text.encode()
    return len(b).to_bytes(4, "little") + b


def test_binary_infer_request_and_response(client: Client, churn_v2: Any) -> None:
    model, x = churn_v2
    rows = x.head(2)
    parts = [rows["age"].to_numpy("<i8").tobytes(), rows["income"].to_numpy("<f8").tobytes(),
             b"".join(_bytes_element(v) for v in rows["plan"])]  # fmt: skip
    header = json.dumps({
        "inputs": [
            {"name": "age", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": len(parts[0])}},
            {"name": "income", "shape": [2, 1], "datatype": "FP64", "parameters": {"binary_data_size": len(parts[1])}},
            {"name": "plan", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(parts[2])}},
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}, {"name": "predict_proba"}],
    }).encode()  # fmt: skip
    headers = {"Inference-Header-Content-Length": str(len(header)), "content-type": "application/octet-stream"}
    r = _call(_app(client), "POST", "/v2/models/churn/infer", content=header + b"".join(parts), headers=headers)
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    pred, proba = head["outputs"]
    assert "data" not in pred and pred["parameters"]["binary_data_size"] == len(r.content) - n
    assert np.frombuffer(r.content[n:], "<i8").tolist() == model.predict(rows).tolist()
    assert np.allclose(np.reshape(proba["data"], (2, 2)), model.predict_proba(rows))  # JSON: not asked as binary
    short = header + b"".join(parts)[:-3]
    r = _call(_app(client), "POST", "/v2/models/churn/infer", content=short, headers=headers)
    assert r.status_code == 400 and "'plan'" in r.json()["error"]
    extra = header + b"".join(parts) + b"xx"
    r = _call(_app(client), "POST", "/v2/models/churn/infer", content=extra, headers=headers)
    assert r.status_code == 400 and "2 byte(s) no input claims" in r.json()["error"]
    bad_header = dict(headers, **{"Inference-Header-Content-Length": "99999"})
    r = _call(_app(client), "POST", "/v2/models/churn/infer", content=header, headers=bad_header)
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]


@pytest.mark.parametrize(
    ("raw", "shape", "datatype", "words"),
    [
        (b"\x00\x00\x00", (1,), "FP32", ["3 bytes", "needs 4"]),
        (b"\x02", (1,), "BOOL", ["0 or 1"]),
        (b"\x05\x00\x00\x00ab", (1,), "BYTES", ["length-prefixed"]),
        (b"\x01\x00\x00\x00\xff", (1,), "BYTES", ["UTF-8"]),
        (np.array([np.nan], "<f8").tobytes(), (1,), "FP64", ["NaN"]),
    ],
)  # fmt: skip
def test_bad_binary_data_is_invalid_input(raw: bytes, shape: tuple[int, ...], datatype: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_binary(raw, shape, datatype, "input 'x'")
    for word in words:
        assert word in str(info.value)


def test_metadata_types_predict_from_the_classes_without_an_output_signature(client: Client, serve: Any) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x = np.arange(20, dtype=float).reshape(10, 2)
    with mloop.start_run("untyped") as run:  # no signature_data: the version records no output type
        run.log_model(LogisticRegression().fit(x, np.arange(10) % 2), "ints")
        run.log_model(LogisticRegression().fit(x, np.array(["a", "b"] * 5)), "labels")
        run.log_model(LinearRegression().fit(x, np.arange(10.0)), "numbers")
    want = {"ints": "INT64", "labels": "BYTES", "numbers": "FP64"}
    for name, datatype in want.items():
        meta = serve(f"model:{name}/1").get(f"/v2/models/{name}").json()
        assert meta["outputs"][0]["datatype"] == datatype, (name, meta)
