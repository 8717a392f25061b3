"""NannyML's CBPE on the data bench_estimation.py wrote: run by bench/.venv-nannyml/bin/python (NannyML's
dependencies clash with mloop's venv), never imported by mloop.

    python nannyml_cbpe.py SPEC.json      SPEC: {"reference": path, "analysis": path, "classes": [...] or null,
                                          "chunk_size": int or null, "repeat": int}

Prints one line ``RESULT {json}``: per chunk and metric NannyML's estimate, its sampling error and the realised
value it computes from y_true, and the wall time of fit + estimate (median over ``repeat``; imports and
reading the Parquet files are outside the timed region).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings

import nannyml as nml
import pandas as pd

METRICS = ["accuracy", "f1", "roc_auc"]


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    reference = pd.read_parquet(spec["reference"])
    analysis = pd.read_parquet(spec["analysis"])
    classes = spec["classes"]
    if classes is None:
        proba: object = "y_pred_proba"
        problem = "classification_binary"
    else:
        proba = {c: f"proba_{c}" for c in classes}
        problem = "classification_multiclass"
    chunking = {"chunk_size": spec["chunk_size"]} if spec["chunk_size"] else {"chunk_number": 1}
    times, frame = [], None
    for _ in range(spec["repeat"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            estimator = nml.CBPE(
                y_pred_proba=proba,
                y_pred="y_pred",
                y_true="y_true",
                metrics=METRICS,
                problem_type=problem,
                **chunking,
            )
            estimator.fit(reference)
            result = estimator.estimate(analysis)
            times.append(time.perf_counter() - start)
        frame = result.filter(period="analysis").to_df()
    assert frame is not None
    chunks = []
    for _, row in frame.iterrows():
        chunks.append(
            {
                "start": int(row[("chunk", "start_index")]),
                "end": int(row[("chunk", "end_index")]),
                **{
                    f"{m}_{part}": float(row[(m, key)])
                    for m in METRICS
                    for part, key in (
                        ("estimate", "value"),
                        ("sampling_error", "sampling_error"),
                        ("realised", "realized"),
                    )
                },
            }
        )
    print("RESULT " + json.dumps({"chunks": chunks, "seconds": statistics.median(times), "version": nml.__version__}))


if __name__ == "__main__":
    main()
