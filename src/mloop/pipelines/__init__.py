"""Pipelines: steps with typed inputs, outputs and parameters, a validated DAG, cached and tracked runs.

See ``docs/pipelines.md``. Importing this package is light: numpy, pandas and scikit-learn are imported only
when a value of theirs is stored or loaded.
"""

from mloop.pipelines.executors.local import LocalExecutor
from mloop.pipelines.history import explain_step, step_logs
from mloop.pipelines.pipeline import Pipeline, load_pipeline
from mloop.pipelines.policies import CachePolicy, MaxAge, Never, Reuse, SameActor
from mloop.pipelines.results import PipelineResult, StepResult
from mloop.pipelines.step import Step, step

__all__ = [
    "CachePolicy",
    "LocalExecutor",
    "MaxAge",
    "Never",
    "Pipeline",
    "PipelineResult",
    "Reuse",
    "SameActor",
    "Step",
    "StepResult",
    "explain_step",
    "load_pipeline",
    "step",
    "step_logs",
]
