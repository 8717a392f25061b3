"""Registry: predict overhead of a loaded model and a 1M-row evaluation, mloop vs MLflow.

    python bench/bench_registry.py                                  # both: predict-overhead evaluate-1m
    python bench/bench_registry.py predict-overhead --repeat 5 --json
    python bench/bench_registry.py evaluate-1m --repeat 3 --profile
    bash bench/run.sh registry predict-overhead                     # in bench/.venv, where MLflow is installed

predict-overhead
    A LogisticRegression and a Pipeline(StandardScaler, LogisticRegression), fitted (seeded) on 5,000 rows x
    20 float features given as a pandas DataFrame. Three sides, each in a fresh subprocess per repeat:
    ``raw`` calls the fitted estimator's ``predict``; ``mloop`` registers it (``mloop.register_model``,
    untimed) and calls ``mloop.load_model("model:x/1").predict``; ``mlflow`` logs it with
    ``mlflow.sklearn.log_model(..., signature=infer_signature(X, y), registered_model_name="x")`` (untimed;
    MLflow's default serialisation, skops, in this version) and calls
    ``mlflow.pyfunc.load_model("models:/x/1").predict``. Timed: ``predict`` on 1 row (per-call median over
    ``--calls`` calls after a warm-up) and on 10,000 rows (per-call median over ``--big-calls`` calls).
    Overhead % = side / raw - 1, from the medians over repeats of the separate processes. Because a few %
    across processes is within this machine's noise, each mloop / MLflow worker also times the in-process
    fitted estimator interleaved with the loaded model (alternating blocks) and reports that paired
    overhead too; it is the sharper number. The MLflow worker also times a second model logged *without*
    a signature, to show how much of its overhead is schema enforcement. Load time: first
    ``load_model`` in the process (mloop fills its local model cache from the artifact store then verifies
    digests; MLflow copies the artifacts to a temp dir) and a second load of the same version.
    Bar: mloop < 5% overhead at both sizes.

evaluate-1m
    A 1,000,000-row x 20-feature binary holdout (seeded numpy), a LogisticRegression fitted on 100,000 other
    rows. mloop: the holdout is written as Parquet and added as a private dataset version (``Dataset.add``,
    untimed), the model registered (untimed), then ``mloop.evaluate("model:clf/1", "data:holdout/1")`` is
    timed end to end: materialising and reading the data version, predict + predict_proba, metrics, the
    single-row latency probe, permutation importance on a 5k sample, the HTML report and storing the record.
    A per-phase breakdown comes from wrapping the module's phase functions (exclusive times). A second
    evaluation in the same process (data already materialised) is timed too. MLflow: the model is logged,
    then ``mlflow.models.evaluate(model_uri, data=df, targets="label", model_type="classifier",
    evaluators="default", evaluator_config={"log_model_explainability": False})`` is timed inside an open
    run. SHAP explainability is off, so neither side computes explanations beyond mloop's permutation
    importance; MLflow receives the DataFrame in memory (its Parquet read time is reported separately, it is
    not in MLflow's timed number, while mloop's includes reading the version). Bar: mloop < 10 s.
    ``--profile`` adds one extra worker per side under cProfile and prints the top 20 functions by cumulative
    time (and, for mloop, the top 20 of mloop's own functions).

Benchmarks are not tests: medians over ``--repeat`` fresh-process runs and ratios are printed, nothing gates
on a time. The machine is small (2 cores) and shared: read ratios, not single numbers.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPT = Path(__file__).resolve()
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


def _columns() -> list[str]:
    return [f"f{i}" for i in range(N_FEATURES)]


def _binary_frame(rows: int, seed: int) -> Any:
    """A seeded binary problem: standard-normal features, logistic labels (weights fixed by seed 12345)."""
    import numpy as np
    import pandas as pd

    weights = np.random.default_rng(12345).normal(size=N_FEATURES)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    logits = (x @ weights) * 0.5
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logits))).astype(np.int64)
    frame = pd.DataFrame(x, columns=_columns())
    frame["label"] = y
    return frame


def _fit(kind: str, frame: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = frame[_columns()], frame["label"].to_numpy()
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


def _time_predict(fn: Callable[[Any], Any], one: Any, big: Any, calls: int, big_calls: int) -> dict[str, float]:
    return {
        "row1_s": statistics.median(_per_call(fn, one, calls, warmup=max(calls // 10, 20))),
        "rows10k_s": statistics.median(_per_call(fn, big, big_calls, warmup=3)),
    }


def _paired(raw: Callable[[Any], Any], side: Callable[[Any], Any], arg: Any, calls: int, blocks: int) -> float:
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


def _check_same(expected: Any, got: Any, what: str) -> None:
    import numpy as np

    if not np.array_equal(np.asarray(expected), np.asarray(got)):
        raise AssertionError(f"{what}: predictions differ from the fitted estimator's")


# ============================================================================================ workers: predict


def w_predict(spec: dict[str, Any]) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    side, calls, big_calls = spec["side"], spec["calls"], spec["big_calls"]
    train = _binary_frame(FIT_ROWS, seed=1)
    probe = _binary_frame(BIG_ROWS, seed=2)[_columns()]
    one = probe.iloc[[0]]
    out: dict[str, Any] = {"side": side, "models": {}}
    if side == MLFLOW:
        import mlflow

        c.mlflow_setup_logging()
        mlflow.set_experiment("bench-registry")
    for kind in MODELS:
        model = _fit(kind, train)
        expected = model.predict(probe)
        res: dict[str, Any] = {}
        if side == RAW:
            fn = model.predict
        elif side == MLOOP:
            import mloop

            name = f"x-{kind}"
            version = mloop.register_model(model, name)
            start = time.perf_counter()
            loaded = mloop.load_model(version.ref)
            res["load_first_s"] = time.perf_counter() - start
            start = time.perf_counter()
            loaded = mloop.load_model(f"model:{name}/{version.version}")
            res["load_again_s"] = time.perf_counter() - start
            fn = loaded.predict
            res["ref"] = version.ref
        else:
            import mlflow
            import mlflow.pyfunc
            import mlflow.sklearn
            from mlflow.models import infer_signature

            name = f"x-{kind}"
            signature = infer_signature(train[_columns()], model.predict(train[_columns()]))
            with mlflow.start_run():
                info = mlflow.sklearn.log_model(model, name="model", signature=signature, registered_model_name=name)
                mlflow.sklearn.log_model(model, name="model-nosig", registered_model_name=f"{name}-nosig")
            res["serialization_format"] = _mlflow_format(info)
            uri = f"models:/{name}/1"
            start = time.perf_counter()
            loaded = mlflow.pyfunc.load_model(uri)
            res["load_first_s"] = time.perf_counter() - start
            start = time.perf_counter()
            loaded = mlflow.pyfunc.load_model(uri)
            res["load_again_s"] = time.perf_counter() - start
            fn = loaded.predict
            nosig = mlflow.pyfunc.load_model(f"models:/{name}-nosig/1")
            _check_same(expected, nosig.predict(probe), f"{side}/{kind} (no signature)")
            res["nosig"] = _time_predict(nosig.predict, one, probe, calls, big_calls)
        _check_same(expected, fn(probe), f"{side}/{kind}")
        res.update(_time_predict(fn, one, probe, calls, big_calls))
        # raw: the estimator against itself, i.e. the noise floor of the paired measurement
        res["paired_row1"] = _paired(model.predict, fn, one, calls, blocks=40)
        res["paired_rows10k"] = _paired(model.predict, fn, probe, spec["paired_big_calls"], blocks=40)
        out["models"][kind] = res
    return out


def _mlflow_format(info: Any) -> str:
    try:
        flavors = info.flavors or {}
        return str(flavors.get("sklearn", {}).get("serialization_format", "?"))
    except Exception:  # best effort: the format is informative only
        return "?"


# ============================================================================================ workers: evaluate


class _PhaseTimer:
    """Exclusive time per phase: a phase nested in another is not counted twice."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._stack: list[list[float]] = []  # [start, child time]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.perf_counter(), 0.0]
            self._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                elapsed = time.perf_counter() - frame[0]
                self.totals[name] = self.totals.get(name, 0.0) + elapsed - frame[1]
                self.counts[name] = self.counts.get(name, 0) + 1
                if self._stack:
                    self._stack[-1][1] += elapsed

        return timed


def _instrument(timer: _PhaseTimer, client: Any) -> None:
    """Wrap the phases of ``mloop.registry.evaluate.evaluate`` (module globals it looks up at call time)."""
    import mloop.datasets.dataset as ds_mod
    import mloop.datasets.tables as tables_mod
    import mloop.evaluation as ev_pkg
    import mloop.registry.evaluate as ev

    for attr, label in (
        ("resolve_model", "resolve model"),
        ("load_model", "load model"),
        ("_frame", "read data (other)"),
        ("_split_xy", "split x/y"),
        ("_predictions", "predict + predict_proba"),
        ("_latency", "latency probe (50 x 1 row)"),
        ("_importance", "permutation importance"),
        ("_report", "HTML report"),
    ):
        setattr(ev, attr, timer.wrap(label, getattr(ev, attr)))
    ds_mod.Dataset._materialise = timer.wrap("read data: materialise blobs", ds_mod.Dataset._materialise)  # type: ignore[method-assign]
    tables_mod.read_table = timer.wrap("read data: parquet -> arrow", tables_mod.read_table)
    ds_mod.Dataset.to_pandas = _to_pandas_timed(timer)  # type: ignore[method-assign]
    ev_pkg.compute_metrics = timer.wrap("metrics", ev_pkg.compute_metrics)
    ev_pkg.infer_task = timer.wrap("infer task", ev_pkg.infer_task)
    client.store.add_evaluation = timer.wrap("store record + lineage", client.store.add_evaluation)
    client.store.add_lineage = timer.wrap("store record + lineage", client.store.add_lineage)


def _to_pandas_timed(timer: _PhaseTimer) -> Callable[..., Any]:
    to_pandas = timer.wrap("read data: arrow -> pandas", lambda table: table.to_pandas())

    def method(self: Any) -> Any:
        return to_pandas(self.to_arrow())

    return method


def w_eval_mloop(spec: dict[str, Any]) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    import pyarrow as pa
    import pyarrow.parquet as pq

    import mloop
    from mloop.tracking.fluent import get_client

    work = Path(spec["work"])
    rows = spec["rows"]
    train = _binary_frame(EVAL_TRAIN_ROWS, seed=11)
    holdout = _binary_frame(rows, seed=22)
    model = _fit("logreg", train)
    folder = work / "holdout"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(holdout, preserve_index=False), folder / "holdout.parquet")
    del holdout
    added = mloop.Dataset.add(folder, "holdout", private=True)
    version = mloop.register_model(model, "clf")
    client = get_client()
    timer = _PhaseTimer()
    if not spec.get("profile"):
        _instrument(timer, client)
    out: dict[str, Any] = {"side": MLOOP, "data": added.dataset.ref, "model": version.ref}
    if spec.get("profile"):
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.enable()
        evaluation = mloop.evaluate(version.ref, added.dataset.ref)
        prof.disable()
        out["seconds"] = time.perf_counter() - start
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(20)
        out["profile"] = text.getvalue()
        tottime = io.StringIO()
        pstats.Stats(prof, stream=tottime).sort_stats("tottime").print_stats(15)
        out["profile_tottime"] = tottime.getvalue()
        own = io.StringIO()
        pstats.Stats(prof, stream=own).sort_stats("cumulative").print_stats(r"/mloop/", 20)
        out["profile_mloop"] = own.getvalue()
    else:
        start = time.perf_counter()
        evaluation = mloop.evaluate(version.ref, added.dataset.ref)
        out["seconds"] = time.perf_counter() - start
        out["breakdown"] = dict(timer.totals)
        out["breakdown"]["(unaccounted)"] = out["seconds"] - sum(timer.totals.values())
        timer.totals.clear()
        start = time.perf_counter()
        mloop.evaluate(version.ref, added.dataset.ref)
        out["second_s"] = time.perf_counter() - start
    out["metrics"] = {k: v for k, v in evaluation.metrics.items() if isinstance(v, (int, float))}
    out["rows"] = evaluation.rows
    out["importance_top"] = list(evaluation.importance[:3]) if evaluation.importance else []
    out["latency_ms"] = evaluation.latency_ms
    return out


def w_eval_mlflow(spec: dict[str, Any]) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    import mlflow
    import mlflow.models
    import mlflow.sklearn
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature

    c.mlflow_setup_logging()
    work = Path(spec["work"])
    rows = spec["rows"]
    train = _binary_frame(EVAL_TRAIN_ROWS, seed=11)
    holdout = _binary_frame(rows, seed=22)
    model = _fit("logreg", train)
    path = work / "holdout.parquet"
    pq.write_table(pa.Table.from_pandas(holdout, preserve_index=False), path)
    start = time.perf_counter()
    import pandas as pd

    df = pd.read_parquet(path)
    read_s = time.perf_counter() - start
    del holdout
    mlflow.set_experiment("bench-registry")
    signature = infer_signature(train[_columns()], model.predict(train[_columns()]))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", signature=signature)
    prof = None
    if spec.get("profile"):
        import cProfile

        prof = cProfile.Profile()
    with mlflow.start_run():
        start = time.perf_counter()
        if prof is not None:
            prof.enable()
        result = mlflow.models.evaluate(
            info.model_uri,
            data=df,
            targets="label",
            model_type="classifier",
            evaluators="default",
            evaluator_config={"log_model_explainability": False},
        )
        if prof is not None:
            prof.disable()
        seconds = time.perf_counter() - start
    extra: dict[str, Any] = {}
    if prof is not None:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(20)
        extra["profile"] = text.getvalue()
        tottime = io.StringIO()
        pstats.Stats(prof, stream=tottime).sort_stats("tottime").print_stats(15)
        extra["profile_tottime"] = tottime.getvalue()
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return {
        "side": MLFLOW,
        "seconds": seconds,
        "read_parquet_s": read_s,
        "metrics": metrics,
        "artifacts": sorted(result.artifacts),
        **extra,
    }


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


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e6:,.1f} µs"


def run_predict(
    python: str, sides: list[str], repeat: int, calls: int, big_calls: int, paired_big_calls: int
) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for rep in range(repeat):
        for side in c.rotated(sides, rep):
            spec = {"task": "predict", "calls": calls, "big_calls": big_calls, "paired_big_calls": paired_big_calls}
            res = one(python, side, spec)
            samples[side].append(res)
            bits = ", ".join(
                f"{k} 1row {_us(v['row1_s'])} 10k {c.fmt_s(v['rows10k_s'])}" for k, v in res["models"].items()
            )
            c.log(f"  predict rep {rep + 1} {side:<6} {bits}")
    summary: dict[str, Any] = {}
    for kind in MODELS:
        row: dict[str, Any] = {}
        for side in sides:
            per = [s["models"][kind] for s in samples[side]]
            entry: dict[str, Any] = {
                "row1_s": c.median(p["row1_s"] for p in per),
                "rows10k_s": c.median(p["rows10k_s"] for p in per),
            }
            for key in ("load_first_s", "load_again_s", "paired_row1", "paired_rows10k"):
                if key in per[0]:
                    entry[key] = c.median(p[key] for p in per)
            for key in ("paired_row1", "paired_rows10k"):
                if key in per[0]:
                    entry[f"{key}_range"] = [min(p[key] for p in per), max(p[key] for p in per)]
            if "nosig" in per[0]:
                entry["nosig_row1_s"] = c.median(p["nosig"]["row1_s"] for p in per)
                entry["nosig_rows10k_s"] = c.median(p["nosig"]["rows10k_s"] for p in per)
                entry["serialization_format"] = per[0].get("serialization_format")
            row[side] = entry
        if RAW in row:
            base = row[RAW]
            for side in sides:
                if side == RAW:
                    continue
                for size in ("row1_s", "rows10k_s"):
                    r = c.ratio(row[side][size], base[size])
                    row[side][f"overhead_{size[:-2]}"] = None if r is None else r - 1.0
                if "nosig_row1_s" in row[side]:
                    for size in ("row1", "rows10k"):
                        r = c.ratio(row[side][f"nosig_{size}_s"], base[f"{size}_s"])
                        row[side][f"nosig_overhead_{size}"] = None if r is None else r - 1.0
        summary[kind] = row
    bar = None
    if MLOOP in sides:
        worst = max(
            max(v for v in (summary[k][MLOOP].get(f) for f in ("paired_row1", "paired_rows10k")) if v is not None)
            for k in MODELS
        )
        bar = {"bar": f"mloop overhead < {BAR_OVERHEAD:.0%} at 1 and 10k rows (paired, in-process)",
               "worst_paired_overhead": worst, "pass": worst < BAR_OVERHEAD}  # fmt: skip
        if RAW in sides:
            bar["noise_floor"] = max(
                abs(v) for k in MODELS for f in ("paired_row1", "paired_rows10k")
                if (v := summary[k][RAW].get(f)) is not None
            )  # fmt: skip
    return {"summary": summary, "bar": bar, "samples": samples, "calls": calls, "big_calls": big_calls}


def show_predict(doc: dict[str, Any]) -> None:
    for kind, row in doc["summary"].items():
        rows = []
        for side, e in row.items():
            rows.append([
                side, _us(e["row1_s"]), _pct(e.get("overhead_row1")), _pct(e.get("paired_row1")),
                c.fmt_s(e["rows10k_s"]), _pct(e.get("overhead_rows10k")), _pct(e.get("paired_rows10k")),
                c.fmt_s(e.get("load_first_s")), c.fmt_s(e.get("load_again_s")),
            ])  # fmt: skip
            if "nosig_row1_s" in e:
                rows.append([
                    f"{side} (no signature)", _us(e["nosig_row1_s"]), _pct(e.get("nosig_overhead_row1")), "",
                    c.fmt_s(e["nosig_rows10k_s"]), _pct(e.get("nosig_overhead_rows10k")), "", "", "",
                ])  # fmt: skip
        n = len(next(iter(doc["samples"].values())))
        spread = "; ".join(
            f"{side} {_pct(e['paired_row1_range'][0])}..{_pct(e['paired_row1_range'][1])} (1 row), "
            f"{_pct(e['paired_rows10k_range'][0])}..{_pct(e['paired_rows10k_range'][1])} (10k)"
            for side, e in row.items()
            if "paired_row1_range" in e
        )
        c.print_table(
            f"predict overhead — {kind} ({N_FEATURES} features, DataFrame input), medians of {n} processes",
            ["side", "1 row / call", "vs raw", "paired", "10k rows / call", "vs raw", "paired", "load 1st", "load 2nd"],
            rows,
            note="vs raw: medians across separate processes (noisy). paired: the side against the fitted estimator in "
            "the same process, alternating blocks; on the raw row it is the estimator against itself (noise floor).\n"
            f"paired, lowest..highest process: {spread}",
        )  # fmt: skip
    if doc.get("bar"):
        b = doc["bar"]
        floor = f" (noise floor, raw vs itself: ±{b['noise_floor'] * 100:.1f}%)" if "noise_floor" in b else ""
        verdict = "PASS" if b["pass"] else "FAIL"
        print(f"bar: {b['bar']}: worst {_pct(b['worst_paired_overhead'])}{floor} -> {verdict}")


def run_evaluate(python: str, sides: list[str], repeat: int, rows: int, profile: bool) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for rep in range(repeat):
        for side in c.rotated(sides, rep):
            task = "eval_mloop" if side == MLOOP else "eval_mlflow"
            res = one(python, side, {"task": task, "rows": rows})
            samples[side].append(res)
            c.log(f"  evaluate rep {rep + 1} {side:<6} {c.fmt_s(res['seconds'])}")
    summary: dict[str, Any] = {s: {"seconds": c.median(r["seconds"] for r in samples[s])} for s in sides}
    if MLOOP in samples:
        m = samples[MLOOP]
        summary[MLOOP]["second_s"] = c.median(r["second_s"] for r in m)
        phases = sorted({k for r in m for k in r["breakdown"]})
        summary[MLOOP]["breakdown"] = {p: c.median(r["breakdown"].get(p, 0.0) for r in m) for p in phases}
        summary[MLOOP]["metrics"] = m[0]["metrics"]
    if MLFLOW in samples:
        summary[MLFLOW]["read_parquet_s"] = c.median(r["read_parquet_s"] for r in samples[MLFLOW])
        summary[MLFLOW]["metrics"] = samples[MLFLOW][0]["metrics"]
        summary[MLFLOW]["artifacts"] = samples[MLFLOW][0]["artifacts"]
    doc: dict[str, Any] = {"rows": rows, "summary": summary, "samples": samples}
    if MLOOP in summary and MLFLOW in summary:
        doc["ratio_mloop_over_mlflow"] = c.ratio(summary[MLOOP]["seconds"], summary[MLFLOW]["seconds"])
    if MLOOP in summary:
        secs = summary[MLOOP]["seconds"]
        doc["bar"] = {"bar": f"mloop.evaluate on {rows:,} rows < {BAR_EVALUATE_S:.0f} s", "seconds": secs,
                      "pass": secs < BAR_EVALUATE_S}  # fmt: skip
    if profile:
        doc["profile"] = {}
        for side in sides:
            c.log(f"  evaluate: one more {side} worker under cProfile")
            task = "eval_mloop" if side == MLOOP else "eval_mlflow"
            res = one(python, side, {"task": task, "rows": rows, "profile": True})
            doc["profile"][side] = {
                "seconds": res["seconds"], "cumulative": res["profile"], "tottime": res["profile_tottime"],
                "mloop_only": res.get("profile_mloop"),
            }  # fmt: skip
    return doc


def show_evaluate(doc: dict[str, Any]) -> None:
    s = doc["summary"]
    n = len(doc["samples"][next(iter(doc["samples"]))])
    rows = []
    if MLOOP in s:
        rows.append(["mloop.evaluate (end to end, incl. reading the version)", c.fmt_s(s[MLOOP]["seconds"])])
        rows.append(["mloop.evaluate again in the same process (data materialised)", c.fmt_s(s[MLOOP]["second_s"])])
    if MLFLOW in s:
        rows.append(["mlflow.models.evaluate (DataFrame in memory, SHAP off)", c.fmt_s(s[MLFLOW]["seconds"])])
        rows.append(["  (pd.read_parquet of the holdout, not in MLflow's time)", c.fmt_s(s[MLFLOW]["read_parquet_s"])])
    if doc.get("ratio_mloop_over_mlflow") is not None:
        rows.append(["ratio mloop / MLflow", f"{doc['ratio_mloop_over_mlflow']:.2f}x"])
    c.print_table(f"evaluate {doc['rows']:,} rows x {N_FEATURES} features, medians of {n} processes",
                  ["what", "median"], rows)  # fmt: skip
    if MLOOP in s:
        total = s[MLOOP]["seconds"]
        bd = sorted(s[MLOOP]["breakdown"].items(), key=lambda kv: -kv[1])
        c.print_table("mloop.evaluate breakdown (exclusive, medians)", ["phase", "seconds", "share"],
                      [[k, f"{v:.3f}", f"{v / total:.0%}"] for k, v in bd])  # fmt: skip
    if doc.get("bar"):
        b = doc["bar"]
        print(f"bar: {b['bar']}: {c.fmt_s(b['seconds'])} -> {'PASS' if b['pass'] else 'FAIL'}")
    for side, p in (doc.get("profile") or {}).items():
        what = "mloop.evaluate" if side == MLOOP else "mlflow.models.evaluate"
        print(f"\ncProfile of one {what} ({c.fmt_s(p['seconds'])} under the profiler), top 20 cumulative:")
        print(p["cumulative"])
        if p.get("mloop_only"):
            print("mloop's own functions, top 20 cumulative:")
            print(p["mloop_only"])
        print("top 15 by own time:")
        print(p["tottime"])


def main() -> None:
    parser = c.base_parser(__doc__.split("\n\n")[0])
    parser._option_string_actions["--sides"].help = "comma-separated subset of raw,mloop,mlflow (default: all)"
    parser._option_string_actions["--repeat"].help = "fresh-subprocess repeats per side, predict-overhead (default 5)"
    parser.add_argument(
        "benches", nargs="*", metavar="BENCH", help=f"which to run: {', '.join(BENCHES)} (default: all)"
    )
    parser.add_argument("--calls", type=int, default=2000, help="1-row predict calls per measurement (default 2000)")
    parser.add_argument("--big-calls", type=int, default=50, help="10k-row predict calls per measurement (default 50)")
    parser.add_argument(
        "--paired-big-calls",
        type=int,
        default=1000,
        help="10k-row calls per side in the paired in-process comparison (default 1000)",
    )
    parser.add_argument("--rows", type=int, default=EVAL_ROWS, help="evaluate-1m holdout rows (default 1,000,000)")
    parser.add_argument("--eval-repeat", type=int, default=3, help="repeats for evaluate-1m (default 3)")
    parser.add_argument("--profile", action="store_true", help="evaluate-1m: one extra run per side under cProfile")
    args = parser.parse_args()
    benches = args.benches or list(BENCHES)
    if unknown_benches := [b for b in benches if b not in BENCHES]:
        raise SystemExit(f"unknown benchmark(s) {unknown_benches}; choose from {', '.join(BENCHES)}")
    python, has_mlflow, note = bench_python()
    wanted = [s.strip() for s in args.sides.split(",")] if args.sides else [RAW, MLOOP, MLFLOW]
    unknown = [s for s in wanted if s not in (RAW, MLOOP, MLFLOW)]
    if unknown:
        raise SystemExit(f"unknown side(s) {unknown}; choose from raw, mloop, mlflow")
    if not has_mlflow:
        c.log(note)
        wanted = [s for s in wanted if s != MLFLOW]
    doc: dict[str, Any] = {"versions": _versions(python), "python": python, "repeat": args.repeat}
    if "predict-overhead" in benches:
        c.log(f"predict-overhead: sides {wanted}, {args.repeat} repeats")
        doc["predict-overhead"] = run_predict(
            python, wanted, args.repeat, args.calls, args.big_calls, args.paired_big_calls
        )
    if "evaluate-1m" in benches:
        sides = [s for s in wanted if s != RAW]
        c.log(f"evaluate-1m: sides {sides}, {args.eval_repeat} repeats, {args.rows:,} rows")
        doc["evaluate-1m"] = run_evaluate(python, sides, args.eval_repeat, args.rows, args.profile)
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
        return
    print(f"versions: {doc['versions']}  (workers run {python})")
    if "predict-overhead" in doc:
        show_predict(doc["predict-overhead"])
    if "evaluate-1m" in doc:
        show_evaluate(doc["evaluate-1m"])


def _versions(python: str) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version as v, PackageNotFoundError as E\n"
        "out={'python': sys.version.split()[0]}\n"
        "for n in ('mloop','mlflow','scikit-learn','numpy','pandas','pyarrow','skops'):\n"
        "    try: out[n]=v(n)\n    except E: out[n]='not installed'\nprint(json.dumps(out))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return c.json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-500:]}


if __name__ == "__main__":
    if c.is_worker():
        c.worker_main({"predict": w_predict, "eval_mloop": w_eval_mloop, "eval_mlflow": w_eval_mlflow})
    else:
        main()
