"""Dataset and model versions in pipelines: dataset parameters, and versions returned by steps (references).

**A dataset parameter** is a keyword-only parameter annotated ``Dataset`` (``mloop.Dataset``, also exported as
:data:`DatasetRef`) whose value is a reference text, like Azure ML's ``Input(path="azureml:iris:2")``::

    @step
    def train(*, data: DatasetRef = "iris@latest", C: float = 1.0) -> LogisticRegression:
        frame = data.to_pandas()          # lineage `input` on the step's run; a private holdout is refused

The text is ``NAME``, ``NAME/VERSION``, ``NAME@ALIAS`` (``@latest``), ``NAME@VERSION`` (digits: a version, as in
Azure's ``iris:2``) or the same with ``data:`` in front. A pipeline run overrides it like any parameter
(``params={"train.data": "iris/3"}``, ``-p data=iris@champion``). The runner resolves it when the step is about to
run (so a version made by an upstream step is seen), and the step's cache key holds the resolved version (params)
and its content digest (inputs): a new version is a cache miss, and ``mloop pipelines explain`` names the change.
The step receives a :class:`~mloop.datasets.dataset.Dataset` and the version is recorded as an input of the step's
run before the step starts (a private holdout fails the step and is recorded as ``read-denied``). A reference that
does not resolve fails the step with the reason (the rest of the pipeline goes on, as for any failed step).
Type checkers accept ``data: Dataset = dataset_input("iris@latest")`` where a text default is refused.

**A version returned by a step** (a ``Dataset``, a ``DatasetVersion`` or a ``ModelVersion``) is stored as a small
JSON reference (kind, name, version, id and content digest), never a copy of the data, and loaded downstream as the
same kind of object, read again from the metadata store (a version deleted and re-created since is refused). The
reference's bytes hold the content digest, so a new version changes the downstream step's input digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from mloop.artifacts import hash_bytes
from mloop.datasets.dataset import Dataset
from mloop.errors import IntegrityError, InvalidInput, MloopError, shown
from mloop.refs import Ref, parse_ref

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.pipelines.step import Step

__all__ = [
    "BoundDatasets",
    "DatasetRef",
    "bind_datasets",
    "dataset_input",
    "dataset_params",
    "is_reference",
    "load_reference",
    "parse_dataset_ref",
    "reference_bytes",
]

DatasetRef = Dataset  # what a dataset parameter is annotated with, and what the step receives


def dataset_input(ref: str) -> Any:
    """``data: Dataset = dataset_input("iris@latest")``: the same as a text default, typed for type checkers."""
    if not isinstance(ref, str):
        raise InvalidInput(f"dataset_input({shown(ref)}) needs a reference text like 'iris@latest' or 'iris/2'.")
    return ref


def dataset_params(step: Step) -> list[str]:
    """The step's parameters annotated ``Dataset`` (or ``Dataset | None``): their values are dataset references."""
    return [name for name, p in step.params.items() if p.annotation is Dataset or Dataset in get_args(p.annotation)]


def parse_dataset_ref(text: str) -> Ref:
    """``iris``, ``iris/2``, ``iris@latest``, ``iris@2`` (a version) or any of them after ``data:``."""
    ref = parse_ref(text, default_kind="data")
    if ref.kind != "data":
        raise InvalidInput(
            f"Dataset parameter value {shown(text)} is a {ref.kind} reference. Use a dataset reference: NAME, "
            "NAME/VERSION or NAME@ALIAS (e.g. 'iris@latest')."
        )
    if ref.alias is not None and ref.alias.isdigit():
        return Ref("data", ref.name, version=int(ref.alias))
    return ref


@dataclass(frozen=True)
class BoundDatasets:
    """A step's parameters with its dataset parameters resolved (see the module docstring)."""

    params: dict[str, Any]  # the plain parameters, passed to the step as they are
    key_params: dict[str, Any]  # the key's params: each dataset parameter as the version it resolved to
    refs: dict[str, str]  # dataset parameter -> data:<name>/<version> (the text as given when it does not resolve)
    digests: dict[str, str]  # dataset parameter -> the version's content digest (part of the key's inputs)


def bind_datasets(context: Context, step: Step, params: dict[str, Any]) -> BoundDatasets:
    """Resolve the step's dataset parameters now; one that does not resolve makes the step fail when it runs."""
    names = [n for n in dataset_params(step) if params.get(n) is not None]
    plain = {k: v for k, v in params.items() if k not in names}
    key_params, refs, digests = dict(params), {}, {}
    for name in names:
        text, ref = params[name], None
        try:
            if not isinstance(text, str):
                raise InvalidInput(f"Dataset parameter {name!r} = {shown(text)} must be a reference text.")
            ref = parse_dataset_ref(text)
            version = context.store.get_dataset_version(ref.name, ref.version, ref.alias)
        except MloopError as exc:  # the worker reports it as the step's error (and records nothing else)
            refs[name] = str(ref) if ref is not None else text if isinstance(text, str) else repr(text)
            key_params[name] = {"unresolved": refs[name], "error": str(exc)}
            digests[name] = "unresolved"
            continue
        refs[name] = key_params[name] = version.ref
        digests[name] = version.manifest_digest
    return BoundDatasets(plain, key_params, refs, digests)


# -- versions as step outputs ---------------------------------------------------------------------------------
_KINDS = {"Dataset": "dataset", "DatasetVersion": "dataset", "ModelVersion": "model"}


def _kind(obj: Any) -> str | None:
    from mloop.entities import DatasetVersion, ModelVersion

    if isinstance(obj, (Dataset, DatasetVersion)):
        return "dataset"
    if isinstance(obj, ModelVersion):
        return "model"
    return None


def is_reference(obj: Any) -> bool:
    return type(obj).__module__.startswith("mloop.") and _kind(obj) is not None


def reference_bytes(obj: Any) -> bytes:
    """The JSON reference to a dataset or model version (canonical: equal versions give equal bytes)."""
    from mloop.entities import ModelVersion

    info = obj.info if isinstance(obj, Dataset) else obj
    if isinstance(info, ModelVersion):
        files = [[f.path, f.digest] for f in sorted(info.files, key=lambda f: f.path)]
        digest = hash_bytes(json.dumps(files, separators=(",", ":")).encode())
    else:
        digest = info.manifest_digest
    doc = {"object": type(obj).__name__, "ref": info.ref, "name": info.name, "version": info.version,
           "id": info.id, "digest": digest}  # fmt: skip
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def load_reference(data: bytes) -> Any:
    """The version a reference names, read from the store of the context in use, as the object that was stored."""
    from mloop.context import current_context

    doc = json.loads(data)
    context = current_context()
    kind = _KINDS.get(doc.get("object", ""))
    if kind == "model":
        found: Any = context.store.get_model_version(doc["name"], int(doc["version"]))
    elif kind == "dataset":
        found = context.store.get_dataset_version(doc["name"], int(doc["version"]))
    else:
        raise InvalidInput(f"Not a dataset or model version reference: {shown(doc)}.")
    if found.id != doc["id"]:
        raise IntegrityError(
            f"{doc['ref']} is not the version a step returned (id {doc['id']}, now {found.id}): it was deleted and "
            "made again. Re-run the step that returned it (`force=True` or `--force`)."
        )
    return Dataset(context, found) if doc["object"] == "Dataset" else found
