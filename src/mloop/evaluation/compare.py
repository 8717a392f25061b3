"""Champion/challenger comparison: paired bootstrap confidence intervals and McNemar's test.

:func:`paired_bootstrap` scores model A (the champion) and model B (the challenger) on the *same* resampled
rows in every round, so the interval is for the paired difference, which is much tighter than comparing two
separate intervals. ``improvement`` is signed so that positive always means "B is better" (``b - a`` for
higher-is-better metrics, ``a - b`` for losses); ``ci_low``/``ci_high`` are the percentile interval of the
improvement and ``p_value_like`` is the share of rounds in which B was not better (improvement <= 0).

Two resampling schemes, chosen by metric, both deterministic for a given ``seed``:

* accuracy, precision, recall, f1 depend only on the counts of (true label, label of A, label of B) cells:
  4 cells for accuracy (right/wrong per model), 8 for one class, up to ``k**3`` for macro averages over ``k``
  classes. Drawing those counts from a multinomial is *exactly* the classic row bootstrap and costs nothing
  per row, so every row is used whatever ``max_rows`` says: 1000 rounds take milliseconds, except for macro
  averages over many classes, whose cost grows with the number of distinct cells (200,000 rows, 1000 rounds:
  ~0.3 s for 10 classes, ~1 s for 20, ~5 s for 50).
* mae, rmse, r2, brier, log_loss, roc_auc need per-row values. Above ``max_rows`` rows a random subset of
  ``max_rows`` rows (without replacement, from ``seed``) is used, for the point estimates too; then the
  "double-or-nothing" bootstrap (Owen & Eckles, 2012) weights every row by 0 or 2 with equal odds (weights of
  mean 1 and variance 1, like the multinomial bootstrap's counts, so the intervals agree to first order).
  Random bits make this fast: the weighted sums of 8 rows are looked up in a 256-entry float32 table per group
  of 8 rows (rounding ~1e-7 of the values' scale, far below bootstrap noise; point estimates are exact
  float64), so a round costs about ``m / 8`` lookups per column. ROC AUC counts (negative, positive) pairs per
  byte of sorted rows the same way (exact, ties count one half). 1000 rounds of 200,000 rows take ~0.7 s for
  mae/brier/log_loss, ~1.5 s for rmse/roc_auc, ~2.5 s for r2 and roc_auc with many tied scores.

Binary precision/recall/f1 are for the positive class (``positive``, else the last label); with more than two
classes they are macro averages. :func:`beats` turns a result into a promotion decision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import as_array, as_float_array, check_lengths, encode_labels
from mloop.evaluation.resampling import count_bootstrap, row_bootstrap

__all__ = ["METRICS", "BootstrapResult", "McNemarResult", "beats", "mcnemar", "paired_bootstrap"]

#: Supported bootstrap metrics -> whether higher is better.
METRICS = MappingProxyType(
    {
        "accuracy": True,
        "f1": True,
        "precision": True,
        "recall": True,
        "roc_auc": True,
        "r2": True,
        "log_loss": False,
        "brier": False,
        "mae": False,
        "rmse": False,
    }
)
_COUNT_METRICS = frozenset({"accuracy", "f1", "precision", "recall"})
_EXACT_BELOW = 25  # McNemar: exact binomial test below this many discordant pairs


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``metric`` for champion ``a`` and challenger ``b`` (see the module docstring).

    ``diff`` is ``b - a`` in metric units; ``improvement`` is ``diff`` for higher-is-better metrics and
    ``-diff`` otherwise; ``ci_low``/``ci_high`` bound the *improvement*. ``n_boot_valid`` counts the rounds
    where the metric was defined for both models (e.g. a round with no positive row has no recall).
    ``samples`` holds the bootstrap improvements (not in :meth:`to_dict`) so :func:`beats` can use other
    confidence levels.
    """

    metric: str
    higher_is_better: bool
    a: float
    b: float
    diff: float
    improvement: float
    ci_low: float
    ci_high: float
    confidence: float
    n_boot: int
    n_boot_valid: int
    n_rows: int
    n_rows_used: int
    p_value_like: float
    method: str
    seed: int
    warnings: tuple[str, ...] = ()
    samples: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (``samples`` left out)."""
        out = asdict(self)
        del out["samples"]
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on the rows where exactly one model is right.

    ``b01``: rows A (champion) gets wrong and B (challenger) gets right; ``b10``: A right, B wrong. ``method``
    is ``"exact"`` (two-sided binomial test, ``statistic = min(b01, b10)``) below 25 discordant pairs, else
    ``"chi2-corrected"`` (``statistic = max(|b01 - b10| - 1, 0)^2 / (b01 + b10)``, 1 degree of freedom).
    """

    b01: int
    b10: int
    statistic: float
    p_value: float
    method: str
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


def beats(result: BootstrapResult, *, margin: float = 0.0, confidence: float | None = None) -> bool:
    """True when the challenger's improvement is above ``margin`` with the given confidence.

    Precisely: the lower bound of the two-sided ``confidence`` percentile interval of the improvement (the
    ``(1 - confidence) / 2`` quantile of the bootstrap improvements; ``result.ci_low`` when ``confidence`` is
    None or equal to ``result.confidence``) must be strictly greater than ``margin``. ``margin`` is in metric
    units on the improvement scale (positive = better) whatever the metric's direction: ``margin=0.01`` with
    accuracy asks for at least one point better, with log_loss for a loss at least 0.01 lower. A negative
    margin is a non-inferiority test ("not worse by more than ``-margin``"). Undefined results never beat.
    """
    if not math.isfinite(margin):
        raise InvalidInput(f"margin must be a finite number in {result.metric} units; got {margin!r}.")
    if confidence is None or confidence == result.confidence:
        low = result.ci_low
    else:
        _check_confidence(confidence)
        if not result.samples:
            raise InvalidInput(
                f"This result has no bootstrap samples to read a {confidence:.0%} bound from; pass "
                f"confidence={result.confidence} or rerun paired_bootstrap with confidence={confidence}."
            )
        low = float(np.quantile(np.asarray(result.samples), (1 - confidence) / 2))
    return bool(low > margin)


def mcnemar(y_true: Any, pred_a: Any, pred_b: Any) -> McNemarResult:
    """McNemar's test of whether A and B have the same error rate (see :class:`McNemarResult`)."""
    yt, pa, pb = as_array("y_true", y_true), as_array("pred_a", pred_a), as_array("pred_b", pred_b)
    n = check_lengths(y_true=yt, pred_a=pa, pred_b=pb)
    codes, _ = encode_labels({"y_true": yt, "pred_a": pa, "pred_b": pb})
    right_a = codes["pred_a"] == codes["y_true"]
    right_b = codes["pred_b"] == codes["y_true"]
    b01 = int(np.count_nonzero(~right_a & right_b))
    b10 = int(np.count_nonzero(right_a & ~right_b))
    discordant = b01 + b10
    if discordant < _EXACT_BELOW:
        low = min(b01, b10)
        tail = sum(math.comb(discordant, i) for i in range(low + 1)) / 2**discordant
        return McNemarResult(b01, b10, float(low), min(1.0, 2 * tail), "exact", n)
    statistic = max(abs(b01 - b10) - 1, 0) ** 2 / discordant
    return McNemarResult(b01, b10, statistic, math.erfc(math.sqrt(statistic / 2)), "chi2-corrected", n)


def paired_bootstrap(
    metric: str,
    y_true: Any,
    pred_a: Any,
    pred_b: Any,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    max_rows: int = 200_000,
    labels: Any = None,
    positive: Any = None,
) -> BootstrapResult:
    """Confidence interval for how much better ``pred_b`` (challenger) is than ``pred_a`` (champion).

    ``pred_a``/``pred_b`` are labels for accuracy/precision/recall/f1, probabilities of the positive class
    (1-D, or one column per label) for roc_auc/brier/log_loss (log_loss also multiclass), and values for
    mae/rmse/r2. ``labels``/``positive`` as for :func:`~mloop.evaluation.metrics.classification_metrics`.
    """
    if metric not in METRICS:
        raise InvalidInput(f"Unknown metric {metric!r} for the bootstrap; use one of {', '.join(sorted(METRICS))}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise InvalidInput(f"n_boot must be a positive integer (1000 is typical); got {n_boot!r}.")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 2:
        raise InvalidInput(f"max_rows must be an integer >= 2; got {max_rows!r}.")
    _check_confidence(confidence)
    rng = np.random.default_rng(seed)
    warnings: list[str] = []
    yt = as_array("y_true", y_true)
    if metric in _COUNT_METRICS:
        pa, pb = as_array("pred_a", pred_a), as_array("pred_b", pred_b)
        n = used = check_lengths(y_true=yt, pred_a=pa, pred_b=pb)
        a, b, deltas = count_bootstrap(metric, yt, pa, pb, labels, positive, n_boot, rng, warnings)
        method = "multinomial over (y, a, b) cells"
    else:
        pa = as_float_array("pred_a", pred_a, ndim=2 if np.ndim(pred_a) == 2 else 1)
        pb = as_float_array("pred_b", pred_b, ndim=2 if np.ndim(pred_b) == 2 else 1)
        n = check_lengths(y_true=yt, pred_a=pa, pred_b=pb)
        used = min(n, max_rows)
        if n > max_rows:
            keep = np.sort(rng.choice(n, size=max_rows, replace=False))
            yt, pa, pb = yt[keep], pa[keep], pb[keep]
        a, b, deltas = row_bootstrap(metric, yt, pa, pb, labels, positive, n_boot, rng, warnings)
        method = "double-or-nothing" + (f" on {used} of {n} rows" if used < n else "")
    sign = 1.0 if METRICS[metric] else -1.0
    samples = sign * deltas
    valid = samples[~np.isnan(samples)]
    if valid.size < n_boot:
        warnings.append(f"{n_boot - valid.size} of {n_boot} rounds left out: {metric} was undefined in them.")
    if valid.size:
        low, high = (float(q) for q in np.quantile(valid, [(1 - confidence) / 2, (1 + confidence) / 2]))
        p_like = float(np.mean(valid <= 0))
    else:
        low = high = p_like = math.nan
    return BootstrapResult(
        metric=metric,
        higher_is_better=METRICS[metric],
        a=a,
        b=b,
        diff=b - a,
        improvement=sign * (b - a),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        n_boot=n_boot,
        n_boot_valid=int(valid.size),
        n_rows=n,
        n_rows_used=used,
        p_value_like=p_like,
        method=method,
        seed=seed,
        warnings=tuple(warnings),
        samples=tuple(valid.tolist()),
    )


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise InvalidInput(f"confidence must be between 0 and 1 (e.g. 0.95); got {confidence!r}.")
