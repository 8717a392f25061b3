"""Evaluation: metrics by task, champion/challenger comparison with confidence, and reports.

Pure functions over numpy arrays (no store, no I/O), so the registry's promotion gates, pipelines and the CLI
can all call them. matplotlib is imported only when a report is rendered.
"""

from mloop.evaluation.compare import (
    METRICS,
    BootstrapResult,
    McNemarResult,
    beats,
    mcnemar,
    paired_bootstrap,
)
from mloop.evaluation.metrics import (
    TASKS,
    Task,
    anomaly_metrics,
    classification_metrics,
    compute_metrics,
    infer_task,
    regression_metrics,
)
from mloop.evaluation.report import evaluation_report_html, evaluation_report_png, roc_curve_points

__all__ = [
    "METRICS",
    "TASKS",
    "BootstrapResult",
    "McNemarResult",
    "Task",
    "anomaly_metrics",
    "beats",
    "classification_metrics",
    "compute_metrics",
    "evaluation_report_html",
    "evaluation_report_png",
    "infer_task",
    "mcnemar",
    "paired_bootstrap",
    "regression_metrics",
    "roc_curve_points",
]
