"""Materialisers: each type round-trips through bytes; the pickle fallback is flagged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mloop.errors import InvalidInput
from mloop.pipelines.materialisers import dumps, loads


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


@pytest.mark.parametrize(
    ("value", "name"),
    [(b"\x00raw", "bytes"), ("text é", "str"), ({"a": [1, 2.5, None, True]}, "json"), (3, "json"),
     ((1, 2), "pickle")],  # a tuple would come back as a list through JSON: pickled instead
)  # fmt: skip
def test_plain_values_round_trip(value: Any, name: str) -> None:
    data, m = dumps(value)
    assert m.name == name and loads(data, m.name) == value
    assert m.fallback is (name == "pickle")


def test_numpy_pandas_arrow_and_sklearn() -> None:
    arr = np.arange(6, dtype="float32").reshape(2, 3)
    data, m = dumps(arr)
    assert m.name == "numpy" and np.array_equal(loads(data, "numpy"), arr)
    assert dumps(np.array([object()]))[1].name == "pickle"  # object arrays are never read with allow_pickle
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    data, m = dumps(frame)
    assert m.name == "pandas" and data[:4] == b"PAR1"
    pd.testing.assert_frame_equal(loads(data, "pandas"), frame)
    table = pa.table({"a": [1, 2]})
    data, m = dumps(table)
    assert m.name == "arrow" and loads(data, "arrow").equals(table)
    model = LogisticRegression(C=0.5)
    data, m = dumps(model)
    assert m.name == "sklearn" and not m.fallback and loads(data, "sklearn").C == 0.5


def test_pickle_fallback_and_unstorable_values() -> None:
    data, m = dumps(Point(3))
    assert m.name == "pickle" and m.fallback and loads(data, "pickle").x == 3
    with pytest.raises(InvalidInput, match="cannot be stored"):
        dumps(lambda: 1)
    with pytest.raises(InvalidInput, match="Unknown materialiser"):
        loads(b"", "nope")
