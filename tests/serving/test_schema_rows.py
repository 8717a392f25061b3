"""Rows of plain numbers take a short path to one float matrix; anything else still gets the checked path's
error naming the field. Both must give the model the same input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.serving.schema import RequestError, Schema

SIGNATURE = {"inputs": [{"name": "a", "type": "int64"}, {"name": "b", "type": "float64"},
                        {"name": "c", "type": "float64", "missing": 1}]}  # fmt: skip


@pytest.mark.parametrize("names_needed", [False, True])
def test_plain_number_rows_match_the_checked_path(names_needed: bool) -> None:
    schema = Schema(SIGNATURE, names_needed=names_needed)
    rows: list[Any] = [[1, 2.5, 3], [2**63, -1.0, 0.25]]
    fast = schema.from_records(rows)
    slow = schema.from_columns({n: [r[j] for r in rows] for j, n in enumerate(schema.names)})
    as_objects = schema.from_records([dict(zip(schema.names, r, strict=True)) for r in rows])
    if names_needed:
        assert isinstance(fast, pd.DataFrame) and list(fast.columns) == ["a", "b", "c"]
        pd.testing.assert_frame_equal(fast, slow)
        pd.testing.assert_frame_equal(as_objects, slow)
    else:
        assert isinstance(fast, np.ndarray) and fast.dtype == np.float64
        np.testing.assert_array_equal(fast, slow)
        np.testing.assert_array_equal(as_objects, slow)


@pytest.mark.parametrize(
    ("rows", "field", "got"),
    [
        ([[1, True, 3.0]], "b", "boolean True"),
        ([[1, "2", 3.0]], "b", "string '2'"),
        ([[None, 2.0, 3.0]], "a", "null"),
        ([{"a": 1, "b": 2.0}], "c", "missing"),
        ([{"a": 1, "b": 2.0, "c": 1.0, "d": 0}], "d", "present"),
        ([[1, 2.0]], "records[0]", "2 values"),
    ],
)
def test_anything_but_plain_numbers_gets_the_checked_error(rows: list[Any], field: str, got: str) -> None:
    schema = Schema(SIGNATURE, names_needed=False)
    with pytest.raises(RequestError) as info:
        schema.from_records(rows)
    assert info.value.field == field and got in str(info.value.got)


def test_null_where_allowed_still_becomes_nan() -> None:
    out = Schema(SIGNATURE, names_needed=False).from_records([[1, 2.0, None]])
    assert np.isnan(out[0, 2]) and out[0, 0] == 1.0
