"""mloop: self-hosted MLOps in one tool.

The public SDK is re-exported here and imported lazily, so ``import mloop`` (and ``mloop --help``) stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "mloop.tracking.client",
    "approve": "mloop.registry.api",
    "automation_history": "mloop.automation.sdk",
    "create_automation": "mloop.automation.sdk",
    "delete_automation": "mloop.automation.sdk",
    "list_automations": "mloop.automation.sdk",
    "evaluate": "mloop.registry.api",
    "load_model": "mloop.registry.api",
    "promote": "mloop.registry.api",
    "register_if_better": "mloop.tracking.registering",
    "register_model": "mloop.tracking.registering",
    "rollback": "mloop.registry.api",
    "gates": "mloop.registry",
    "Dataset": "mloop.datasets.dataset",
    "get_dataset": "mloop.datasets.dataset",
    "holdout_access": "mloop.datasets.access",
    "split_dataset": "mloop.datasets.splits",
    "collected_data": "mloop.deployments.sdk",
    "create_endpoint": "mloop.deployments.sdk",
    "delete_endpoint": "mloop.deployments.sdk",
    "get_endpoint": "mloop.deployments.sdk",
    "list_endpoints": "mloop.deployments.sdk",
    "promote_endpoint": "mloop.deployments.sdk",
    "rollback_endpoint": "mloop.deployments.sdk",
    "update_endpoint": "mloop.deployments.sdk",
    "Run": "mloop.tracking.run",
    "RunTable": "mloop.tracking.search",
    "active_run": "mloop.tracking.fluent",
    "autolog": "mloop.tracking.autolog",
    "end_run": "mloop.tracking.fluent",
    "get_client": "mloop.tracking.fluent",
    "get_run": "mloop.tracking.fluent",
    "init_workspace": "mloop.workspace",
    "log_artifact": "mloop.tracking.fluent",
    "log_metric": "mloop.tracking.fluent",
    "log_metrics": "mloop.tracking.fluent",
    "log_param": "mloop.tracking.fluent",
    "log_params": "mloop.tracking.fluent",
    "search_runs": "mloop.tracking.fluent",
    "set_tags": "mloop.tracking.fluent",
    "start_run": "mloop.tracking.fluent",
    "use_client": "mloop.tracking.fluent",
}

__all__ = [
    "Client",
    "Dataset",
    "Run",
    "RunTable",
    "__version__",
    "active_run",
    "approve",
    "autolog",
    "automation_history",
    "collected_data",
    "create_automation",
    "create_endpoint",
    "delete_automation",
    "delete_endpoint",
    "end_run",
    "evaluate",
    "gates",
    "get_client",
    "get_dataset",
    "get_endpoint",
    "get_run",
    "holdout_access",
    "init_workspace",
    "list_automations",
    "list_endpoints",
    "load_model",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "promote",
    "promote_endpoint",
    "register_if_better",
    "register_model",
    "rollback",
    "rollback_endpoint",
    "search_runs",
    "set_tags",
    "split_dataset",
    "start_run",
    "update_endpoint",
    "use_client",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    if name == "gates":
        return import_module("mloop.registry.gates")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return __all__
