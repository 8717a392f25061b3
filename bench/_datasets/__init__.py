"""Parts of ``bench/bench_datasets.py`` (mloop data add vs dvc add), split by noun; run that script."""
