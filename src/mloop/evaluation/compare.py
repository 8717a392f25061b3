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
from mloop.evaluation.metrics import (
    LOG_EPS,
    FloatArray,
    as_array,
    as_float_array,
    binary_auc,
    check_lengths,
    encode_classes,
    encode_labels,
    nan_average,
    prf_from_counts,
    resolve_positive,
)

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
_CHUNK_ELEMENTS = 4_000_000  # rows x rounds held in memory at once
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
        a, b, deltas = _count_bootstrap(metric, yt, pa, pb, labels, positive, n_boot, rng, warnings)
        method = "multinomial over (y, a, b) cells"
    else:
        pa = as_float_array("pred_a", pred_a, ndim=2 if np.ndim(pred_a) == 2 else 1)
        pb = as_float_array("pred_b", pred_b, ndim=2 if np.ndim(pred_b) == 2 else 1)
        n = check_lengths(y_true=yt, pred_a=pa, pred_b=pb)
        used = min(n, max_rows)
        if n > max_rows:
            keep = np.sort(rng.choice(n, size=max_rows, replace=False))
            yt, pa, pb = yt[keep], pa[keep], pb[keep]
        a, b, deltas = _row_bootstrap(metric, yt, pa, pb, labels, positive, n_boot, rng, warnings)
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


# ------------------------------------------------------------------------------------- count metrics
def _count_bootstrap(
    metric: str,
    yt: Any,
    pa: Any,
    pb: Any,
    labels: Any,
    positive: Any,
    n_boot: int,
    rng: np.random.Generator,
    warnings: list[str],
) -> tuple[float, float, FloatArray]:
    """Multinomial bootstrap over the distinct (truth, A, B) cells: 4 for accuracy (right/wrong per model), 8 for
    one class (is it the class, per column), up to ``k**3`` for macro averages over ``k`` classes."""
    codes, labs = encode_classes({"y_true": yt, "pred_a": pa, "pred_b": pb}, labels, positive)
    t, a, b = codes["y_true"], codes["pred_a"], codes["pred_b"]
    k, macro = 2, False
    if metric == "accuracy":
        t, a, b = np.ones_like(t), (a == t).astype(np.intp), (b == t).astype(np.intp)
    elif labs.size <= 2 or positive is not None:
        pos = resolve_positive(labs, positive, warnings)
        t, a, b = (t == pos).astype(np.intp), (a == pos).astype(np.intp), (b == pos).astype(np.intp)
    else:
        k, macro = labs.size, True
    ids, counts = np.unique((t * k + a) * k + b, return_counts=True)
    tc, ac, bc = ids // (k * k), (ids // k) % k, ids % k

    def stat(cnt: FloatArray, x: Any) -> FloatArray:
        if metric == "accuracy":
            correct: FloatArray = (cnt @ (tc == x)) / cnt.sum(axis=-1)
            return correct
        if macro:
            tp = _class_sums(cnt, tc, tc == x, k)
            fp, fn = _class_sums(cnt, x, x >= 0, k) - tp, _class_sums(cnt, tc, tc >= 0, k) - tp
        else:
            tp, fp, fn = (cnt @ (i & j) for i, j in ((tc == 1, x == 1), (tc == 0, x == 1), (tc == 1, x == 0)))
        values = prf_from_counts(tp, fp, fn)[("precision", "recall", "f1").index(metric)]
        return nan_average(values) if macro else values

    whole = counts[None, :].astype(np.float64)
    deltas = np.empty(n_boot)
    chunk = max(1, _CHUNK_ELEMENTS // counts.size)
    for start in range(0, n_boot, chunk):
        boot = rng.multinomial(t.size, counts / t.size, size=min(chunk, n_boot - start)).astype(np.float64)
        deltas[start : start + len(boot)] = stat(boot, bc) - stat(boot, ac)
    return float(stat(whole, ac)[0]), float(stat(whole, bc)[0]), deltas


def _class_sums(cnt: FloatArray, key: Any, mask: Any, k: int) -> FloatArray:
    """Per round (rows of ``cnt``), the counts of the cells selected by ``mask``, summed by class ``key``."""
    out = np.zeros((cnt.shape[0], k))
    cells = np.flatnonzero(mask)
    if cells.size:
        cells = cells[np.argsort(key[cells], kind="stable")]
        keys = key[cells]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        out[:, keys[starts]] = np.add.reduceat(cnt[:, cells], starts, axis=1)
    return out


# --------------------------------------------------------------------------------------- row metrics
def _row_bootstrap(
    metric: str,
    yt: Any,
    pa: FloatArray,
    pb: FloatArray,
    labels: Any,
    positive: Any,
    n_boot: int,
    rng: np.random.Generator,
    warnings: list[str],
) -> tuple[float, float, FloatArray]:
    if metric in ("mae", "rmse", "r2"):
        y = as_float_array("y_true", yt)
        if pa.ndim != 1 or pb.ndim != 1:
            raise InvalidInput(f"{metric} compares 1-D predictions; got shapes {pa.shape} and {pb.shape}.")
        if metric == "mae":
            la, lb = np.abs(pa - y), np.abs(pb - y)
            return _mean_loss(la, lb, n_boot, rng)
        ea, eb = (pa - y) ** 2, (pb - y) ** 2
        if metric == "rmse":
            sums, w = _half_sample_sums(np.column_stack((ea, eb)), n_boot, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                deltas = np.sqrt(sums[:, 1] / w) - np.sqrt(sums[:, 0] / w)
            return math.sqrt(ea.mean()), math.sqrt(eb.mean()), deltas
        yc = y - y.mean()
        sst = float(yc @ yc)
        if sst == 0:
            warnings.append(f"r2 is undefined: y_true is constant ({y[0]:.6g}).")
            return math.nan, math.nan, np.full(n_boot, math.nan)
        sums, w = _half_sample_sums(np.column_stack((ea - eb, yc, yc * yc)), n_boot, rng)
        with np.errstate(divide="ignore", invalid="ignore"):
            sst_w = sums[:, 2] - sums[:, 1] ** 2 / w
            deltas = np.where(sst_w > 0, sums[:, 0] / sst_w, math.nan)
        return 1 - float(ea.sum()) / sst, 1 - float(eb.sum()) / sst, deltas
    codes, labs = encode_classes({"y_true": as_array("y_true", yt)}, labels, positive)
    y_codes, k = codes["y_true"], labs.size
    if metric == "log_loss" and k > 2:
        if pa.ndim != 2 or pa.shape != pb.shape or pa.shape[1] != k:
            raise InvalidInput(f"multiclass log_loss needs (n_rows, {k}) probabilities; got {pa.shape}, {pb.shape}.")
        rows = np.arange(y_codes.size)
        la, lb = (-np.log(np.clip(p[rows, y_codes], LOG_EPS, 1 - LOG_EPS)) for p in (pa, pb))
        return _mean_loss(la, lb, n_boot, rng)
    if k > 2:
        raise InvalidInput(f"{metric} needs a binary y_true; got {k} classes {labs.tolist()[:10]}. Use log_loss or f1.")
    pos = resolve_positive(labs, positive, warnings)
    y_pos = y_codes == pos
    sa, sb = (_positive_column(name, p, k, pos) for name, p in (("pred_a", pa), ("pred_b", pb)))
    if metric == "roc_auc":
        a, b = binary_auc(y_pos, sa), binary_auc(y_pos, sb)
        if math.isnan(a):
            warnings.append("roc_auc is undefined: y_true holds one class.")
            return a, b, np.full(n_boot, math.nan)
        auc_a, auc_b = _auc_half_samples(y_pos, (sa, sb), n_boot, rng)
        return a, b, auc_b - auc_a
    for name, s in (("pred_a", sa), ("pred_b", sb)):
        if s.min() < 0 or s.max() > 1:
            raise InvalidInput(f"{metric} needs probabilities in [0, 1]; {name} ranges {s.min():.4g}..{s.max():.4g}.")
    if metric == "brier":
        return _mean_loss((sa - y_pos) ** 2, (sb - y_pos) ** 2, n_boot, rng)
    la, lb = (-np.log(np.clip(np.where(y_pos, s, 1 - s), LOG_EPS, 1 - LOG_EPS)) for s in (sa, sb))
    return _mean_loss(la, lb, n_boot, rng)


def _positive_column(name: str, p: FloatArray, k: int, pos: int) -> FloatArray:
    if p.ndim == 1:
        return p
    if p.shape[1] != k:
        raise InvalidInput(f"{name} has {p.shape[1]} columns for {k} labels; pass labels=model.classes_.")
    return p[:, pos]


def _mean_loss(
    la: FloatArray, lb: FloatArray, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, FloatArray]:
    """Point losses and bootstrap ``mean(lb) - mean(la)`` (so ``-delta`` is the improvement)."""
    sums, w = _half_sample_sums((lb - la)[:, None], n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(la.mean()), float(lb.mean()), sums[:, 0] / w


def _halves(rng: np.random.Generator, rounds: int, m: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Random halves as packed bits: bit ``i`` (little-endian) of byte ``g`` in a row keeps data row ``8g + i``."""
    groups = -(-m // 8)
    packed = np.frombuffer(bytearray(rng.bytes(rounds * groups)), dtype=np.uint8).reshape(rounds, groups)
    packed[:, -1] &= (1 << (m - 8 * (groups - 1))) - 1
    return packed


def _half_sample_sums(columns: FloatArray, n_boot: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Per round, the column sums and the row count of a random half (each row kept with probability 1/2)."""
    m, k = columns.shape
    groups = -(-m // 8)
    padded = np.zeros((groups * 8, k))
    padded[:m] = columns
    bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.float64)  # byte -> which of its 8 rows
    tables = [(padded[:, j].reshape(groups, 8) @ bits.T).astype(np.float32).ravel() for j in range(k)]
    popcount = bits.sum(axis=1)
    base = np.arange(groups, dtype=np.intp) * 256
    chunk = max(1, _CHUNK_ELEMENTS // groups)
    sums, weights = np.empty((n_boot, k)), np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        codes = _halves(rng, min(chunk, n_boot - start), m)
        idx = base + codes
        for j, table in enumerate(tables):
            sums[start : start + len(codes), j] = np.take(table, idx).sum(axis=1, dtype=np.float64)
        weights[start : start + len(codes)] = np.take(popcount, codes).sum(axis=1)
    return sums, weights


def _pair_tables() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Lookup tables over (positive mask, kept mask) byte pairs: kept positives, kept negatives, and kept
    (negative, positive) pairs with the negative at the lower bit (= sorted before the positive)."""
    code = np.arange(1 << 16)
    pos_mask, kept = code >> 8, code & 255
    shifts = np.arange(8)
    pos = (((kept & pos_mask)[:, None] >> shifts) & 1).astype(np.int32)
    neg = (((kept & ~pos_mask & 255)[:, None] >> shifts) & 1).astype(np.int32)
    pairs = (pos * np.cumsum(neg, axis=1)).sum(axis=1)
    return pos.sum(axis=1).astype(np.uint8), neg.sum(axis=1).astype(np.uint8), pairs.astype(np.uint8)


def _auc_half_samples(
    y_pos: Any, scores: tuple[FloatArray, FloatArray], n_boot: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """ROC AUC of each model on the same random halves of the rows, exact with ties.

    The (negative, positive) pairs with the negative sorted first are counted per byte of 8 sorted rows (a
    table lookup) plus kept positives times the running count of kept negatives in earlier bytes, so the
    running sum is over m / 8 numbers. With ties the count is averaged over two sorts (tied negatives first,
    then last), which weighs tied pairs one half, exactly like average ranks.
    """
    m = y_pos.size
    pos_count, neg_count, pair_count = _pair_tables()
    models = []
    for s in scores:
        sorts = [np.lexsort((y_pos, s))]  # within ties negatives first
        if np.any(np.diff(s[sorts[0]]) == 0):
            sorts.append(np.lexsort((~y_pos, s)))
        models.append([(o, np.packbits(y_pos[o], bitorder="little").astype(np.intp) << 8) for o in sorts])
    chunk = max(1, _CHUNK_ELEMENTS // m)
    out = (np.empty(n_boot), np.empty(n_boot))
    for start in range(0, n_boot, chunk):
        kept = np.unpackbits(_halves(rng, min(chunk, n_boot - start), m), axis=1, count=m, bitorder="little")
        for orders, dest in zip(models, out, strict=True):
            twice = np.zeros(kept.shape[0], dtype=np.int64)
            for order, base in orders:
                idx = base + np.packbits(np.take(kept, order, axis=1), axis=1, bitorder="little")
                n_pos, n_neg = np.take(pos_count, idx), np.take(neg_count, idx)
                below = np.cumsum(n_neg, axis=1, dtype=np.int32) - n_neg
                count = (n_pos * below).sum(axis=1, dtype=np.int64)
                count += np.take(pair_count, idx).sum(axis=1, dtype=np.int64)
                twice += count * (3 - len(orders))
            total_pos, total_neg = n_pos.sum(axis=1, dtype=np.int64), n_neg.sum(axis=1, dtype=np.int64)
            with np.errstate(divide="ignore", invalid="ignore"):
                dest[start : start + len(kept)] = twice / (2.0 * total_pos * total_neg)
    return out


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise InvalidInput(f"confidence must be between 0 and 1 (e.g. 0.95); got {confidence!r}.")
