"""Performance estimation: mloop's CBPE (mloop.monitoring.estimation) vs NannyML's CBPE on the same simulated data.

    python bench/bench_estimation.py                       # accuracy on three scenarios + the 1M-row timing
    python bench/bench_estimation.py --windows 6 --chunk 5000 --big 1000000 --repeat 3 --json

Scenarios (labels drawn from the true probabilities, so the realised metric of every window is known):

binary-calibrated     p(y=1|x) = sigmoid(1.5 x), the model outputs exactly p; reference x ~ N(0, 2), windows
                      under covariate shift (x moves towards the decision boundary: accuracy falls 0.87 -> 0.6).
binary-overconfident  the same truth, the model outputs sigmoid(4.5 x): both tools must calibrate on the
                      labelled reference (isotonic) to estimate right.
multiclass            3 classes, softmax of a linear map of x in R^2, calibrated; windows shift x's mean/scale.

For every window of ``--chunk`` rows: the realised accuracy / F1 / ROC AUC, NannyML's estimate and mloop's
(calibration fitted on the same 20,000-row reference, ``mode="auto"``), their absolute errors, and whether the
realised value lies within 3 standard errors of the estimate (NannyML: its ``sampling_error``; mloop: the
``sd`` of its band). Timing: fit on the reference + estimate one ``--big``-row window (overconfident scenario),
median of ``--repeat`` runs, each side in its own process (imports and file reading untimed).

NannyML runs in bench/.venv-nannyml (``python3 -m venv bench/.venv-nannyml && bench/.venv-nannyml/bin/pip
install -r bench/requirements-nannyml.txt``; NannyML 0.13 imports statsmodels without declaring it).
Benchmarks are not tests: the machine is small (2 cores) and shared; read medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.monitoring.calibration import fit_calibration
from mloop.monitoring.estimation import estimate_performance
from mloop.monitoring.performance import live_performance

BENCH_DIR = Path(__file__).resolve().parent
NANNYML_PY = BENCH_DIR / ".venv-nannyml" / "bin" / "python"
HELPER = BENCH_DIR / "_estimation" / "nannyml_cbpe.py"
METRICS = ("accuracy", "f1", "roc_auc")
BINARY_SHIFTS = ((0.0, 2.0), (0.3, 1.5), (0.5, 1.0), (0.2, 0.5), (0.0, 0.3))
MULTI_SHIFTS = ((0.0, 1.5), (0.5, 1.0), (1.0, 0.7), (0.0, 0.4))
MULTI_W = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _binary(rng: np.random.Generator, n: int, mu: float, sd: float, sharp: float) -> pd.DataFrame:
    x = rng.normal(mu, sd, n)
    y = (rng.uniform(size=n) < _sigmoid(1.5 * x)).astype(np.int64)
    shown = _sigmoid(sharp * x)
    return pd.DataFrame({"y_pred_proba": shown, "y_pred": (shown > 0.5).astype(np.int64), "y_true": y})


def _multi(rng: np.random.Generator, n: int, mu: float, sd: float) -> pd.DataFrame:
    x = rng.normal(mu, sd, size=(n, 2))
    p = _softmax(x @ MULTI_W.T)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2)
    frame = pd.DataFrame({f"proba_{c}": p[:, c] for c in range(3)})
    frame["y_pred"] = p.argmax(axis=1)
    frame["y_true"] = y
    return frame


def _data(name: str, rng: np.random.Generator, windows: int, chunk: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if name == "multiclass":
        ref = _multi(rng, 20_000, 0.0, 1.5)
        parts = [_multi(rng, chunk, mu, sd) for mu, sd in MULTI_SHIFTS for _ in range(windows)]
    else:
        sharp = 1.5 if name == "binary-calibrated" else 4.5
        ref = _binary(rng, 20_000, 0.0, 2.0, sharp)
        parts = [_binary(rng, chunk, mu, sd, sharp) for mu, sd in BINARY_SHIFTS for _ in range(windows)]
    return ref, pd.concat(parts, ignore_index=True)


def _proba(frame: pd.DataFrame, classes: list[int] | None) -> np.ndarray:
    if classes is None:
        return frame["y_pred_proba"].to_numpy()
    return frame[[f"proba_{c}" for c in classes]].to_numpy()


def _nannyml(ref: pd.DataFrame, ana: pd.DataFrame, classes: list[int] | None, chunk: int | None, repeat: int,
             tmp: Path) -> dict[str, Any]:  # fmt: skip
    ref.to_parquet(tmp / "reference.parquet")
    ana.to_parquet(tmp / "analysis.parquet")
    spec = {"reference": str(tmp / "reference.parquet"), "analysis": str(tmp / "analysis.parquet"),
            "classes": classes, "chunk_size": chunk, "repeat": repeat}  # fmt: skip
    (tmp / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(NANNYML_PY), str(HELPER), str(tmp / "spec.json")], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"NannyML failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def accuracy_scenario(name: str, windows: int, chunk: int, seed: int, tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    ref, ana = _data(name, rng, windows, chunk)
    classes = [0, 1, 2] if name == "multiclass" else None
    nml = _nannyml(ref, ana, classes, chunk, 1, tmp)
    cal = fit_calibration(_proba(ref, classes), ref["y_true"].to_numpy(), classes=classes)
    rows: dict[str, list[tuple[float, ...]]] = {m: [] for m in METRICS}
    for k, c in enumerate(nml["chunks"]):
        part = ana.iloc[k * chunk : (k + 1) * chunk]
        assert (c["start"], c["end"]) == (k * chunk, (k + 1) * chunk - 1)
        proba, pred, truth = _proba(part, classes), part["y_pred"].to_numpy(), part["y_true"].to_numpy()
        est = estimate_performance(proba, pred, classes=classes, calibration=cal)
        real = live_performance("classification", pred, truth, proba, classes=classes)
        for m in METRICS:
            rows[m].append((real.value(m), est.value(m), est.metrics[m].sd, c[f"{m}_estimate"],
                            c[f"{m}_sampling_error"], c[f"{m}_realised"]))  # fmt: skip
    out: dict[str, Any] = {"scenario": name, "windows": len(nml["chunks"]), "chunk": chunk,
                           "calibration": cal.reason, "nannyml": nml["version"]}  # fmt: skip
    for m, vals in rows.items():
        a = np.array(vals)
        real, ours, sd, theirs, se, their_real = a.T
        out[m] = {
            "realised_range": [float(real.min()), float(real.max())],
            "mloop_mae": float(np.mean(np.abs(ours - real))),
            "nannyml_mae": float(np.mean(np.abs(theirs - real))),
            "mloop_max_err": float(np.max(np.abs(ours - real))),
            "nannyml_max_err": float(np.max(np.abs(theirs - real))),
            "max_mloop_minus_nannyml": float(np.max(np.abs(ours - theirs))),
            "mloop_within_3sd": float(np.mean(np.abs(ours - real) <= 3 * sd)),
            "nannyml_within_3se": float(np.mean(np.abs(theirs - real) <= 3 * se)),
            "mloop_sd_median": float(np.median(sd)),
            "nannyml_se_median": float(np.median(se)),
            "realised_agree": float(np.max(np.abs(their_real - real))),
        }
    return out


def timing(big: int, repeat: int, tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(99)
    ref = _binary(rng, 20_000, 0.0, 2.0, 4.5)
    ana = _binary(rng, big, 0.3, 1.0, 4.5)
    nml = _nannyml(ref, ana, None, None, repeat, tmp)
    proba, pred, ref_p, ref_y = (ana["y_pred_proba"].to_numpy(), ana["y_pred"].to_numpy(),
                                 ref["y_pred_proba"].to_numpy(), ref["y_true"].to_numpy())  # fmt: skip
    times, fit_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        cal = fit_calibration(ref_p, ref_y)
        fitted = time.perf_counter()
        estimate_performance(proba, pred, calibration=cal)
        times.append(time.perf_counter() - start)
        fit_times.append(fitted - start)
    ours = statistics.median(times)
    return {"rows": big, "mloop_s": ours, "mloop_fit_s": statistics.median(fit_times), "nannyml_s": nml["seconds"],
            "speedup": nml["seconds"] / ours}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=6, help="windows per shift step")
    parser.add_argument("--chunk", type=int, default=5000, help="rows per window")
    parser.add_argument("--big", type=int, default=1_000_000, help="rows of the timed window")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not NANNYML_PY.exists():
        sys.exit(f"{NANNYML_PY} is missing: python3 -m venv bench/.venv-nannyml && "
                 "bench/.venv-nannyml/bin/pip install -r bench/requirements-nannyml.txt")  # fmt: skip
    results: dict[str, Any] = {"scenarios": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k, name in enumerate(("binary-calibrated", "binary-overconfident", "multiclass")):
            results["scenarios"].append(accuracy_scenario(name, args.windows, args.chunk, args.seed + k, Path(tmp)))
        results["timing"] = timing(args.big, args.repeat, Path(tmp))
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print("| scenario | metric | realised range | mean abs err mloop / NannyML | max abs err mloop / NannyML | "
          "max mloop-NannyML | within 3 sd mloop / NannyML | sd mloop / NannyML (median) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for s in results["scenarios"]:
        for m in METRICS:
            r = s[m]
            print(f"| {s['scenario']} ({s['windows']} x {s['chunk']}) | {m} | {r['realised_range'][0]:.3f} to "
                  f"{r['realised_range'][1]:.3f} | {r['mloop_mae']:.4f} / {r['nannyml_mae']:.4f} | "
                  f"{r['mloop_max_err']:.4f} / {r['nannyml_max_err']:.4f} | {r['max_mloop_minus_nannyml']:.4f} | "
                  f"{r['mloop_within_3sd']:.0%} / {r['nannyml_within_3se']:.0%} | "
                  f"{r['mloop_sd_median']:.4f} / {r['nannyml_se_median']:.4f} |")  # fmt: skip
        print(f"<!-- {s['scenario']}: mloop calibration: {s['calibration']}; NannyML {s['nannyml']} -->")
    t = results["timing"]
    print(f"\nfit + estimate, one window of {t['rows']:,} rows (binary, calibrated on 20,000 reference rows): "
          f"mloop {t['mloop_s']:.2f} s (fit {t['mloop_fit_s']:.2f} s), NannyML {t['nannyml_s']:.2f} s: "
          f"{t['speedup']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
