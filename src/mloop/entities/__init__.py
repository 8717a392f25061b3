"""Frozen value objects shared by every layer. No I/O here."""

from mloop.entities.automations import ActionClaim, Automation, AutomationAction
from mloop.entities.datasets import Dataset, DatasetVersion, LineageEdge, ManifestEntry
from mloop.entities.endpoints import Endpoint
from mloop.entities.events import Event
from mloop.entities.ids import new_id, now_ms
from mloop.entities.models import Approval, Evaluation, Model, ModelFile, ModelVersion
from mloop.entities.monitors import AlertChange, Monitor, MonitorAlert, MonitorResult
from mloop.entities.page import Page, decode_cursor, encode_cursor, iter_pages
from mloop.entities.pipelines import PipelineParam, PipelineVersion, PublishedPipeline, Schedule, ScheduleFire
from mloop.entities.tracking import ArtifactEntry, Experiment, Metric, RunRecord, RunStatus

__all__ = [
    "ActionClaim",
    "AlertChange",
    "Approval",
    "ArtifactEntry",
    "Automation",
    "AutomationAction",
    "Dataset",
    "DatasetVersion",
    "Endpoint",
    "Evaluation",
    "Event",
    "Experiment",
    "LineageEdge",
    "ManifestEntry",
    "Metric",
    "Model",
    "ModelFile",
    "ModelVersion",
    "Monitor",
    "MonitorAlert",
    "MonitorResult",
    "Page",
    "PipelineParam",
    "PipelineVersion",
    "PublishedPipeline",
    "RunRecord",
    "RunStatus",
    "Schedule",
    "ScheduleFire",
    "decode_cursor",
    "encode_cursor",
    "iter_pages",
    "new_id",
    "now_ms",
]
