"""Evaluation statistics: mloop.evaluation vs the equivalent scikit-learn calls and a naive bootstrap.

    python bench/bench_evaluation_stats.py                   # both: holdout bootstrap
    python bench/bench_evaluation_stats.py holdout --rows 1000000 --repeat 3
    python bench/bench_evaluation_stats.py bootstrap --rows 200000 --n-boot 1000 --json

holdout    a 1,000,000-row binary holdout scored by a logistic regression (fitted, untimed, on 50,000 other
           rows): predict_proba + ``classification_metrics`` (accuracy, P/R/F1, macro/weighted, confusion
           matrix, ROC AUC, log loss, Brier, calibration) vs the same numbers from scikit-learn's functions.
           Bars: the whole evaluation including predict well under 10 s; metrics < 1.5 s.
bootstrap  ``paired_bootstrap`` with 1000 rounds on 200,000 rows for every metric, vs a naive bootstrap
           (index matrix, both models scored per round) for accuracy and mae, run on a few rounds and
           extrapolated. Bar: accuracy < 2 s.

Benchmarks are not tests: medians over ``--repeat`` runs and ratios are printed, nothing gates on a time.
The machine is small (2 cores) and shared: read ratios, not single numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _binary_problem(rows: int, seed: int = 0) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 20))
    logits = x @ rng.normal(size=20) * 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(int)
    return x, y, rng


def bench_holdout(rows: int, repeat: int) -> dict[str, float]:
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression

    from mloop.evaluation import classification_metrics

    x_train, y_train, _ = _binary_problem(50_000, seed=1)
    x, y, _ = _binary_problem(rows, seed=2)
    model = LogisticRegression().fit(x_train, y_train)
    proba = model.predict_proba(x)[:, 1]
    pred = (proba >= 0.5).astype(int)

    def sklearn_metrics() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            skm.accuracy_score(y, pred)
            skm.precision_recall_fscore_support(y, pred, average="binary")
            skm.precision_recall_fscore_support(y, pred, average="macro")
            skm.precision_recall_fscore_support(y, pred, average="weighted")
            skm.confusion_matrix(y, pred)
            skm.roc_auc_score(y, proba)
            skm.log_loss(y, proba)
            skm.brier_score_loss(y, proba)
            calibration_curve(y, proba, n_bins=10)

    def full() -> None:
        p = model.predict_proba(x)[:, 1]
        classification_metrics(y, (p >= 0.5).astype(int), p)

    mloop_s = _median_time(lambda: classification_metrics(y, pred, proba), repeat)
    sklearn_s = _median_time(sklearn_metrics, repeat)
    return {
        "rows": rows,
        "predict_plus_metrics_s": _median_time(full, repeat),
        "mloop_metrics_s": mloop_s,
        "sklearn_metrics_s": sklearn_s,
        "speedup_vs_sklearn": sklearn_s / mloop_s,
    }


def bench_bootstrap(rows: int, n_boot: int, repeat: int) -> dict[str, float]:
    from mloop.evaluation import paired_bootstrap

    _, y, rng = _binary_problem(rows, seed=3)
    pa = np.clip(0.3 * y + 0.7 * rng.random(rows), 0, 1)
    pb = np.clip(0.35 * y + 0.65 * rng.random(rows), 0, 1)
    la, lb = (pa > 0.5).astype(int), (pb > 0.5).astype(int)
    yr = rng.normal(size=rows)
    ra, rb = yr + rng.normal(size=rows), yr + 0.9 * rng.normal(size=rows)
    inputs = {
        "accuracy": (y, la, lb), "f1": (y, la, lb), "precision": (y, la, lb), "recall": (y, la, lb),
        "roc_auc": (y, pa, pb), "roc_auc_ties": (y, np.round(pa, 2), np.round(pb, 2)), "log_loss": (y, pa, pb),
        "brier": (y, pa, pb), "mae": (yr, ra, rb), "rmse": (yr, ra, rb), "r2": (yr, ra, rb),
    }  # fmt: skip
    out: dict[str, float] = {"rows": rows, "n_boot": n_boot}
    for name, args in inputs.items():
        metric = name.removesuffix("_ties")
        out[f"{name}_s"] = _median_time(
            lambda m=metric, a=args: paired_bootstrap(m, *a, n_boot=n_boot, max_rows=rows), repeat
        )

    naive_rounds = 20

    def naive(loss_a: Any, loss_b: Any) -> None:
        for _ in range(naive_rounds):
            idx = rng.integers(0, rows, rows)
            float(loss_b[idx].mean() - loss_a[idx].mean())

    naive_acc = _median_time(lambda: naive(la == y, lb == y), repeat) * n_boot / naive_rounds
    naive_mae = _median_time(lambda: naive(np.abs(ra - yr), np.abs(rb - yr)), repeat) * n_boot / naive_rounds
    out["naive_accuracy_s_extrapolated"] = naive_acc
    out["naive_mae_s_extrapolated"] = naive_mae
    out["accuracy_speedup_vs_naive"] = naive_acc / out["accuracy_s"]
    out["mae_speedup_vs_naive"] = naive_mae / out["mae_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="mloop.evaluation speed (medians and ratios)")
    parser.add_argument("which", nargs="*", help="holdout and/or bootstrap (default: both)")
    parser.add_argument("--rows", type=int, default=None, help="holdout 1,000,000 / bootstrap 200,000")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.which = args.which or ["holdout", "bootstrap"]
    if unknown := set(args.which) - {"holdout", "bootstrap"}:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose holdout and/or bootstrap")
    results: dict[str, dict[str, float]] = {}
    if "holdout" in args.which:
        results["holdout"] = bench_holdout(args.rows or 1_000_000, args.repeat)
    if "bootstrap" in args.which:
        results["bootstrap"] = bench_bootstrap(args.rows or 200_000, args.n_boot, args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for section, values in results.items():
        print(f"== {section}")
        for key, value in values.items():
            print(f"  {key:34s} {value:10.3f}" if isinstance(value, float) else f"  {key:34s} {value:>10}")


if __name__ == "__main__":
    main()
