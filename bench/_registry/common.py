"""Constants, seeded data and models, timing helpers, and running one side in a fresh worker process."""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c

SCRIPT = c.BENCH_DIR / "bench_registry.py"  # the entry point; workers run it with --worker
BENCHES = ("predict-overhead", "evaluate-1m")
RAW, MLOOP, MLFLOW = "raw", "mloop", "mlflow"
MODELS = ("logreg", "pipeline")
N_FEATURES = 20
FIT_ROWS = 5_000
BIG_ROWS = 10_000
EVAL_ROWS = 1_000_000
EVAL_TRAIN_ROWS = 100_000
BAR_OVERHEAD = 0.05
BAR_EVALUATE_S = 10.0


# ============================================================================================ data + models


def feature_columns() -> list[str]:
    return [f"f{i}" for i in range(N_FEATURES)]


def binary_frame(rows: int, seed: int) -> Any:
    """A seeded binary problem: standard-normal features, logistic labels (weights fixed by seed 12345)."""
    import numpy as np
    import pandas as pd

    weights = np.random.default_rng(12345).normal(size=N_FEATURES)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    logits = (x @ weights) * 0.5
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logits))).astype(np.int64)
    frame = pd.DataFrame(x, columns=feature_columns())
    frame["label"] = y
    return frame


def fit_model(kind: str, frame: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = frame[feature_columns()], frame["label"].to_numpy()
    if kind == "logreg":
        model = LogisticRegression(max_iter=1000)
    elif kind == "pipeline":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    else:
        raise ValueError(kind)
    return model.fit(x, y)


# ============================================================================================ timing


def _per_call(fn: Callable[[Any], Any], arg: Any, calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn(arg)
    out = []
    perf = time.perf_counter
    for _ in range(calls):
        start = perf()
        fn(arg)
        out.append(perf() - start)
    return out


def time_predict(fn: Callable[[Any], Any], one: Any, big: Any, calls: int, big_calls: int) -> dict[str, float]:
    return {
        "row1_s": statistics.median(_per_call(fn, one, calls, warmup=max(calls // 10, 20))),
        "rows10k_s": statistics.median(_per_call(fn, big, big_calls, warmup=3)),
    }


def paired_overhead(raw: Callable[[Any], Any], side: Callable[[Any], Any], arg: Any, calls: int, blocks: int) -> float:
    """``side`` over ``raw`` in one process, minus 1: the median over block pairs of the ratio of block medians.

    The two alternate in blocks (``raw`` first in even pairs, ``side`` first in odd ones), so drift in the
    machine's load hits both alike; a ratio per adjacent pair cancels what drift remains.
    """
    per_block = max(calls // blocks, 1)
    _per_call(raw, arg, per_block, warmup=per_block // 5 + 1)
    _per_call(side, arg, per_block, warmup=per_block // 5 + 1)
    ratios = []
    for i in range(blocks):
        first, second = (raw, side) if i % 2 == 0 else (side, raw)
        t1 = statistics.median(_per_call(first, arg, per_block, warmup=0))
        t2 = statistics.median(_per_call(second, arg, per_block, warmup=0))
        raw_t, side_t = (t1, t2) if first is raw else (t2, t1)
        ratios.append(side_t / raw_t)
    return statistics.median(ratios) - 1.0


def check_same(expected: Any, got: Any, what: str) -> None:
    import numpy as np

    if not np.array_equal(np.asarray(expected), np.asarray(got)):
        raise AssertionError(f"{what}: predictions differ from the fitted estimator's")


# ============================================================================================ driver


def bench_python() -> tuple[str, bool, str]:
    """(interpreter for every worker, has MLflow, note). One interpreter for all sides: same sklearn/numpy."""
    if importlib.util.find_spec("mlflow") is not None:
        return sys.executable, True, "this interpreter"
    venv_python = c.BENCH_DIR / ".venv" / "bin" / "python"
    if venv_python.exists():
        probe = subprocess.run([str(venv_python), "-c", "import mlflow, mloop"], capture_output=True, check=False)
        if probe.returncode == 0:
            return str(venv_python), True, str(venv_python)
    return (
        sys.executable,
        False,
        (
            "MLflow is not installed here nor in bench/.venv (`bash bench/run.sh registry` installs it); "
            "reporting mloop and raw only."
        ),
    )


def run_worker(python: str, spec: dict[str, Any], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(SCRIPT), "--worker", c.json.dumps(spec)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    return c.parse_result(proc.returncode, proc.stdout, proc.stderr, spec)


def side_env(side: str, work: Path) -> dict[str, str]:
    if side == MLOOP:
        env = c.side_env(c.MLOOP_SQLITE, work)
        env["MLOOP_HOME"] = str(work / "home")  # model cache + materialised data inside the throwaway folder
        return env
    if side == MLFLOW:
        env = c.side_env(c.MLFLOW_SQLITE, work)
        env["MLFLOW_REGISTRY_URI"] = env["MLFLOW_TRACKING_URI"]
        return env
    return c.quiet_env()


def one(python: str, side: str, spec: dict[str, Any]) -> dict[str, Any]:
    work = c.new_workdir(f"registry-{side}")
    try:
        return run_worker(python, {**spec, "side": side, "work": str(work)}, side_env(side, work), work)
    finally:
        c.remove_workdir(work)


def versions_of(python: str) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version as v, PackageNotFoundError as E\n"
        "out={'python': sys.version.split()[0]}\n"
        "for n in ('mloop','mlflow','scikit-learn','numpy','pandas','pyarrow','skops'):\n"
        "    try: out[n]=v(n)\n    except E: out[n]='not installed'\nprint(json.dumps(out))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return c.json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-500:]}
