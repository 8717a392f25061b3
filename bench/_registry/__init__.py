"""Parts of ``bench/bench_registry.py`` (predict overhead, 1M-row evaluation), split by noun; run that script."""
