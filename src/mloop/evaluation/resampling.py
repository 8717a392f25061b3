"""The bootstrap kernels behind :func:`~mloop.evaluation.compare.paired_bootstrap`.

Two schemes (the module docstring of :mod:`mloop.evaluation.compare` explains when each is used and what it
costs): :func:`count_bootstrap` draws multinomial counts over the distinct (truth, A, B) cells of
label-valued metrics; :func:`row_bootstrap` keeps each row with probability 1/2 ("double-or-nothing"),
summing per-row values through 256-entry lookup tables over packed random bits (:func:`half_sample_sums`)
and counting ROC AUC pairs per byte of sorted rows (:func:`auc_half_samples`). Each returns the two point
estimates and, per round, ``b - a`` in metric units.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.evaluation.inputs import FloatArray, as_array, as_float_array, encode_classes, resolve_positive
from mloop.evaluation.metrics import LOG_EPS, binary_auc, nan_average, prf_from_counts

__all__ = ["auc_half_samples", "count_bootstrap", "half_sample_sums", "halves", "row_bootstrap"]

_CHUNK_ELEMENTS = 4_000_000  # rows x rounds held in memory at once


# ------------------------------------------------------------------------------------- count metrics
def count_bootstrap(
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
def row_bootstrap(
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
    """Double-or-nothing bootstrap of a metric needing per-row values (mae, rmse, r2, brier, log_loss,
    roc_auc) on float predictions ``pa``/``pb``."""
    if metric in ("mae", "rmse", "r2"):
        y = as_float_array("y_true", yt)
        if pa.ndim != 1 or pb.ndim != 1:
            raise InvalidInput(f"{metric} compares 1-D predictions; got shapes {pa.shape} and {pb.shape}.")
        if metric == "mae":
            la, lb = np.abs(pa - y), np.abs(pb - y)
            return _mean_loss(la, lb, n_boot, rng)
        ea, eb = (pa - y) ** 2, (pb - y) ** 2
        if metric == "rmse":
            sums, w = half_sample_sums(np.column_stack((ea, eb)), n_boot, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                deltas = np.sqrt(sums[:, 1] / w) - np.sqrt(sums[:, 0] / w)
            return math.sqrt(ea.mean()), math.sqrt(eb.mean()), deltas
        yc = y - y.mean()
        sst = float(yc @ yc)
        if sst == 0:
            warnings.append(f"r2 is undefined: y_true is constant ({y[0]:.6g}).")
            return math.nan, math.nan, np.full(n_boot, math.nan)
        sums, w = half_sample_sums(np.column_stack((ea - eb, yc, yc * yc)), n_boot, rng)
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
        auc_a, auc_b = auc_half_samples(y_pos, (sa, sb), n_boot, rng)
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
    sums, w = half_sample_sums((lb - la)[:, None], n_boot, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(la.mean()), float(lb.mean()), sums[:, 0] / w


def halves(rng: np.random.Generator, rounds: int, m: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Random halves as packed bits: bit ``i`` (little-endian) of byte ``g`` in a row keeps data row ``8g + i``."""
    groups = -(-m // 8)
    packed = np.frombuffer(bytearray(rng.bytes(rounds * groups)), dtype=np.uint8).reshape(rounds, groups)
    packed[:, -1] &= (1 << (m - 8 * (groups - 1))) - 1
    return packed


def half_sample_sums(columns: FloatArray, n_boot: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
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
        codes = halves(rng, min(chunk, n_boot - start), m)
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


def auc_half_samples(
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
        kept = np.unpackbits(halves(rng, min(chunk, n_boot - start), m), axis=1, count=m, bitorder="little")
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
