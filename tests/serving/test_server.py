"""The scoring server: verified startup, health, request ids, native /predict and MLflow /invocations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import IntegrityError, NotFound
from mloop.serving import create_app
from mloop.tracking.client import Client


def test_ready_only_after_the_model_is_loaded(client: Client, churn: Any, serve: Any) -> None:
    unstarted = serve("model:churn/1", started=False)  # no lifespan: the model is not loaded
    assert unstarted.get("/health/live").status_code == 200
    r = unstarted.get("/health/ready")
    assert r.status_code == 503 and r.json()["status"] == "loading"
    assert unstarted.post("/predict", json=[{"age": 30, "income": 50.0, "plan": "pro"}]).status_code == 503
    r = serve("model:churn/1").get("/health/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "model": "model:churn/1"}


def test_latest_resolves_to_the_version(client: Client, churn: Any, serve: Any) -> None:
    assert serve("model:churn").get("/health/ready").json()["model"] == "model:churn/1"


def test_tampered_file_refuses_to_start_naming_it(client: Client, churn: Any, serve: Any, served: Any) -> None:
    assert serve("model:churn/1").get("/health/ready").status_code == 200  # fills the verified local cache
    version = client.store.get_model_version("churn", 1, None)
    pkl = client.workspace.settings.local_dir / "models" / version.id / "model.pkl"
    data = bytearray(pkl.read_bytes())
    data[-5] ^= 0xFF
    pkl.write_bytes(bytes(data))
    app = create_app("model:churn/1", client)
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        served(app)
    assert app.state.model is None


def test_unknown_model_refuses_to_start(client: Client, churn: Any, served: Any) -> None:
    with pytest.raises(NotFound, match="7"):
        served(create_app("model:churn/7", client))


def test_request_id_taken_or_generated(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1")
    assert tc.get("/health/live", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = {tc.get("/health/live").headers["x-request-id"] for _ in range(2)}
    assert len(generated) == 2 and all(len(g) == 32 for g in generated)
    bad = tc.get("/health/live", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"]
    assert bad != "x" * 500 and len(bad) == 32
    r = tc.post("/predict", json={"age": "old"}, headers={"X-Request-ID": "req-9"})
    assert r.status_code == 422 and r.headers["x-request-id"] == "req-9"


ROWS = [{"age": 25, "income": 40.5, "plan": "basic"}, {"age": 61, "income": 55.0, "plan": "pro"}]


def _expected(model: Any, rows: list[dict[str, Any]]) -> list[Any]:
    return list(model.predict(pd.DataFrame(rows)).tolist())


def test_predict_records_row_and_columns(churn: Any, serve: Any) -> None:
    model, _ = churn
    tc = serve("model:churn/1")
    want = _expected(model, ROWS)
    r = tc.post("/predict", json=ROWS)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want, "model": "model:churn/1"}
    assert tc.post("/predict", json=ROWS[1]).json()["predictions"] == want[1:]
    columns = {k: [row[k] for row in ROWS] for k in ROWS[0]}
    assert tc.post("/predict", json=columns).json()["predictions"] == want
    assert tc.post("/predict", json={"inputs": ROWS}).json()["predictions"] == want


def test_predict_proba_when_asked(churn: Any, serve: Any) -> None:
    model, _ = churn
    tc = serve("model:churn/1")
    want = model.predict_proba(pd.DataFrame(ROWS))
    for r in (tc.post("/predict", json={"inputs": ROWS, "proba": True}), tc.post("/predict?proba=true", json=ROWS)):
        assert r.status_code == 200, r.text
        body = r.json()
        assert np.allclose(body["probabilities"], want) and body["classes"] == [0, 1]


def test_numpy_model_scores_without_a_dataframe(matrix: Any, serve: Any) -> None:
    model, x = matrix
    tc = serve("model:matrix/1")
    state = tc.app.state
    assert state.schema.numeric_matrix and state.schema.names == ("0", "1", "2")
    rows = x[:5].tolist()
    r = tc.post("/predict", json=[dict(zip(("0", "1", "2"), row, strict=True)) for row in rows])
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == model.predict(x[:5]).tolist()
    r = tc.post("/invocations", json={"instances": rows})
    assert r.json() == {"predictions": model.predict(x[:5]).tolist(), "model": "model:matrix/1"}


def test_large_batch_scored_off_the_event_loop(churn: Any, serve: Any) -> None:
    model, x = churn
    rows = x.head(150).to_dict(orient="records")
    r = serve("model:churn/1").post("/predict", json=rows)
    assert r.status_code == 200 and r.json()["predictions"] == model.predict(x.head(150)).tolist()


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["age", "income", "plan"], "data": [[25, 40.5, "basic"], [61, 55.0, "pro"]]}},
        {"dataframe_split": {"columns": ["plan", "age", "income"], "data": [["basic", 25, 40.5], ["pro", 61, 55.0]]}},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"instances": [[25, 40.5, "basic"], [61, 55.0, "pro"]]},
        {"inputs": {"age": [25, 61], "income": [40.5, 55.0], "plan": ["basic", "pro"]}},
        {"inputs": ROWS, "params": {}},
    ],
)
def test_invocations_mlflow_shapes(churn: Any, serve: Any, body: dict[str, Any]) -> None:
    model, _ = churn
    r = serve("model:churn/1").post("/invocations", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == _expected(model, ROWS)


def test_integers_beyond_int64_are_scored_as_floats(churn: Any, serve: Any) -> None:
    model, _ = churn
    row = {"age": 2**63, "income": 50.0, "plan": "pro"}  # orjson gives a Python int numpy cannot hold as int64
    r = serve("model:churn/1").post("/predict", json=[row])
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == model.predict(pd.DataFrame([{**row, "age": float(2**63)}])).tolist()


def test_azure_score_py_model_served_through_the_same_routes(client: Client, serve: Any, tmp_path: Any) -> None:

    folder = tmp_path / "scorer"
    folder.mkdir()
    (folder / "score.py").write_text(
        "FACTOR = None\n\ndef init():\n    global FACTOR\n    FACTOR = 2\n\n"
        "def run(data):\n    return (data['a'] * FACTOR + data['b'].str.len()).tolist()\n"
    )
    version = mloop.register_model(folder, "scorer")
    assert version.flavor == "script" and not version.signature  # no signature: the DataFrame of what was sent
    tc = serve("model:scorer/1")
    r = tc.post("/predict", json=[{"a": 1, "b": "xy"}, {"a": 5, "b": ""}])
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [4, 10], "model": "model:scorer/1"}
    assert tc.post("/invocations", json={"inputs": {"a": [3], "b": ["abc"]}}).json()["predictions"] == [9]
    err = tc.post("/invocations", json={"instances": [[1, "x"]]})  # positional rows need a signature's names
    assert err.status_code == 422 and err.json()["error"]["field"] == "instances"
    err = tc.post("/predict", json=[{"a": 1}])  # run() looks up 'b': a KeyError is the model refusing the input
    assert err.status_code == 422 and "refused the input" in err.json()["error"]["message"], err.text


def test_named_numeric_model_gets_a_frame_over_one_float_matrix(client: Client, serve: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    x = pd.DataFrame({"n": rng.integers(0, 10, 80), "f": rng.normal(size=80)})
    model = LogisticRegression().fit(x, (x["n"] + x["f"] > 5).astype(int))
    with mloop.start_run("named") as run:
        run.log_model(model, "named", signature_data=x)
    tc = serve("model:named/1")
    schema = tc.app.state.schema
    assert schema.named_matrix and not schema.numeric_matrix  # fitted with feature names: a frame, not an array
    rows = x.head(7).to_dict(orient="records")
    r = tc.post("/predict?proba=true", json=rows)  # a bare array would warn (warnings are errors in the tests)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["probabilities"], model.predict_proba(x.head(7)))
