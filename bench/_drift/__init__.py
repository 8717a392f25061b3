"""Helpers of bench/bench_drift.py: the generated tables (data.py) and the Evidently worker (evidently_worker.py)."""
