"""predict-overhead: the worker (raw / mloop / MLflow pyfunc predict) and the driver's summary and table."""

from __future__ import annotations

import time
import warnings
from typing import Any

import _common as c

from _registry.common import (
    BAR_OVERHEAD,
    BIG_ROWS,
    FIT_ROWS,
    MLFLOW,
    MLOOP,
    MODELS,
    N_FEATURES,
    RAW,
    binary_frame,
    check_same,
    feature_columns,
    fit_model,
    one,
    paired_overhead,
    time_predict,
)

# ============================================================================================ workers: predict


def w_predict(spec: dict[str, Any]) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    side, calls, big_calls = spec["side"], spec["calls"], spec["big_calls"]
    train = binary_frame(FIT_ROWS, seed=1)
    probe = binary_frame(BIG_ROWS, seed=2)[feature_columns()]
    one = probe.iloc[[0]]
    out: dict[str, Any] = {"side": side, "models": {}}
    if side == MLFLOW:
        import mlflow

        c.mlflow_setup_logging()
        mlflow.set_experiment("bench-registry")
    for kind in MODELS:
        model = fit_model(kind, train)
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
            signature = infer_signature(train[feature_columns()], model.predict(train[feature_columns()]))
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
            check_same(expected, nosig.predict(probe), f"{side}/{kind} (no signature)")
            res["nosig"] = time_predict(nosig.predict, one, probe, calls, big_calls)
        check_same(expected, fn(probe), f"{side}/{kind}")
        res.update(time_predict(fn, one, probe, calls, big_calls))
        # raw: the estimator against itself, i.e. the noise floor of the paired measurement
        res["paired_row1"] = paired_overhead(model.predict, fn, one, calls, blocks=40)
        res["paired_rows10k"] = paired_overhead(model.predict, fn, probe, spec["paired_big_calls"], blocks=40)
        out["models"][kind] = res
    return out


def _mlflow_format(info: Any) -> str:
    try:
        flavors = info.flavors or {}
        return str(flavors.get("sklearn", {}).get("serialization_format", "?"))
    except Exception:  # best effort: the format is informative only
        return "?"


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
