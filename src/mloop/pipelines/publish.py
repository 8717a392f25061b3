"""Publishing a pipeline: an immutable, numbered version of its definition, with a snapshot of its code.

::

    published = publish(client, "pipelines.py:train")      # pipeline:train/1 (or the same version again)
    published.version.params                               # STEP.NAME, type, default, required

The snapshot holds the pipeline file and every *project module* it imports, transitively (the modules whose
text is part of the steps' cache keys: neither standard library nor installed packages), each stored as a blob
in the artifact store under the path its module name gives (``helpers.py``, ``pkg/__init__.py``,
``pkg/sub.py``), and the source folders of its script steps (at their place relative to the pipeline file, which
they must sit under: :func:`mloop.pipelines.script.source_files`). Data files the code reads are not
snapshotted: data belongs in dataset versions.

The version records the code digest (of the snapshot's paths and blob digests), the parameters with their
defaults and types, the steps, the publisher, the time and the source file. ``digest`` identifies the whole
definition: publishing an identical definition again returns the existing version (``created`` False).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.context import Context
from mloop.entities import ManifestEntry, PipelineParam, PipelineVersion, PublishedPipeline, iter_pages
from mloop.errors import InvalidInput, shown
from mloop.pipelines.cachekey import Fingerprinter, canonical
from mloop.pipelines.pipeline import Pipeline, load_pipeline
from mloop.pipelines.script import source_files
from mloop.pipelines.worker import FILE_MODULE_PREFIX
from mloop.refs import parse_ref

__all__ = [
    "Published",
    "definition_params",
    "list_published",
    "list_versions",
    "publish",
    "set_alias",
    "snapshot_files",
    "split_spec",
]


@dataclass(frozen=True)
class Published:
    """What :func:`publish` made (``created``) or found (an identical definition was published before)."""

    version: PipelineVersion
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, **self.version.to_dict()}


def split_spec(spec: str) -> tuple[Path, str]:
    """``FILE.py:NAME`` -> (file, NAME); ``FILE.py`` -> (file, "")."""
    file, sep, name = spec.rpartition(":")
    if not sep or not file.endswith(".py"):
        file, name = spec, ""
    return Path(file).expanduser().resolve(), name


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "Any"
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def definition_params(pipeline: Pipeline) -> tuple[PipelineParam, ...]:
    """Every step parameter as ``STEP.NAME`` with its type's name and JSON default (refused if not JSON)."""
    out = []
    for step_name in pipeline.graph.order:
        for p in pipeline.graph.steps[step_name].params.values():
            default = None if p.required else p.default
            try:
                canonical(default)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"Step {step_name!r} parameter {p.name!r} has the default {shown(default)}, which is not JSON; "
                    "a published pipeline records its defaults. Use a JSON default (number, text, list, dict, None)."
                ) from None
            out.append(PipelineParam(f"{step_name}.{p.name}", _type_name(p.annotation), default, p.required))
    return tuple(out)


def _relative(module: str, origin: str) -> str:
    parts = module.split(".")
    if Path(origin).name == "__init__.py":
        return "/".join([*parts, "__init__.py"])
    return "/".join([*parts[:-1], Path(origin).name])


def snapshot_files(pipeline_file: Path) -> dict[str, Path]:
    """The snapshot's files: ``{path in the snapshot: file on disk}``, the pipeline file first (at the root).

    The pipeline file must have been loaded (:func:`~mloop.pipelines.pipeline.load_pipeline`); the project
    modules it imports are found the way cache keys find them (:class:`~mloop.pipelines.cachekey.Fingerprinter`).
    """
    module_name = FILE_MODULE_PREFIX + hashlib.sha256(str(pipeline_file).encode()).hexdigest()[:16]
    if module_name not in sys.modules:
        raise InvalidInput(f"Pipeline file {str(pipeline_file)!r} is not loaded; load it with load_pipeline first.")
    found = Fingerprinter().project_modules(module_name)  # the file's project modules, transitively, and packages
    found.pop(module_name, None)
    files: dict[str, Path] = {pipeline_file.name: pipeline_file}
    for name, origin in found.items():
        rel, path = _relative(name, origin), Path(origin)
        if files.get(rel, path) != path:
            raise InvalidInput(
                f"Cannot snapshot {str(pipeline_file)!r}: module {name!r} ({origin}) and {str(files[rel])!r} would "
                f"both be {rel!r} in the snapshot. Rename the pipeline file or the module."
            )
        files[rel] = path
    return files


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value).encode()).hexdigest()


def publish(ctx: Context, spec: str, *, name: str | None = None, description: str = "") -> Published:
    """Publish the pipeline ``FILE.py:NAME`` (``NAME`` optional when the file defines one) as ``name``
    (default: the pipeline's own name). See the module docstring."""
    path, variable = split_spec(spec)
    pipeline = load_pipeline(spec)
    if not variable:
        module = sys.modules[FILE_MODULE_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:16]]
        variable = next(k for k, v in vars(module).items() if v is pipeline)
    published_name = parse_ref(f"pipeline:{name or pipeline.name}").name
    params = definition_params(pipeline)
    entries = []
    files = snapshot_files(path)
    for rel, file in source_files(pipeline.steps.values(), path.parent).items():  # script steps' source folders
        files.setdefault(rel, file)
    for rel, file in files.items():
        data = file.read_bytes()  # read once: the digest and the stored bytes are the same content
        blob = ctx.artifacts.put_bytes(data)
        entries.append(ManifestEntry(rel, blob.size, blob.digest))
    entries.sort(key=lambda e: e.path)
    code_digest = _digest({e.path: e.digest for e in entries})
    steps = tuple(pipeline.graph.order)
    digest = _digest({"code": code_digest, "file": path.name, "variable": variable, "pipeline": pipeline.name,
                      "params": [p.to_dict() for p in params], "steps": steps})  # fmt: skip
    version, created = ctx.store.create_pipeline_version(
        published_name, digest=digest, code_digest=code_digest, file=path.name, variable=variable, files=entries,
        actor=ctx.actor, source=str(path), params=params, steps=steps, description=description,
    )  # fmt: skip
    return Published(version, created)


def list_published(ctx: Context) -> list[PublishedPipeline]:
    """Every published pipeline, by name."""
    return list(iter_pages(lambda cursor: ctx.store.list_pipelines(cursor=cursor)))


def list_versions(ctx: Context, name: str) -> list[PipelineVersion]:
    """The published versions of ``name``, newest first."""
    return list(iter_pages(lambda cursor: ctx.store.list_pipeline_versions(name, cursor=cursor)))


def set_alias(ctx: Context, name: str, version: int, alias: str) -> PipelineVersion:
    """Point ``name@alias`` at ``version`` (trigger ``name@alias``; schedules pin numbers)."""
    return ctx.store.set_pipeline_alias(name, alias, version, actor=ctx.actor)
