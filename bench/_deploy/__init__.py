"""Helpers of ``bench/bench_deploy.py`` (endpoints: router overhead and shadow traffic, issue #12)."""
