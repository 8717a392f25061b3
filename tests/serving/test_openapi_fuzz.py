"""Schemathesis against the scoring server's own OpenAPI document, in process (ASGI): every documented operation
gets schema-valid (positive) and schema-invalid (negative) requests; no answer is a 500, every status code,
content type, header and body is the one documented, and what the document forbids is refused with a 4xx.

Derandomized and bounded (``EXAMPLES`` per operation and mode) so a run is deterministic and takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mloop.serving import create_app
from mloop.tracking.client import Client

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(params=["churn", "matrix"])
def api(request: pytest.FixtureRequest, client: Client) -> Iterator[Any]:
    """A loaded app and its document, loaded by schemathesis from GET /openapi.json: the churn pipeline (int,
    float and string columns: a DataFrame per request) or the matrix model (numbers only: one float array)."""
    request.getfixturevalue(request.param)  # registers model:<name>/1
    app = create_app(f"model:{request.param}/1", client)
    app.state.load()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield schema
    shutdown_lifespans()


def _fuzz(operation: Any, mode: GenerationMode, statuses: list[int], examples: int) -> None:
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        statuses.append(case.call_and_validate(checks=CHECKS).status_code)

    check()


# Extreme finite inputs (1e308) overflow inside the estimator: numpy warns and the answer holds null (a
# non-finite float), as in production; the suite's warnings-as-errors would otherwise turn that into a 500.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_every_operation_conforms_and_never_500s(api: Any) -> None:
    statuses: dict[str, list[int]] = {}
    for result in api.get_all_operations():
        operation = result.ok()
        statuses[operation.label] = []
        scoring = operation.method.upper() == "POST"
        examples = EXAMPLES if scoring or "churn" in api.raw_schema["info"]["title"] else EXAMPLES // 5
        negatable = scoring or "{" in operation.path  # a body or path parameters
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negatable else (GenerationMode.POSITIVE,):
            _fuzz(operation, mode, statuses[operation.label], examples)
    # every route was fuzzed, and the scoring routes were reached past validation (a 200) as well as refused
    assert {"POST /predict", "POST /invocations", "GET /health/ready", "GET /v2/models/{name}"} <= statuses.keys()
    for label in ("POST /predict", "POST /invocations", "POST /v2/models/{name}/versions/{version}/infer"):
        assert 200 in statuses[label], (label, statuses[label])
        assert any(400 <= s < 500 for s in statuses[label]), (label, statuses[label])


# What the fuzzing found, pinned as plain tests


def test_v2_column_tensors_for_a_model_fitted_without_feature_names(matrix: Any, serve: Any) -> None:
    """One tensor per column for a model fitted on a bare array: it gets a 2-D array, not a DataFrame with names
    it was not fitted with (sklearn's UserWarning, a 500 under warnings-as-errors, a log line per request)."""
    model, x = matrix
    tc = serve("model:matrix/1")
    inputs = [{"name": str(j), "shape": [2], "datatype": "FP64", "data": x[:2, j].tolist()} for j in range(3)]
    r = tc.post("/v2/models/matrix/infer", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == model.predict(x[:2]).tolist()
