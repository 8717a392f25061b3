"""How a batch reaches the model: the functions the batcher calls for ``predict`` and ``predict_proba``.

A scikit-learn model fitted on a DataFrame of number columns is the common case, and per-request DataFrames are
its main cost: scikit-learn validates a DataFrame's feature names through narwhals on every call (≈ 0.5 ms
against ≈ 0.1 ms for a float array, whatever the row count). So requests to such a model stay bare float
matrices in signature order through the batcher and are stacked into one matrix per batch; then

- a single estimator (not a Pipeline, ColumnTransformer, FeatureUnion or ensemble of estimators) whose
  ``feature_names_in_`` are the signature's columns in order takes the matrix itself: that is exactly the
  array scikit-learn would make of the DataFrame, and its "X does not have valid feature names" warning is
  silenced knowingly. At load the two paths must agree on probe rows, or the DataFrame path is kept;
- any other model gets one DataFrame per batch, not one per request.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.flavors import LoadedModel
    from mloop.serving.schema import Schema

__all__ = ["ModelCalls", "model_calls"]

Call = Callable[[Any], Any]
_COMPOSITE = ("steps", "transformers", "transformer_list", "estimators")
_NO_NAMES = "X does not have valid feature names"


class ModelCalls:
    """``predict`` and ``predict_proba`` (``None`` without it) as the batcher calls them; ``path`` says which
    input they take: ``as-is``, ``matrix`` (a named model given its float matrix) or ``frame-per-batch``."""

    def __init__(self, predict: Call, proba: Call | None, path: str) -> None:
        self.predict = predict
        self.proba = proba
        self.path = path


def model_calls(model: LoadedModel, schema: Schema) -> ModelCalls:
    """The calls for ``model``; sets ``schema.frames`` off when requests should stay float matrices."""
    proba = model.predict_proba if model.has_proba else None
    if model.flavor != "sklearn" or not schema.named_matrix:
        return ModelCalls(model.predict, proba, "as-is")
    schema.frames = False
    if _takes_the_matrix(model, schema):
        return ModelCalls(_quiet(model.predict), None if proba is None else _quiet(proba), "matrix")
    return ModelCalls(_framed(model.predict, schema), None if proba is None else _framed(proba, schema),
                      "frame-per-batch")  # fmt: skip


def _quiet(fn: Call) -> Call:
    def call(matrix: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_NAMES, category=UserWarning)
            return fn(matrix)

    return call


def _framed(fn: Call, schema: Schema) -> Call:
    def call(matrix: Any) -> Any:
        return fn(schema.framed(matrix))

    return call


def _takes_the_matrix(model: LoadedModel, schema: Schema) -> bool:
    import numpy as np

    raw = model.raw
    names = getattr(raw, "feature_names_in_", None)
    if names is None or [str(n) for n in names] != list(schema.names):
        return False
    if any(hasattr(raw, attr) for attr in _COMPOSITE):
        return False
    rng = np.random.default_rng(0)
    probes = np.vstack([np.zeros(len(schema.names)), rng.normal(size=(7, len(schema.names))) * 10])
    fns = [model.predict] + ([model.predict_proba] if model.has_proba else [])
    try:
        for fn in fns:
            if not np.array_equal(np.asarray(_quiet(fn)(probes)), np.asarray(fn(schema.framed(probes)))):
                return False
    except Exception:  # the model refuses a bare matrix (or the probes): keep the DataFrame path
        return False
    return True
