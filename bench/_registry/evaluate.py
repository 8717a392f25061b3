"""evaluate-1m: the mloop and MLflow evaluation workers and the driver's summary and tables."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c

from _registry.common import (
    BAR_EVALUATE_S,
    EVAL_TRAIN_ROWS,
    MLFLOW,
    MLOOP,
    N_FEATURES,
    binary_frame,
    feature_columns,
    fit_model,
    one,
)

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
    train = binary_frame(EVAL_TRAIN_ROWS, seed=11)
    holdout = binary_frame(rows, seed=22)
    model = fit_model("logreg", train)
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
    train = binary_frame(EVAL_TRAIN_ROWS, seed=11)
    holdout = binary_frame(rows, seed=22)
    model = fit_model("logreg", train)
    path = work / "holdout.parquet"
    pq.write_table(pa.Table.from_pandas(holdout, preserve_index=False), path)
    start = time.perf_counter()
    import pandas as pd

    df = pd.read_parquet(path)
    read_s = time.perf_counter() - start
    del holdout
    mlflow.set_experiment("bench-registry")
    signature = infer_signature(train[feature_columns()], model.predict(train[feature_columns()]))
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
