"""Calibration for performance estimation: isotonic maps fitted on a labelled reference window.

:func:`fit_calibration` fits, on a labelled reference window (e.g. the holdout the model was evaluated on),
one isotonic regression (scikit-learn) per probability column (binary: the positive one; multiclass: each
one-vs-rest, then rows renormalised to sum to 1). **When it is used** (``mode="auto"``, the default): when the
reference holds at least 100 labelled rows with both outcomes and two tests agree. (1) The raw probabilities are
*not* consistent with calibration: their expected calibration error (ECE, 10 uniform bins, one-vs-rest mean)
exceeds the 95th percentile of the ECE that labels drawn from those very probabilities give (50 draws: the
sampling noise of a perfectly calibrated model at this reference size). (2) Calibrating helps: out-of-fold
calibrated probabilities (5-fold cross-validation) have a lower ECE than the raw ones. Otherwise the raw
probabilities are used and ``reason`` says why; ``always`` / ``never`` force the choice. Test (1) keeps a
calibrated model's probabilities untouched (an isotonic map fitted to noise would only add error; NannyML
applies test (2) alone). A fitted :class:`Calibration` is a plain value (step functions as
tuples, ``to_dict`` / ``from_dict``), so a monitor fits it once (when the monitor is created, from its reference)
and applies it to every window with ``numpy.interp``, exactly what scikit-learn's ``predict`` computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import FloatArray, IntArray
from mloop.evaluation.metrics import calibration_curve
from mloop.monitoring.columns import BoolArray, align_labels, as_column, class_inputs

__all__ = ["CALIBRATION_MODES", "MIN_REFERENCE_ROWS", "Calibration", "Steps", "fit_calibration"]

MIN_REFERENCE_ROWS = 100
CALIBRATION_MODES = ("auto", "always", "never")


Steps = tuple[tuple[float, ...], tuple[float, ...]]  # an isotonic step function: thresholds and values


@dataclass(frozen=True)
class Calibration:
    """Isotonic maps fitted on a labelled reference, one per probability column in ``columns`` (see the module
    docstring), and ``replicates``: the same maps refitted on bootstrap resamples of the reference, from which
    :func:`~mloop.monitoring.estimation.estimate_performance` measures how much the calibration's own error moves
    an estimate."""

    classes: tuple[Any, ...]
    columns: tuple[int, ...]
    maps: tuple[Steps, ...]
    replicates: tuple[tuple[Steps, ...], ...]
    used: bool
    reason: str
    ece_raw: float
    ece_calibrated: float
    reference_rows: int

    def apply(self, proba: FloatArray, replicate: int | None = None) -> FloatArray:
        """Calibrated probabilities (``proba`` itself when the calibration is not used); ``replicate`` picks a
        bootstrap refit instead of the map fitted on the whole reference."""
        if not self.used:
            return proba
        maps = self.maps if replicate is None else self.replicates[replicate]
        out = proba.copy()
        for c, (x, y) in zip(self.columns, maps, strict=True):
            out[:, c] = np.interp(proba[:, c], np.asarray(x), np.asarray(y))
        if len(self.columns) == 1 and proba.shape[1] == 2:
            c = self.columns[0]
            out[:, 1 - c] = 1.0 - out[:, c]
            return out
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), proba)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape (what a monitor stores); :meth:`from_dict` reads it back."""
        return {
            "classes": list(self.classes),
            "columns": list(self.columns),
            "maps": [[list(x), list(y)] for x, y in self.maps],
            "replicates": [[[list(x), list(y)] for x, y in maps] for maps in self.replicates],
            "used": self.used,
            "reason": self.reason,
            "ece_raw": self.ece_raw,
            "ece_calibrated": self.ece_calibrated,
            "reference_rows": self.reference_rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """The calibration :meth:`to_dict` described."""

        def steps(maps: Any) -> tuple[Steps, ...]:
            return tuple((tuple(float(v) for v in x), tuple(float(v) for v in y)) for x, y in maps)

        try:
            return cls(
                tuple(data["classes"]), tuple(int(c) for c in data["columns"]), steps(data["maps"]),
                tuple(steps(m) for m in data["replicates"]), bool(data["used"]), str(data["reason"]),
                float(data["ece_raw"]), float(data["ece_calibrated"]), int(data["reference_rows"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"Not a stored calibration ({exc!r}); write it with Calibration.to_dict().") from None


def fit_calibration(
    probabilities: Any,
    ground_truth: Any,
    *,
    classes: Any = None,
    positive: Any = None,
    mode: str = "auto",
    folds: int = 5,
    bins: int = 10,
    replicates: int = 10,
    seed: int = 0,
) -> Calibration:
    """Isotonic calibration fitted on a labelled reference; ``mode`` ``auto`` uses it only when it lowers the
    cross-validated expected calibration error (module docstring), ``always`` / ``never`` force the choice."""
    if mode not in CALIBRATION_MODES:
        raise InvalidInput(f"mode={mode!r} is unknown; use one of {', '.join(CALIBRATION_MODES)}.")
    if not isinstance(folds, int) or folds < 2:
        raise InvalidInput(f"folds={folds!r} must be an integer >= 2.")
    if not isinstance(replicates, int) or replicates < 0:
        raise InvalidInput(f"replicates={replicates!r} must be an integer >= 0 (0: no calibration-error band).")
    truth, truth_ok = as_column("ground_truth", ground_truth)
    proba, _, ok, scope, labs = class_inputs(probabilities, None, classes, positive, [truth[truth_ok]])
    _check_length(truth.size, proba.shape[0])
    use = ok & truth_ok
    if len(scope) == 1 and proba.shape[1] > 2:
        scope = list(range(proba.shape[1]))  # a multiclass model is calibrated per class whatever its positive
    p, (t, aligned) = proba[use], align_labels(truth[use], labs)
    onehot = [np.asarray(t == aligned[c]) for c in scope]
    n = int(p.shape[0])
    labs_t = tuple(labs.tolist())

    def empty(reason: str, ece: float = math.nan) -> Calibration:
        return Calibration(tuple(labs.tolist()), (), (), (), False, reason, ece, math.nan, n)

    def fitted(rows: IntArray) -> tuple[Steps, ...]:
        return _fitted(p[rows], [y[rows] for y in onehot], scope)

    def calibrated(maps: tuple[Steps, ...], rows: BoolArray) -> FloatArray:
        return Calibration(labs_t, tuple(scope), maps, (), True, "", math.nan, math.nan, 0).apply(p[rows])

    if n < MIN_REFERENCE_ROWS:
        return empty(f"the reference has {n} labelled row(s); calibration needs at least {MIN_REFERENCE_ROWS}.")
    if sum(int(y.any()) for y in onehot) < 1 or all(y.all() for y in onehot):
        return empty("the reference's labels hold one class only; calibration needs both outcomes.")
    raw_ece = _ece(p, onehot, scope, bins)
    if mode == "never":
        return empty("calibration turned off (mode='never').", raw_ece)
    rng = np.random.default_rng(seed)
    folds_of = rng.permutation(n) % folds
    oof = np.empty_like(p)
    for f in range(folds):
        test = folds_of == f
        oof[test] = calibrated(fitted(np.flatnonzero(~test)), test)
    cal_ece = _ece(oof, onehot, scope, bins)
    maps = fitted(np.arange(n))
    boot = tuple(fitted(rng.integers(0, n, n)) for _ in range(replicates))
    null = _null_ece(p, scope, bins, rng)
    used = mode == "always" or (raw_ece > null and cal_ece < raw_ece)
    if mode == "always":
        reason = "forced (mode='always')."
    elif raw_ece <= null:
        reason = (f"raw probabilities are consistent with calibration (ECE {raw_ece:.4f} <= {null:.4f}, the 95th "
                  "percentile for perfectly calibrated probabilities at this reference size): kept raw.")  # fmt: skip
    else:
        verdict = "calibrated." if used else "kept raw."
        reason = (
            f"raw ECE {raw_ece:.4f} (calibrated noise <= {null:.4f}), cross-validated isotonic {cal_ece:.4f}: {verdict}"
        )
    return Calibration(labs_t, tuple(scope), maps, boot, used, reason, raw_ece, cal_ece, n)


def _check_length(truth_rows: int, proba_rows: int) -> None:
    if truth_rows != proba_rows:
        raise InvalidInput(
            f"ground_truth has {truth_rows} rows but probabilities have {proba_rows}; pass them row for row."
        )


def _fitted(p: FloatArray, onehot: list[BoolArray], scope: list[int]) -> tuple[Steps, ...]:
    from sklearn.isotonic import IsotonicRegression

    maps = []
    for c, y in zip(scope, onehot, strict=True):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[:, c], y.astype(np.float64))
        maps.append((tuple(iso.X_thresholds_.tolist()), tuple(iso.y_thresholds_.tolist())))
    return tuple(maps)


def _null_ece(p: FloatArray, scope: list[int], bins: int, rng: np.random.Generator, draws: int = 50) -> float:
    """The 95th percentile of the ECE of labels drawn from ``p`` itself (what perfect calibration gives)."""
    found = []
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    for _ in range(draws):
        drawn = (rng.uniform(size=(p.shape[0], 1)) > cum).sum(axis=1)
        found.append(_ece(p, [drawn == c for c in scope], scope, bins))
    return float(np.percentile(found, 95))


def _ece(p: FloatArray, onehot: list[np.ndarray[Any, Any]], scope: list[int], bins: int) -> float:
    eces = [
        calibration_curve(y, np.clip(p[:, c], 0.0, 1.0), n_bins=bins, strategy="uniform")[1]
        for c, y in zip(scope, onehot, strict=True)
    ]
    return float(np.mean(eces))
