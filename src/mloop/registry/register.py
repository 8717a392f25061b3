"""Registering a model a run logged as a model version: files, signature, environment and lineage.

A logged model is a folder of run artifacts (``model/`` by default) holding the flavor's files and
``mloop-model.json``. Registering it creates a model version that points at the same content-addressed blobs
(nothing is copied) and records the run, the dataset versions the run read or tried to read, the code commit
and the run's metrics. Logging the model (``run.log_model``) is tracking's part; this module needs only the
context, so the registry never imports tracking.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mloop.entities import ModelFile, ModelVersion
from mloop.errors import NotFound
from mloop.flavors import META_FILE

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["register_from_run"]


def _lineage_inputs(client: Context, run_id: str) -> list[str]:
    return sorted({e.source for e in client.store.list_lineage(f"run:{run_id}", direction="up")
                   if e.source.startswith("data:")})  # fmt: skip


def register_from_run(
    client: Context, run: str, name: str, *, path: str = "model", description: str = ""
) -> ModelVersion:
    """Register the model a run logged under ``path`` (``run:<id>/model`` on the command line)."""
    from mloop.artifacts import normalize_artifact_path

    run_id = client.resolve_run_id(run)
    prefix = normalize_artifact_path(path)
    entries = [e for e in client.store.list_artifacts(run_id) if e.path.startswith(prefix + "/")]
    meta_entry = next((e for e in entries if e.path == f"{prefix}/{META_FILE}"), None)
    if meta_entry is None:
        raise NotFound(
            f"Run {run_id} has no model at {path!r} (no {prefix}/{META_FILE}). Log one with run.log_model(model), "
            "or pass the artifact folder that holds it."
        )
    meta = json.loads(client.artifacts.get_bytes(meta_entry.digest, name=f"run:{run_id}/{meta_entry.path}"))
    files = tuple(ModelFile(e.path[len(prefix) + 1 :], e.size, e.digest) for e in entries)
    record = client.store.get_run(run_id)
    env_digest = record.environment_digest
    commit = None
    if env_digest is not None:
        git = client.store.get_environment(env_digest).get("git") or {}
        commit = git.get("commit")
    example = next((f.digest for f in files if f.path == meta.get("input_example")), None)
    version = client.store.create_model_version(
        name, flavor=meta["flavor"], files=files, actor=client.actor, run_id=run_id, source=f"run:{run_id}/{prefix}",
        signature=meta.get("signature"), input_example=example, environment=meta.get("environment") or {},
        params=meta.get("params") or dict(record.params), metrics=dict(record.metrics),
        datasets=_lineage_inputs(client, run_id), code_commit=commit, target=meta.get("target"),
        description=description,
    )  # fmt: skip
    client.store.add_lineage(f"run:{run_id}", version.ref, "output", actor=client.actor)
    return version
