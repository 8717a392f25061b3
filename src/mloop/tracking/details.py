"""One run with what is known about it: its experiment's name, its artifacts and a summary of its environment.

``describe_run`` is what ``mloop runs show`` prints; :meth:`RunDetails.to_dict` is its ``--json`` shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.entities import ArtifactEntry, RunRecord
from mloop.errors import NotFound

if TYPE_CHECKING:
    from mloop.tracking.client import Client
    from mloop.tracking.run import Run

__all__ = ["EnvironmentSummary", "RunDetails", "describe_run"]


@dataclass(frozen=True)
class EnvironmentSummary:
    """The parts of a captured environment a person looks at first (the full record is in the store)."""

    python: str | None
    implementation: str | None
    platform: str
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool | None
    packages: int  # how many packages were installed
    command: str

    @classmethod
    def of(cls, env: Mapping[str, Any]) -> EnvironmentSummary:
        """The summary of a stored environment record (missing parts are ``None`` or empty)."""
        python, plat, git = env.get("python") or {}, env.get("platform") or {}, env.get("git") or {}
        return cls(
            python=python.get("version"),
            implementation=python.get("implementation"),
            platform=" ".join(str(plat.get(k, "")) for k in ("system", "release", "machine")).strip(),
            git_commit=git.get("commit"),
            git_branch=git.get("branch"),
            git_dirty=git.get("dirty"),
            packages=len(env.get("packages") or {}),
            command=" ".join(env.get("command") or []),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python, "implementation": self.implementation, "platform": self.platform,
            "git_commit": self.git_commit, "git_branch": self.git_branch, "git_dirty": self.git_dirty,
            "packages": self.packages, "command": self.command,
        }  # fmt: skip


@dataclass(frozen=True)
class RunDetails:
    """A run, its experiment's name, its artifacts (by path) and its environment (``None`` if not captured)."""

    run: RunRecord
    experiment: str | None
    artifacts: Sequence[ArtifactEntry]
    environment: EnvironmentSummary | None

    def to_dict(self) -> dict[str, Any]:
        """The run's JSON shape with the experiment's name after ``name``, then ``artifacts`` and ``environment``."""
        shape = self.run.to_dict()
        head = {"run_id": shape.pop("run_id"), "name": shape.pop("name"), "experiment": self.experiment}
        return {**head, **shape, "artifacts": [a.to_dict() for a in self.artifacts],
                "environment": None if self.environment is None else self.environment.to_dict()}  # fmt: skip


def describe_run(client: Client, run: str | Run | RunRecord) -> RunDetails:
    """``run`` (an id, ``run:<id>``, a unique first or last 8+ characters, a handle or a record) with its
    experiment's name, its artifacts and a summary of the environment it ran in."""
    record = client.get_run(run)
    try:
        experiment: str | None = client.get_experiment(record.experiment_id).name
    except NotFound:
        experiment = None
    environment = None
    if record.environment_digest is not None:
        with suppress(NotFound):  # its record is gone: shown as not captured
            environment = EnvironmentSummary.of(client.store.get_environment(record.environment_digest))
    return RunDetails(record, experiment, client.list_artifacts(record), environment)
