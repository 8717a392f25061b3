"""``Client``: the explicit tracking API over one workspace (the fluent functions use one too)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.context import Context, RunHandle
from mloop.entities import ArtifactEntry, Event, Experiment, Metric, Page, RunRecord, now_ms
from mloop.errors import AccessDenied, InvalidInput, NotFound
from mloop.guard import OVERRIDE, OVERRIDE_READ, current_grant, tainted_by
from mloop.refs import parse_ref
from mloop.tracking.buffer import Flusher
from mloop.tracking.environment import EnvironmentCapture
from mloop.tracking.names import random_run_name
from mloop.tracking.run import Run, _text
from mloop.tracking.search import RunTable
from mloop.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


__all__ = ["DEFAULT_EXPERIMENT", "Client", "run_id_of"]

DEFAULT_EXPERIMENT = "Default"
_PAGE = 1000


def run_id_of(run: str | Run | RunRecord) -> str:
    """Accept a run handle, a stored run, ``run:<id>`` or a bare id."""
    if isinstance(run, (Run, RunRecord)):
        return run.id
    return parse_ref(run, default_kind="run").name


class Client(Context):
    """Tracking over one workspace: a :class:`~mloop.context.Context` with experiments and runs.

    ``Client()`` resolves the workspace like the CLI does (see :mod:`mloop.config`).
    """

    def __init__(
        self, uri: str | None = None, artifact_uri: str | None = None, *, workspace: Workspace | None = None
    ) -> None:
        super().__init__(uri, artifact_uri, workspace=workspace)
        self._env = EnvironmentCapture()
        self.flusher = Flusher()
        self._stored_envs: set[str] = set()
        self._experiments: dict[str, str] = {}

    @property
    def environment_capture(self) -> EnvironmentCapture:
        return self._env

    def packages(self) -> dict[str, str]:
        return self._env.packages()  # one cache for environment capture and model loading

    def close(self) -> None:
        self.flusher.stop()
        super().close()

    def __enter__(self) -> Client:
        return self

    # experiments ----------------------------------------------------------------------------------------
    def experiment_id(self, experiment: str | None, *, create: bool = False) -> str:
        name = experiment or DEFAULT_EXPERIMENT
        cached = self._experiments.get(name)
        if cached is not None:
            return cached
        if create:
            exp = self.store.get_or_create_experiment(name, actor=self.actor)
        else:
            exp = self.store.get_experiment_by_name(name)
        self._experiments[name] = exp.id
        return exp.id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def list_experiments(self) -> list[Experiment]:
        return list(self._all(lambda cursor: self.store.list_experiments(cursor=cursor, limit=_PAGE)))

    # runs -----------------------------------------------------------------------------------------------
    def resolve_run_id(self, run: str | RunHandle | RunRecord) -> str:
        """A full run id from a handle, a stored run, ``run:<id>``, an id, or a unique start or end of an id."""
        return run.id if isinstance(run, (Run, RunRecord)) else super().resolve_run_id(run)

    def start_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        parent: str | Run | RunRecord | None = None,
        capture_environment: bool = True,
        on_end: Callable[[Run], None] | None = None,
    ) -> Run:
        """Start a run (RUNNING) in ``experiment`` (created on first use)."""
        grant = current_grant()
        if grant is not None and grant.kind == OVERRIDE:
            raise AccessDenied(
                f"Cannot start a run inside holdout_access({grant.purpose!r}): nothing trained or logged may see a "
                "private holdout. Leave the holdout_access block first."
            )
        exp_id = self.experiment_id(experiment, create=True)
        env_digest = None
        if capture_environment:
            env, env_digest = self._env.capture_with_digest()
            if env_digest not in self._stored_envs:
                self.store.put_environment(env_digest, env)
                self._stored_envs.add(env_digest)
        record = self.store.create_run(
            exp_id,
            name=name or random_run_name(),
            actor=self.actor,
            params={k: _text(v) for k, v in (params or {}).items()},
            tags={k: _text(v) for k, v in (tags or {}).items()},
            parent_id=None if parent is None else self.resolve_run_id(parent),
            environment_digest=env_digest,
        )
        for holdout in sorted(tainted_by()):  # an override read it earlier in this context
            self.store.add_lineage(holdout, f"run:{record.id}", OVERRIDE_READ, actor=self.actor)
        return Run(self, record, on_end=on_end)

    def get_run(self, run: str | Run | RunRecord) -> RunRecord:
        return self.store.get_run(self.resolve_run_id(run))

    def get_metric_history(self, run: str | Run | RunRecord, key: str) -> list[Metric]:
        return self.store.get_metric_history(self.resolve_run_id(run), key)

    def get_environment(self, run: str | Run | RunRecord) -> dict[str, Any]:
        record = self.get_run(run)
        if record.environment_digest is None:
            raise NotFound(f"Run {record.id} was started without environment capture.")
        return self.store.get_environment(record.environment_digest)

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int | None = 1000,
        *,
        include_deleted: bool = False,
        deleted_only: bool = False,
    ) -> RunTable:
        """Runs matching ``filter`` (e.g. ``"metrics.acc > 0.9 and params.model = 'rf'"``), newest first."""
        if max_results is not None and max_results < 1:
            raise InvalidInput(f"max_results must be at least 1, got {max_results}.")
        exp_ids: list[str] | None = None
        if experiment is not None:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            exp_ids = []
            for name in names:
                try:
                    exp_ids.append(self.experiment_id(name))
                except NotFound:
                    raise NotFound(f"No experiment named {name!r}. List them with `mloop experiments list`.") from None
        order = [order_by] if isinstance(order_by, str) else list(order_by or [])
        out = RunTable()
        cursor: str | None = None
        while True:
            want = _PAGE if max_results is None else min(_PAGE, max_results - len(out))
            page = self.store.search_runs(
                experiment_ids=exp_ids,
                filter=filter,
                order_by=order,
                max_results=want,
                cursor=cursor,
                include_deleted=include_deleted,
                deleted_only=deleted_only,
            )
            out.extend(page.items)
            cursor = page.next_cursor
            if cursor is None or (max_results is not None and len(out) >= max_results):
                return out

    def delete_run(self, run: str | Run | RunRecord) -> None:
        self.store.delete_run(self.resolve_run_id(run), actor=self.actor)

    def restore_run(self, run: str | Run | RunRecord) -> None:
        self.store.restore_run(self.resolve_run_id(run), actor=self.actor)

    def events(self, *, types: Sequence[str] | None = None, subject: str | None = None) -> list[Event]:
        return list(self._all(lambda c: self.store.list_events(types=types, subject=subject, cursor=c, limit=_PAGE)))

    # artifacts ------------------------------------------------------------------------------------------
    def record_files(self, run_id: str, files: Sequence[tuple[Path, str]]) -> list[ArtifactEntry]:
        """Upload files and record them on the run in one transaction (nothing recorded if one fails)."""
        from mloop.artifacts import normalize_artifact_path

        names = [normalize_artifact_path(name) for _, name in files]
        entries = []
        for (src, _), name in zip(files, names, strict=True):
            blob = self.artifacts.put_file(src)
            entries.append(ArtifactEntry(name, blob.digest, blob.size, now_ms()))
        self.store.record_artifacts(run_id, entries, actor=self.actor)
        return entries

    def record_bytes(self, run_id: str, data: bytes, name: str) -> ArtifactEntry:
        from mloop.artifacts import normalize_artifact_path

        path = normalize_artifact_path(name)
        blob = self.artifacts.put_bytes(data)
        entry = ArtifactEntry(path, blob.digest, blob.size, now_ms())
        self.store.record_artifacts(run_id, [entry], actor=self.actor)
        return entry

    def list_artifacts(self, run: str | Run | RunRecord) -> list[ArtifactEntry]:
        return self.store.list_artifacts(self.resolve_run_id(run))

    def _artifact(self, run_id: str, path: str) -> ArtifactEntry:
        from mloop.artifacts import normalize_artifact_path

        wanted = normalize_artifact_path(path)
        entries = self.store.list_artifacts(run_id)
        for entry in entries:
            if entry.path == wanted:
                return entry
        known = ", ".join(e.path for e in entries[:10]) or "none"
        raise NotFound(f"Run {run_id} has no artifact {path!r} (it has: {known}).")

    def read_artifact(self, run: str | Run | RunRecord, path: str) -> bytes:
        """The verified bytes of one artifact."""
        run_id = self.resolve_run_id(run)
        entry = self._artifact(run_id, path)
        return self.artifacts.get_bytes(entry.digest, name=f"run:{run_id}/{entry.path}")

    def download_artifacts(
        self, run: str | Run | RunRecord, path: str | None = None, dest: str | os.PathLike[str] = "."
    ) -> Path:
        """Download one artifact, or every artifact under ``path`` (all when ``None``), below ``dest``."""
        from mloop.artifacts import normalize_artifact_path

        run_id = self.resolve_run_id(run)
        root = Path(dest).resolve()
        entries = self.store.list_artifacts(run_id)
        if path is not None:
            prefix = normalize_artifact_path(path)
            entries = [e for e in entries if e.path == prefix or e.path.startswith(prefix + "/")]
            if not entries:
                raise NotFound(f"Run {run_id} has no artifact at {path!r}. List them with `mloop runs show`.")
        for entry in entries:
            target = (root / entry.path).resolve()
            if root not in target.parents:
                raise InvalidInput(f"Artifact path {entry.path!r} escapes {root}; refusing to write it.")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.artifacts.get_file(entry.digest, target, name=f"run:{run_id}/{entry.path}")
        if path is not None and len(entries) == 1 and entries[0].path == normalize_artifact_path(path):
            return root / entries[0].path
        return root if path is None else root / normalize_artifact_path(path)

    # helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _all(fetch: Callable[[str | None], Page[Any]]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            page = fetch(cursor)
            yield from page.items
            cursor = page.next_cursor
            if cursor is None:
                return
