"""Triggering a published pipeline: run the code that was published, with parameter overrides, recording why.

::

    result = trigger("train", params={"fit.C": 0.5})                   # the newest version, as the current user
    result = trigger("train/3", triggered_by="schedule:nightly")       # or trigger("train", 3), "train@prod"

Parameters are checked against the published definition before anything runs (unknown names, missing required
ones, values of the wrong JSON type). The version's snapshot is materialised once into a private folder of the
workspace (``<local dir>/pipelines/<code digest>/``, every file verified against its digest on each use) and
the pipeline is loaded from there, so a trigger next month runs what was published, not today's working copy.
The pipeline run is tagged with what triggered it (``mloop.trigger``: ``user:<name>``, ``schedule:<name>``,
``rule:<id>`` ...) and the published version (``mloop.pipeline.published``: ``pipeline:<name>/<version>``).

While it runs, the snapshot's folder is first on ``sys.path`` and its modules replace same-named ones in
``sys.modules`` (both restored after): run one trigger at a time per process (the scheduler runs each fire in
a process of its own).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mloop.artifacts.digest import hash_file, parse_digest
from mloop.context import Context
from mloop.entities import PipelineParam, PipelineVersion
from mloop.errors import InvalidInput, shown
from mloop.pipelines.executors import Executor
from mloop.pipelines.pipeline import Pipeline, load_pipeline
from mloop.pipelines.results import PipelineResult
from mloop.refs import parse_ref
from mloop.tracking.client import Client

__all__ = ["TRIGGER_TAGS", "check_params", "materialise", "parse_overrides", "resolve_published", "trigger"]


class TRIGGER_TAGS:
    """Tags on a triggered pipeline run."""

    BY = "mloop.trigger"  # user:<name> | schedule:<name> | rule:<id> ...
    PUBLISHED = "mloop.pipeline.published"  # pipeline:<name>/<version>
    VERSION = "mloop.pipeline.version"
    FIRE_TIME = "mloop.trigger.fire_time"  # schedules: the nominal fire time (ISO 8601, UTC)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,), "dict": (dict,),
    "tuple": (list,),
}  # fmt: skip


def resolve_published(ctx: Context, name: str, version: int | None = None) -> PipelineVersion:
    """``NAME``, ``NAME/VERSION``, ``NAME@ALIAS`` or ``pipeline:...`` (``version`` given apart wins)."""
    ref = parse_ref(name, default_kind="pipeline")
    if ref.kind != "pipeline":
        raise InvalidInput(f"{name!r} is not a pipeline; use NAME, NAME/VERSION or pipeline:NAME/VERSION.")
    if version is not None:
        return ctx.store.get_pipeline_version(ref.name, version)
    return ctx.store.get_pipeline_version(ref.name, ref.version, ref.alias)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["fit.C=0.5", "name=text"]`` -> ``{"fit.C": 0.5, "name": "text"}``: each VALUE is JSON, else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInput(f"Parameter {item!r} is not KEY=VALUE. Write e.g. `-p train.C=0.5`.")
        try:
            out[key.strip()] = json.loads(text)
        except ValueError:
            out[key.strip()] = text
    return out


def _type_ok(type_name: str, value: Any) -> bool:
    wanted = _JSON_TYPES.get(type_name.partition("[")[0])
    if wanted is None or value is None:
        return True  # types that JSON cannot show, and None (Optional parameters), are not checked
    if isinstance(value, bool) and bool not in wanted:
        return False
    return isinstance(value, wanted)


def check_params(pv: PipelineVersion, params: Mapping[str, Any]) -> None:
    """Refuse what ``bind_params`` would refuse, from the published definition alone (no code loaded)."""
    by_name: dict[str, list[PipelineParam]] = {}
    for p in pv.params:
        by_name.setdefault(p.name, []).append(p)
        by_name.setdefault(p.name.rpartition(".")[2], []).append(p)
    known = sorted(by_name)
    given: set[str] = set()
    for key, value in params.items():
        if not isinstance(key, str) or key not in by_name:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise InvalidInput(
                f"Unknown parameter {shown(key)} for {pv.ref}.{hint} Known parameters: {known or 'none'} "
                f"(see `mloop pipelines versions {pv.name}`)."
            )
        for p in by_name[key]:
            given.add(p.name)
            if not _type_ok(p.type, value):
                raise InvalidInput(
                    f"Parameter {key!r} of {pv.ref} is {p.type}, got {shown(value)}. Pass a {p.type} value, "
                    f"e.g. -p {key}=VALUE with VALUE in JSON."
                )
    for p in pv.params:
        if p.required and p.name not in given:
            raise InvalidInput(f"{pv.ref} needs parameter {p.name!r} (it has no default). Pass it: -p {p.name}=VALUE.")


def materialise(ctx: Context, pv: PipelineVersion) -> Path:
    """The version's snapshot as files in a private folder of the workspace, verified (written once)."""
    _, hexdigest = parse_digest(pv.code_digest)
    root = ctx.settings.local_dir / "pipelines"
    folder = root / hexdigest[:32]
    if folder.is_dir():
        try:
            if all(hash_file(folder / f.path, parse_digest(f.digest)[0]) == f.digest for f in pv.files):
                return folder
        except OSError:
            pass
        shutil.rmtree(folder, ignore_errors=True)  # edited or half-removed: write it again
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        for f in pv.files:
            ctx.artifacts.get_file(f.digest, tmp / f.path, name=f"{pv.ref}/{f.path}")
        try:
            os.rename(tmp, folder)
        except OSError:  # another trigger wrote it first: use that one
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _module_names(pv: PipelineVersion) -> set[str]:
    names = set()
    for f in pv.files:
        if f.path == pv.file or not f.path.endswith(".py"):
            continue
        parts = f.path.removesuffix(".py").split("/")
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@contextmanager
def _loaded(folder: Path, pv: PipelineVersion) -> Iterator[Pipeline]:
    """The pipeline loaded from the snapshot; the snapshot's modules shadow the working copy's meanwhile."""
    names = _module_names(pv)

    def forget() -> None:
        for name in [m for m in sys.modules if m in names or m.partition(".")[0] in names]:
            del sys.modules[name]

    forget()
    entry = str(folder)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    try:
        yield load_pipeline(f"{folder / pv.file}:{pv.variable}")
    finally:
        if entry in sys.path:
            sys.path.remove(entry)
        forget()


def trigger(
    name: str,
    version: int | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    compute: str | Executor | None = None,
    triggered_by: str | None = None,
    client: Client | None = None,
    force: bool = False,
    tags: Mapping[str, str] | None = None,
) -> PipelineResult:
    """Run published pipeline ``name`` (see the module docstring); ``triggered_by`` defaults to ``user:<actor>``.

    ``compute`` is a compute target's name or an executor (default: the workspace's default target).

    ``tags`` are added to the pipeline run (the scheduler adds the nominal fire time).
    """
    own = client is None
    c = client if client is not None else Client()
    try:
        by = triggered_by or f"user:{c.actor}"
        kind, sep, who = by.partition(":")
        if not sep or not kind or not who:
            raise InvalidInput(f"triggered_by={shown(by)} must be KIND:WHO, e.g. 'user:alice' or 'schedule:nightly'.")
        pv = resolve_published(c, name, version)
        overrides = dict(params or {})
        check_params(pv, overrides)
        folder = materialise(c, pv)
        run_tags = {**dict(tags or {}), TRIGGER_TAGS.BY: by, TRIGGER_TAGS.PUBLISHED: pv.ref,
                    TRIGGER_TAGS.VERSION: str(pv.version)}  # fmt: skip
        with _loaded(folder, pv) as pipeline:
            return pipeline.run(overrides, force=force, compute=compute, client=c, tags=run_tags)
    finally:
        if own:
            c.close()
