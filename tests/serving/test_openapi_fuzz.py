"""Schemathesis against the scoring server's own OpenAPI document, in process (ASGI, no socket).

Its engine runs the phases its CLI runs: the document's examples, coverage (boundary values, each required
field missing, each type wrong, undeclared methods) and fuzzing (schema-valid and schema-invalid requests) for
every operation. Every default check applies: no 500, status codes, content types, headers and bodies as
documented, schema-invalid data refused with a 4xx, 405 with ``Allow`` for undeclared methods. Only
``positive_data_acceptance`` is off: a schema-valid row may hold a category the model's encoder never saw, or
columns of unequal lengths (JSON Schema cannot say "same length"), and the server rightly answers 422.

Deterministic (fixed seed, derandomized) and bounded (examples per operation in the fuzzing phase).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events
from schemathesis.python.asgi import shutdown_lifespans

import mloop
from mloop.serving import create_app
from mloop.tracking.client import Client


def _config(examples: int) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": 20261203,
        "generation": {"max-examples": examples, "deterministic": True},
        "phases": {"stateful": {"enabled": False}},  # no links between operations: nothing to chain
        "checks": {"positive_data_acceptance": {"enabled": False}},
    })  # fmt: skip


@pytest.fixture
def nosig(client: Client) -> Any:
    """A registered classifier fitted on a bare array and logged without a signature: model:nosig/1."""
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(2).normal(size=(60, 2))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    with mloop.start_run("nosig") as run:
        run.log_model(model, "nosig")
    return model, x


# (model, fuzzing examples per operation): a pipeline on int, float and string columns (a DataFrame per
# request), a model on numbers only (one float array), and one without a signature (what was sent)
@pytest.fixture(params=[("churn", 25), ("matrix", 15), ("nosig", 10)], ids=lambda p: str(p[0]))
def api(request: pytest.FixtureRequest, client: Client) -> Iterator[Any]:
    """A loaded app and its document, loaded by schemathesis from GET /openapi.json."""
    name, examples = request.param
    request.getfixturevalue(name)  # registers model:<name>/1
    app = create_app(f"model:{name}/1", client)
    app.state.load()
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(examples))
    shutdown_lifespans()


# Extreme finite inputs (1e308) overflow inside the estimator: numpy warns and the answer holds null (a
# non-finite float), as in production; the suite's warnings-as-errors would otherwise turn that into a 500.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_every_operation_conforms_and_never_500s(api: Any) -> None:
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = {}
    phases: dict[str, str] = {}
    for event in schemathesis.engine.from_schema(api).execute():
        if isinstance(event, events.ScenarioFinished):
            rec = event.recorder
            for interaction in rec.interactions.values():
                if interaction.response is not None:
                    statuses.setdefault(rec.label, Counter())[interaction.response.status_code] += 1
            for checks in rec.checks.values():
                for check in checks:
                    if (info := check.failure_info) is not None:
                        failures.append(f"{event.phase.name} {rec.label} {check.name}: {info.failure.title}\n"
                                        f"{info.code_sample}")  # fmt: skip
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"engine error: {event}")
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name] = event.status.name
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    examples = "examples" in api.raw_schema["components"]["schemas"]["Row"]  # none without a signature
    assert (phases["examples"], phases["coverage"], phases["fuzzing"]) == (
        "SUCCESS" if examples else "SKIP", "SUCCESS", "SUCCESS"), phases  # fmt: skip
    assert len(statuses) >= 14, sorted(statuses)  # every documented operation but the document itself
    scoring = ["POST /predict", "POST /invocations"]
    if examples:  # with a signature the document narrows V2 inputs to valid tensors; without, they are random
        scoring.append("POST /v2/models/{name}/versions/{version}/infer")
    for label in scoring:
        seen = statuses[label]  # reached past validation (200) as well as refused (4xx)
        assert seen[200] and sum(n for code, n in seen.items() if 400 <= code < 500), (label, seen)


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


def test_invocations_refuses_what_mlflow_refuses_and_v2_405_names_the_allowed_methods(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1")
    row = [61, 55.0, "pro"]
    split = {"columns": ["age", "income", "plan"], "data": [row]}
    assert tc.post("/invocations", json={"dataframe_split": {**split, "index": ["a"]}, "params": {}}).status_code == 200
    for body, status, field in [
        ({"dataframe_split": split, "params": [1]}, 400, "params"),  # params is an object
        ({"dataframe_split": {**split, "orient": "split"}}, 422, "dataframe_split.orient"),  # an unknown key
        ({"dataframe_split": {**split, "index": {}}}, 422, "dataframe_split.index"),  # not an array
        ({"dataframe_split": {**split, "index": [1, 2]}}, 422, "dataframe_split.index"),  # not one label per row
    ]:
        r = tc.post("/invocations", json=body)
        assert (r.status_code, r.json()["error"]["field"]) == (status, field), (body, r.text)
    r = tc.request("PUT", "/v2/models/churn/infer")
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
    assert "use POST" in r.json()["error"]
    r = tc.request("DELETE", "/v2/health/live")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")


def test_a_model_without_signature_or_feature_names_gets_an_array(nosig: Any, serve: Any) -> None:
    """Rows as objects or arrays reach a model fitted on a bare array as one array in the order sent (was: a
    DataFrame with names it was not fitted with, a 500 under warnings-as-errors; arrays were refused), and a
    cell that is not a scalar is a 422 naming it (was: a 500 from pandas)."""
    model, x = nosig
    tc = serve("model:nosig/1")
    expected = model.predict(x[:2]).tolist()
    for body in (x[:2].tolist(), [{"a": a, "b": b} for a, b in x[:2].tolist()], {"a": x[:2, 0].tolist(),
                                                                                  "b": x[:2, 1].tolist()}):  # fmt: skip
        r = tc.post("/predict", json=body)
        assert (r.status_code, r.json().get("predictions")) == (200, expected), (body, r.text)
    r = tc.post("/predict", json=[[1.0, 2.0], [1.0]])
    assert (r.status_code, r.json()["error"]["field"]) == (422, "body[1]")
    r = tc.post("/invocations", json={"inputs": {"a": [1.0], "b": [[1, 2]]}})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "b")
    assert "row 0, column 'b'" in r.json()["error"]["message"]
