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

The code lives in ``bench/_registry/`` (common, predict, evaluate); this script is the command line and the entry
point of every worker subprocess (``--worker``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from _registry.common import BENCHES, EVAL_ROWS, MLFLOW, MLOOP, RAW, bench_python, versions_of
from _registry.evaluate import run_evaluate, show_evaluate, w_eval_mlflow, w_eval_mloop
from _registry.predict import run_predict, show_predict, w_predict


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
    doc: dict[str, Any] = {"versions": versions_of(python), "python": python, "repeat": args.repeat}
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


if __name__ == "__main__":
    if c.is_worker():
        c.worker_main({"predict": w_predict, "eval_mloop": w_eval_mloop, "eval_mlflow": w_eval_mlflow})
    else:
        main()
