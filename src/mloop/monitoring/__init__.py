"""Monitoring: what a model sees and says in production, compared with what it was trained on.

Layering: beside :mod:`mloop.deployments` and :mod:`mloop.pipelines`; reads the collector's Parquet files, never
imports :mod:`mloop.serving` or :mod:`mloop.deployments`. The statistics are pure functions without I/O:

* :mod:`mloop.monitoring.reference` -- the reference sketch of a table (quantile bins and exact counts per
  numeric column, counts per category), computed once and stored as JSON beside the dataset version;
* :mod:`mloop.monitoring.binned` -- a window summarised against that sketch (counts that add across windows);
* :mod:`mloop.monitoring.drift_stats` -- the statistics themselves, exact (as scipy computes them) and binned;
* :mod:`mloop.monitoring.drift` -- per-feature drift results, the automatic choice of method, dataset drift.

Monitors, incremental windows over collected data, signals, alerts and reports build on these in their own
modules.
"""
