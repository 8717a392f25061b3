"""Experiments: named groups of runs."""

from __future__ import annotations

from typing import Protocol

from mloop.entities import Experiment, Page

__all__ = ["WRITES", "ExperimentEvents", "ExperimentStore"]


class ExperimentEvents:
    CREATED = "experiment.created"


WRITES: dict[str, str | None] = {
    "create_experiment": ExperimentEvents.CREATED,
    "get_or_create_experiment": ExperimentEvents.CREATED,
}


class ExperimentStore(Protocol):
    def create_experiment(self, name: str, *, actor: str) -> Experiment:
        """Create; :class:`~mloop.errors.AlreadyExists` if the name is taken."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment: ...

    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        """Safe under concurrent callers: exactly one experiment of that name results."""
        ...

    def list_experiments(self, *, cursor: str | None = None, limit: int = 100) -> Page[Experiment]: ...
