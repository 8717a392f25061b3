"""Fuzzing the native and MLflow routes with arbitrary JSON bodies: answers are 200 or a 4xx error body, never
a 500 (hypothesis drives one app loaded once)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COLUMNS = ("age", "income", "plan")
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
)  # fmt: skip
keys = st.one_of(st.sampled_from([*COLUMNS, "inputs", "proba", "instances", "dataframe_split", "columns", "data"]),
                 st.text(max_size=4))  # fmt: skip
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip
rows = st.lists(st.fixed_dictionaries(dict.fromkeys(COLUMNS, scalars)), max_size=3)  # near-valid bodies
bodies = st.one_of(
    json_values, rows, st.builds(lambda r: {"dataframe_records": r}, rows),
    st.builds(lambda r: {"inputs": r, "proba": True}, rows),
    st.builds(lambda d: {"dataframe_split": {"columns": list(COLUMNS), "data": d}},
              st.lists(st.lists(scalars, min_size=2, max_size=4), max_size=3)),
)  # fmt: skip


def test_no_body_makes_a_500(churn: Any, serve: Any) -> None:
    tc = serve("model:churn/1")

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies, route=st.sampled_from(["/predict", "/invocations", "/predict?proba=true"]))
    def check(body: Any, route: str) -> None:
        r = tc.post(route, content=orjson.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code in (200, 400, 413, 422), (route, body, r.status_code, r.text)
        if r.status_code != 200:
            assert r.json()["error"]["message"]

    check()
