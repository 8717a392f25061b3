"""The scoring server's OpenAPI document: valid OpenAPI 3.1, generated from the signature, listing what the app
routes, and its examples answered as documented."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

import mloop
from mloop.errors import InvalidInput
from mloop.serving.openapi import openapi_document
from mloop.tracking.client import Client


def _validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A JSON Schema validator for ``components.schemas[name]`` (its ``$ref``s resolved inside the document)."""
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def _response_schema(doc: dict[str, Any], path: str, method: str = "post", status: str = "200") -> str:
    ref = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    return str(ref.rsplit("/", 1)[1])


def test_the_document_is_valid_openapi_31_and_follows_the_signature(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1")
    r = tc.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    OpenAPIV31SpecValidator(doc).validate()  # raises naming the first error
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "mloop scoring server: model:churn/1"
    row = doc["components"]["schemas"]["Row"]
    assert row["required"] == ["age", "income", "plan"]
    assert row["additionalProperties"] is False
    assert row["properties"]["age"]["type"] == "number"  # no gaps in training: null is not allowed
    assert sorted(row["properties"]["plan"]["examples"]) == ["basic", "pro"]  # the signature's categories
    assert {"/predict", "/invocations", "/health/live", "/health/ready", "/metrics", "/openapi.json", "/v2",
            "/v2/models/{name}/versions/{version}/infer"} <= doc["paths"].keys()  # fmt: skip
    predict = doc["paths"]["/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert set(predict["responses"]) == {"200", "400", "413", "422", "500", "503"}
    assert "Retry-After" in predict["responses"]["503"]["headers"]
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["parameters"][0]["schema"] == {"enum": ["churn"]}
    assert set(infer["responses"]) == {"200", "400", "404", "413", "500", "503"}
    assert doc["components"]["schemas"]["V2RequestOutput"]["properties"]["name"]["enum"] == ["predict", "predict_proba"]
    error = _validator(doc, "Error")
    assert error.is_valid({"error": {"message": "m", "field": "age", "expected": "a number", "got": "string"}})
    assert not error.is_valid({"error": "a V2 error is a string"})
    assert tc.get("/openapi.json").content == r.content  # built once, then served as is


def test_every_documented_example_is_answered_as_documented(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1")
    doc = tc.get("/openapi.json").json()
    seen = 0
    for path, item in doc["paths"].items():
        body = item.get("post", {}).get("requestBody")
        if body is None:
            continue
        url = path.replace("{name}", "churn").replace("{version}", "1")
        for media, content in body["content"].items():
            if "example" not in content:
                continue
            seen += 1
            example = content["example"]
            if media == "application/json":
                assert _validator(doc, content["schema"]["$ref"].rsplit("/", 1)[1]).is_valid(example), (path, example)
                r = tc.post(url, json=example)
            else:
                r = tc.post(url, content=example.encode(), headers={"content-type": media})
            assert r.status_code == 200, (path, media, r.text)
            _validator(doc, _response_schema(doc, path)).validate(r.json())
    assert seen == 5  # /predict and /invocations (JSON and CSV), V2 infer


def test_the_request_schemas_refuse_what_the_server_refuses(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1")
    doc = tc.get("/openapi.json").json()
    predict = _validator(doc, "PredictRequest")
    good = {"age": 40, "income": 50.0, "plan": "pro"}
    bad = [{**good, "age": "40"}, {"age": 40, "income": 50.0}, {**good, "extra": 1}, {**good, "income": None}, []]
    assert predict.is_valid(good)
    assert predict.is_valid({"inputs": [good], "proba": True})
    assert predict.is_valid({k: [v, v] for k, v in good.items()})
    for body in bad:
        assert not predict.is_valid(body), body
        assert tc.post("/predict", json=body).status_code == 422, body
    invocations = _validator(doc, "InvocationsRequest")
    assert invocations.is_valid({"dataframe_split": {"columns": ["age", "income", "plan"], "data": [[40, 5.0, "x"]]}})
    for body in ({"instances": [good], "inputs": [good]}, {"dataframe_records": [good], "extra": 1}, {}):
        assert not invocations.is_valid(body), body
        assert tc.post("/invocations", json=body).status_code == 400, body


def test_nullable_and_boolean_columns_and_the_numeric_matrix(client: Client, matrix: Any, serve: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    x = pd.DataFrame({"score": [1.0, np.nan, 3.0, 4.0], "flag": [True, False, True, False]})
    model = DecisionTreeClassifier().fit(x.fillna(0), [0, 1, 0, 1])
    with mloop.start_run("gaps") as run:
        run.log_model(model, "gaps", signature_data=x)
    doc = serve("model:gaps/1").get("/openapi.json").json()
    OpenAPIV31SpecValidator(doc).validate()
    props = doc["components"]["schemas"]["Row"]["properties"]
    assert props["score"]["type"] == ["number", "null"]  # training had a gap
    assert props["flag"]["type"] == "boolean"
    infer_cols = doc["components"]["schemas"]["V2InferRequest"]["properties"]["inputs"]["anyOf"][0]["prefixItems"]
    assert [t["properties"]["datatype"]["enum"] for t in infer_cols][1] == ["BOOL"]
    doc = serve("model:matrix/1").get("/openapi.json").json()  # fitted on a bare array: columns "0", "1", "2"
    OpenAPIV31SpecValidator(doc).validate()
    assert doc["components"]["schemas"]["RowArray"]["minItems"] == 3
    assert doc["components"]["schemas"]["Predictions"]["properties"]["predictions"]["items"] == {"type": "integer"}


def test_only_routed_paths_are_listed_and_nothing_before_loading(churn: Any, serve: Any, client: Client) -> None:
    from mloop.serving import create_app

    tc = serve("model:churn/1", started=False)
    r = tc.get("/openapi.json")
    assert r.status_code == 503
    assert "not loaded yet" in r.json()["error"]["message"]
    app = create_app("model:churn/1", client)
    with pytest.raises(InvalidInput, match="not loaded"):
        openapi_document(app.state)
    app.state.load()
    doc = openapi_document(app.state, {"/predict", "/v2/models/{name}/infer"}, csv=False)
    assert set(doc["paths"]) == {"/predict", "/v2/models/{name}/infer"}
    assert set(doc["paths"]["/predict"]["post"]["requestBody"]["content"]) == {"application/json"}
    OpenAPIV31SpecValidator(doc).validate()


def test_413_503_and_404_answers_match_the_documented_error_schemas(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1", max_body_bytes=200)
    doc = tc.get("/openapi.json").json()
    big = [{"age": 40, "income": 50.0, "plan": "pro"}] * 20
    cases = [
        ("/predict", big, 413),
        ("/invocations", {"instances": big}, 413),
        ("/v2/models/churn/infer", {"inputs": big}, 413),
        ("/v2/models/other/infer", {"inputs": []}, 404),
    ]
    for url, body, status in cases:
        r = tc.post(url, json=body)
        assert r.status_code == status, (url, r.text)
        path = "/v2/models/{name}/infer" if url.startswith("/v2") else url
        _validator(doc, _response_schema(doc, path, status=str(status))).validate(r.json())
    loading = serve("model:churn/1", started=False)
    for url, body in (("/predict", [big[0]]), ("/v2/models/churn/infer", {"inputs": []})):
        r = loading.post(url, json=body)
        assert r.status_code == 503, (url, r.text)
        path = "/v2/models/{name}/infer" if url.startswith("/v2") else url
        _validator(doc, _response_schema(doc, path, status="503")).validate(r.json())
    r = loading.get("/health/ready")  # its own body: {"status": "loading", "model"}
    assert r.status_code == 503
    assert jsonschema.Draft202012Validator(
        doc["paths"]["/health/ready"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    ).is_valid(r.json())
