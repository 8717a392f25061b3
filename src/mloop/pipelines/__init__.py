"""Pipelines: steps with typed inputs, outputs and parameters, a validated DAG, cached and tracked runs.

See ``docs/pipelines.md``. Importing this package is light: numpy, pandas and scikit-learn are imported only
when a value of theirs is stored or loaded; Dask only when a step is submitted to a ``dask`` compute target.
"""

from mloop.pipelines.executors import Executor
from mloop.pipelines.executors.dask import DaskExecutor
from mloop.pipelines.executors.local import LocalExecutor
from mloop.pipelines.files import scratch_folder
from mloop.pipelines.history import explain_step, step_logs
from mloop.pipelines.pipeline import Pipeline, load_pipeline
from mloop.pipelines.policies import CachePolicy, MaxAge, Never, Reuse, SameActor
from mloop.pipelines.publish import Published, publish
from mloop.pipelines.references import DatasetRef, dataset_input
from mloop.pipelines.results import PipelineResult, StepResult
from mloop.pipelines.resume import resume
from mloop.pipelines.script import script_step
from mloop.pipelines.step import Step, step
from mloop.pipelines.stepcontext import StepContext, get_step_context
from mloop.pipelines.trigger import trigger

__all__ = [
    "CachePolicy",
    "DaskExecutor",
    "DatasetRef",
    "Executor",
    "LocalExecutor",
    "MaxAge",
    "Never",
    "Pipeline",
    "PipelineResult",
    "Published",
    "Reuse",
    "SameActor",
    "Step",
    "StepContext",
    "StepResult",
    "dataset_input",
    "explain_step",
    "get_step_context",
    "load_pipeline",
    "publish",
    "resume",
    "scratch_folder",
    "script_step",
    "step",
    "step_logs",
    "trigger",
]
