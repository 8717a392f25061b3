"""Helpers of ``bench/bench_serve.py``: the bare Starlette peer, wrk, server processes, the overload test."""
