"""Evaluation inputs: array-likes checked into numpy arrays, and labels encoded as class indices.

Every evaluation function starts here. Malformed input (length mismatch, empty arrays, NaN values or labels,
labels of types that cannot be compared, an unknown ``positive`` class) raises
:class:`~mloop.errors.InvalidInput` with a message naming the argument and the fix. The label conventions
(sorted union unless ``labels`` is given, the default positive class) are those of
:mod:`mloop.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from mloop.errors import InvalidInput

__all__ = [
    "FloatArray",
    "IntArray",
    "as_array",
    "as_float_array",
    "check_lengths",
    "encode_classes",
    "encode_labels",
    "resolve_positive",
    "unique_labels",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def as_array(name: str, values: Any, *, ndim: int = 1) -> np.ndarray[Any, Any]:
    """``values`` as a non-empty numpy array of ``ndim`` dimensions (a single column counts as 1-D)."""
    arr = np.asarray(values)
    if arr.ndim == 2 and ndim == 1 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != ndim:
        raise InvalidInput(f"{name} must be {ndim}-dimensional; got an array of shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise InvalidInput(f"{name} is empty; evaluation needs at least one row.")
    return arr


def check_lengths(**arrays: np.ndarray[Any, Any]) -> int:
    """The common row count, or InvalidInput naming the arrays that disagree."""
    (first, ref), *rest = arrays.items()
    for name, arr in rest:
        if arr.shape[0] != ref.shape[0]:
            raise InvalidInput(
                f"{name} has {arr.shape[0]} rows but {first} has {ref.shape[0]}; "
                "pass predictions for exactly the rows of y_true, in the same order."
            )
    return int(ref.shape[0])


def as_float_array(name: str, values: Any, *, ndim: int = 1) -> FloatArray:
    """A finite float64 array, or InvalidInput naming the first bad row."""
    arr = as_array(name, values, ndim=ndim)
    if arr.dtype.kind not in "biuf":
        raise InvalidInput(f"{name} must be numeric; got dtype {arr.dtype}. Pass numbers, not labels or text.")
    out = arr.astype(np.float64, copy=False)
    finite = np.isfinite(out)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(out.shape[0], -1).all(axis=1))
        raise InvalidInput(
            f"{name} has {bad.size} row(s) with NaN or infinite values (first at row {int(bad[0])}); "
            "drop or impute them before evaluating."
        )
    return out


def unique_labels(name: str, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The distinct values of ``arr``, sorted; InvalidInput for NaN labels or labels that cannot be ordered."""
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise InvalidInput(f"{name} contains NaN labels (first at row {int(np.argmax(np.isnan(arr)))}); drop them.")
    if arr.dtype.kind in "biu":
        ints = arr.astype(np.int64, copy=False)
        lo, hi = int(ints.min()), int(ints.max())
        if hi - lo < 1 << 20:  # bincount is O(n); np.unique sorts
            present = np.flatnonzero(np.bincount(ints - lo, minlength=hi - lo + 1)) + lo
            return present.astype(arr.dtype)
    try:
        return np.unique(arr)
    except TypeError as exc:
        raise InvalidInput(f"{name} mixes label types that cannot be ordered ({exc}); use one type.") from exc


def encode_labels(
    arrays: Mapping[str, np.ndarray[Any, Any]], labels: Any = None, *, extra: Any = None
) -> tuple[dict[str, IntArray], np.ndarray[Any, Any]]:
    """Map each array's values to indices into the label list (given, or the sorted union plus ``extra``)."""
    if labels is None:
        parts = [unique_labels(name, arr) for name, arr in arrays.items()]
        if extra is not None:
            parts.append(np.asarray([extra]))
        try:
            uniq = np.unique(np.concatenate(parts))
        except (TypeError, ValueError) as exc:
            kinds = ", ".join(f"{n}: {a.dtype}" for n, a in arrays.items())
            raise InvalidInput(f"Labels of different types cannot be compared ({kinds}); use one type.") from exc
    else:
        uniq = np.asarray(labels)
        if uniq.ndim != 1 or uniq.size == 0 or unique_labels("labels", uniq).size != uniq.size:
            raise InvalidInput(f"labels must be a non-empty list of distinct values; got {uniq.tolist()!r}.")
    order = np.argsort(uniq, kind="stable")
    ordered = uniq[order]
    codes: dict[str, IntArray] = {}
    for name, arr in arrays.items():
        try:
            pos = np.minimum(np.searchsorted(ordered, arr), ordered.size - 1)
            ok = ordered[pos] == arr
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{name} ({arr.dtype}) cannot be compared with labels ({uniq.dtype}).") from exc
        if not np.all(ok):
            bad = unique_labels(name, arr[~ok])[:5].tolist()
            raise InvalidInput(
                f"{name} has values {bad} that are not in labels {uniq.tolist()[:20]}; "
                "add them to labels or drop those rows."
            )
        codes[name] = order[pos]
    return codes, uniq


def encode_classes(
    arrays: Mapping[str, np.ndarray[Any, Any]], labels: Any, positive: Any
) -> tuple[dict[str, IntArray], np.ndarray[Any, Any]]:
    """:func:`encode_labels` for classification: ``positive`` joins inferred labels, and when only 0 (or
    False) occurs the absent positive class 1 (True) is added, as scikit-learn's ``pos_label=1`` implies."""
    codes, labs = encode_labels(arrays, labels, extra=positive)
    if labels is None and positive is None and labs.size == 1 and labs.dtype.kind in "biuf" and labs[0] == 0:
        codes, labs = encode_labels(arrays, extra=labs.dtype.type(1))
    return codes, labs


def resolve_positive(labels: np.ndarray[Any, Any], positive: Any, warnings: list[str]) -> int:
    """Index of the positive class in ``labels`` (the default is in :mod:`mloop.evaluation.metrics`)."""
    names = labels.tolist()
    if positive is not None:
        matches = np.flatnonzero(labels == positive)
        if matches.size == 0:
            raise InvalidInput(f"positive={positive!r} is not one of the labels {names[:20]}; pick one of them.")
        return int(matches[0])
    if labels.dtype.kind in "OUS" and len(names) == 2:
        warnings.append(f"positive class not given; assumed {names[-1]!r} (the last label); pass positive=...")
    return len(names) - 1
