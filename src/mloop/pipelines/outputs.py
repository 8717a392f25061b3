"""A finished step's outputs as artifacts of its run, so ``mloop gc`` keeps them and users can list and download them.

Each output is recorded as ``pipeline-outputs/NAME`` (its stored blob: the materialised bytes, or the manifest of
a file / folder output) and, for a file or folder, each file it holds as ``pipeline-outputs/NAME.files/PATH``.
gc keeps every blob a live run's artifacts point at; a cached step points at the run that made its outputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mloop.entities import ArtifactEntry
from mloop.entities.ids import now_ms
from mloop.tracking.client import Client

__all__ = ["PREFIX", "record_outputs"]

PREFIX = "pipeline-outputs"


def output_entries(client: Client, outputs: Mapping[str, Mapping[str, Any]]) -> list[ArtifactEntry]:
    """The artifact entries of ``outputs`` (name -> stored output as in the ``mloop.pipeline.outputs`` tag)."""
    from mloop.pipelines.files import FORMAT

    at = now_ms()
    entries = []
    for name, out in sorted(outputs.items()):
        entries.append(ArtifactEntry(f"{PREFIX}/{name}", out["digest"], int(out["size"]), at))
        if out.get("materialiser") != "path":
            continue
        manifest = json.loads(client.artifacts.get_bytes(out["digest"]))
        if manifest.get("format") != FORMAT:
            continue
        for rel, digest, size, _executable in manifest["files"]:
            entries.append(ArtifactEntry(f"{PREFIX}/{name}.files/{rel}", digest, int(size), at))
    return entries


def record_outputs(client: Client, run_id: str, outputs: Mapping[str, Mapping[str, Any]]) -> None:
    """Record ``outputs`` as artifacts of the step run ``run_id`` (one store write, one ``artifact.logged`` event)."""
    entries = output_entries(client, outputs)
    if entries:
        client.store.record_artifacts(run_id, entries, actor=client.actor)
