"""Window columns as numpy: values with a mask of present rows, class-probability matrices, class lists.

The performance signals (:mod:`.performance`, :mod:`.estimation`) read the columns a window holds in whatever
form it has them: pyarrow (Chunked)Arrays straight from the collector's Parquet (nulls are read with pyarrow's
vectorised validity, not row by row), pandas Series, numpy arrays or lists. Each helper returns a numpy array
plus a boolean mask of the rows that are present (not null, not NaN): nothing here drops rows, so masks from
several columns can be combined before any row is taken out.

Probabilities are a ``list<double>`` per row (the collector's ``probabilities``, in the order of the model's
classes), a 2-D array, or a 1-D column holding the positive-class probability of a binary model (turned into
two columns ``[1 - p, p]``).

:func:`tie_groups` and :func:`placements` are the one sort and the ROC placement values (how much negative
weight lies below each row, positive weight above it) that both DeLong's variance of a realised ROC AUC and
the expected ROC AUC of :mod:`.estimation` are made of.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import FloatArray, IntArray, encode_labels

__all__ = [
    "BoolArray",
    "Ranking",
    "align_labels",
    "as_column",
    "class_inputs",
    "placements",
    "predicted_labels",
    "probability_matrix",
    "resolve_classes",
    "tie_groups",
]

BoolArray = npt.NDArray[np.bool_]


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


def _check_rows(name: str, got: int, rows: int | None) -> None:
    if rows is not None and got != rows:
        raise InvalidInput(
            f"{name} has {got} rows but ground_truth has {rows}; pass the window's columns row for row, in order."
        )


def as_column(name: str, values: Any, *, rows: int | None = None) -> tuple[np.ndarray[Any, Any], BoolArray]:
    """``values`` as a 1-D numpy array and the mask of present rows (not null, not NaN)."""
    if _is_arrow(values):
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        present = values.is_valid()
        if pa.types.is_floating(values.type):
            present = pc.and_(present, pc.invert(pc.fill_null(pc.is_nan(values), True)))
        mask = np.asarray(present.to_numpy(zero_copy_only=False), dtype=bool)
        arr = np.asarray(values.to_numpy(zero_copy_only=False))
    elif hasattr(values, "isna") and hasattr(values, "to_numpy"):  # pandas
        mask = ~np.asarray(values.isna().to_numpy(), dtype=bool)
        arr = np.asarray(values.to_numpy())
    else:
        arr = np.asarray(values)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.dtype.kind == "f":
            mask = ~np.isnan(arr)
        elif arr.dtype.kind == "O":
            import pandas as pd

            mask = ~np.asarray(pd.isna(arr), dtype=bool)
        else:
            mask = np.ones(arr.shape[:1], dtype=bool)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one value per row (1-D); got an array of shape {arr.shape}.")
    _check_rows(name, arr.shape[0], rows)
    if arr.dtype.kind == "O" and mask.any():  # present values of one Python type get a numpy dtype
        typed = np.asarray(arr[mask].tolist())
        if typed.ndim == 1 and typed.dtype.kind != "O":
            out = np.empty(arr.shape[0], dtype=typed.dtype)
            out[mask] = typed
            if not mask.all():
                out[~mask] = typed[0]  # filler, masked out
            arr = out
    return arr, mask


def probability_matrix(
    values: Any, *, rows: int | None = None, width: int | None = None
) -> tuple[FloatArray, BoolArray]:
    """An ``(n, k)`` float matrix of class probabilities (absent rows are NaN) and the mask of present rows;
    ``width`` is ``k`` when no row is present (the number of classes; default 2)."""
    if _is_arrow(values):
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            mask = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            lengths = np.asarray(pc.list_value_length(values).to_numpy(zero_copy_only=False))[mask]
            flat = np.asarray(values.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
            return _fill(_one_width(lengths) or width, flat, mask, rows)
        if pa.types.is_fixed_size_list(values.type):
            values = values.cast(pa.list_(values.type.value_type))
            return probability_matrix(values, rows=rows, width=width)
        values = values.to_numpy(zero_copy_only=False)
    elif hasattr(values, "to_numpy"):
        values = values.to_numpy()
    arr = np.asarray(values) if not isinstance(values, list) else _from_list(values)
    if arr.dtype.kind == "O" and arr.ndim == 1:  # rows of lists, some None
        import pandas as pd

        mask = ~np.asarray(pd.isna(arr), dtype=bool)
        present = arr[mask]
        try:  # one C-level pass each (a list comprehension of arrays is 4x slower)
            lengths = np.fromiter(map(len, present), dtype=np.int64, count=present.size)
            flat = np.concatenate(present).astype(np.float64) if present.size else np.empty(0)
        except (TypeError, ValueError):
            try:  # numbers with nulls: a binary model's positive-class column
                column = np.full(arr.shape[0], np.nan)
                column[mask] = present.astype(np.float64)
            except (TypeError, ValueError):
                raise InvalidInput("probabilities must be one list of numbers per row (or null).") from None
            return probability_matrix(column, rows=rows, width=width)
        return _fill(_one_width(lengths) or width, flat, mask, rows)
    if arr.dtype.kind not in "biuf":
        raise InvalidInput(f"probabilities must be numbers; got dtype {arr.dtype}.")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1:  # the positive class of a binary model
        arr = np.column_stack((1.0 - arr, arr))
    if arr.ndim != 2:
        raise InvalidInput(f"probabilities must be one row of class probabilities per row; got shape {arr.shape}.")
    _check_rows("probabilities", arr.shape[0], rows)
    return arr, np.isfinite(arr).all(axis=1)


def _from_list(values: list[Any]) -> np.ndarray[Any, Any]:
    """A list of rows (lists or None): a 2-D float array when every row is present and of one width."""
    if values and all(v is not None for v in values):
        try:
            arr = np.asarray(values, dtype=np.float64)
            if arr.ndim in (1, 2):
                return arr
        except (TypeError, ValueError):
            pass
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _one_width(lengths: np.ndarray[Any, Any]) -> int:
    widths = np.unique(lengths)
    if widths.size > 1:
        raise InvalidInput(
            f"probabilities rows have different lengths {widths.tolist()[:5]}; a window must hold one model's "
            "outputs (split it by model version)."
        )
    return int(widths[0]) if widths.size else 0


def _fill(width: int | None, flat: FloatArray, mask: BoolArray, rows: int | None) -> tuple[FloatArray, BoolArray]:
    _check_rows("probabilities", mask.size, rows)
    out = np.full((mask.size, width or 2), np.nan)
    if mask.any():
        out[mask] = flat.reshape(-1, out.shape[1])
    return out, mask & np.isfinite(out).all(axis=1)


def resolve_classes(classes: Any, k: int | None, seen: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any] | None:
    """The class labels in probability-column order: ``classes`` as given, else the sorted labels seen when
    there are ``k`` of them (scikit-learn's ``classes_`` are sorted), else 0..k-1 for a binary 0/1 model."""
    if classes is not None:
        labs = np.asarray(classes)
        if labs.ndim != 1 or labs.size == 0 or np.unique(labs).size != labs.size:
            raise InvalidInput(f"classes must be a non-empty list of distinct labels; got {labs.tolist()!r}.")
        if k is not None and labs.size != k:
            raise InvalidInput(
                f"classes has {labs.size} labels {labs.tolist()[:20]} but probabilities have {k} columns; "
                "pass the model's classes_ in the order of its predict_proba columns."
            )
        return labs
    if k is None:
        return None
    parts = [np.asarray(s) for s in seen if np.asarray(s).size]
    try:
        union = np.unique(np.concatenate(parts)) if parts else np.empty(0)
    except (TypeError, ValueError):
        union = np.empty(0)
    if union.size == k:
        return union
    if k == 2 and union.dtype.kind in "biuf" and set(union.tolist()) <= {0, 1}:
        return np.array([0, 1], dtype=union.dtype if union.size else np.int64)
    raise InvalidInput(
        f"probabilities have {k} columns but the labels seen are {union.tolist()[:20]}; pass classes= (the "
        "model's classes_, in the order of its predict_proba columns)."
    )


def predicted_labels(proba: FloatArray, classes: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The label of each row's largest probability (the first on ties), as scikit-learn's ``predict``."""
    out: np.ndarray[Any, Any] = classes[np.argmax(proba, axis=1)]
    return out


def align_labels(truth: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    """Make ground truth and predictions comparable when one is text and the other numbers (feedback sent as
    ``"1"`` for a model predicting ``1``): the text side is read as numbers, or else the numbers become text.
    Integral floats (an integer column read with nulls) take the other side's integer type."""
    num_t, num_p = truth.dtype.kind in "biuf", pred.dtype.kind in "biuf"
    if num_t and num_p:  # 1.0 (a float column with nulls) is the label 1 of an integer model
        if truth.dtype.kind == "f" and pred.dtype.kind in "biu" and np.all(np.mod(truth, 1) == 0):
            truth = truth.astype(pred.dtype)
        elif pred.dtype.kind == "f" and truth.dtype.kind in "biu" and np.all(np.mod(pred, 1) == 0):
            pred = pred.astype(truth.dtype)
        return truth, pred
    if num_t == num_p:
        return truth, pred
    text, number = (pred, truth) if num_t else (truth, pred)
    try:
        parsed = text.astype(np.float64)
        if number.dtype.kind in "biu" and np.all(np.mod(parsed, 1) == 0):
            parsed = parsed.astype(number.dtype)
        text = parsed
    except (TypeError, ValueError):
        number = number.astype(str)
    return (number, text) if num_t else (text, number)


def class_inputs(
    probabilities: Any, prediction: Any, classes: Any, positive: Any, seen: list[np.ndarray[Any, Any]]
) -> tuple[FloatArray, IntArray, np.ndarray[Any, Any], list[int], np.ndarray[Any, Any]]:
    """A classifier's window for estimation: (probabilities, predicted class index of each row (the collected
    ``prediction`` where there is one, else the argmax), rows with probabilities, the classes evaluated (binary
    or ``positive`` given: the positive one; else all), the class labels)."""
    proba, ok = probability_matrix(probabilities, width=None if classes is None else len(classes))
    k = proba.shape[1]
    pred_vals = None
    if prediction is not None:
        pred_vals, pred_ok = as_column("prediction", prediction, rows=proba.shape[0])
        seen = [*seen, pred_vals[pred_ok & ok]]
    labs = resolve_classes(classes, k, seen)
    assert labs is not None  # k is known
    if k < 2:
        raise InvalidInput(f"estimation needs the probabilities of 2 classes or more; got {k} column(s).")
    p = proba[ok]
    if p.size and (p.min() < -1e-9 or p.max() > 1 + 1e-9):
        raise InvalidInput(
            f"probabilities must lie in [0, 1] (got {p.min():.4g} .. {p.max():.4g}): estimation needs "
            "predict_proba outputs, not decision scores."
        )
    codes = np.argmax(np.nan_to_num(proba, nan=0.0), axis=1)
    if pred_vals is not None and (given := pred_ok & ok).any():
        values, labs_aligned = align_labels(pred_vals[given], labs)
        coded, _ = encode_labels({"prediction": values}, labs_aligned)
        codes[given] = coded["prediction"]
    if k == 2 or positive is not None:
        if positive is None:
            pos = k - 1
        elif (hits := np.flatnonzero(labs == positive)).size:
            pos = int(hits[0])
        else:
            raise InvalidInput(f"positive={positive!r} is not one of the classes {labs.tolist()[:20]}.")
        return proba, codes, ok, [pos], labs
    return proba, codes, ok, list(range(k)), labs


Ranking = tuple[IntArray, IntArray, IntArray]  # rows sorted by score, where tie groups start, each one's group


def tie_groups(score: FloatArray) -> Ranking:
    """One sort of ``score``: the row order, the sorted positions where each group of equal scores starts, and
    each sorted row's group (empty when no two scores tie: :func:`placements` then takes a faster path)."""
    order = np.argsort(score)
    ordered = score[order]
    new = np.empty(ordered.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return order, starts, (np.cumsum(new) - 1 if starts.size < ordered.size else starts[:0])


def placements(ranking: Ranking, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ROC placements in sorted order for rows that are positive with weight ``w`` (0/1 labels, or
    probabilities): the negative weight scored below each row and the positive weight scored above it, ties
    counting half and a row never counting against itself. Their weighted sums are the Mann-Whitney U."""
    order, starts, group = ranking
    ws = w[order]
    if group.size == 0 and ws.size:  # no ties: every row is its own group
        neg = 1.0 - ws
        below = np.cumsum(neg)
        below -= neg
        above = np.cumsum(ws)
        np.subtract(above[-1], above, out=above)
        return below, above
    g1 = np.add.reduceat(ws, starts)
    g0 = np.diff(starts, append=ws.size) - g1
    below0 = (np.cumsum(g0) - g0)[group] + 0.5 * (g0[group] - (1.0 - ws))
    above1 = (g1.sum() - np.cumsum(g1))[group] + 0.5 * (g1[group] - ws)
    return below0, above1
