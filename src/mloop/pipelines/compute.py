"""Compute targets: named places where pipeline steps run, stored in the workspace (``mloop compute ...``).

Two types: ``local`` (a process pool on this machine; ``max_workers``) and ``dask`` (``address`` of a running
scheduler, or a local cluster mloop starts: ``min_workers``, ``max_workers``, ``threads_per_worker``,
``memory_limit`` bytes). The built-in target ``local`` always exists and is the default until another is made
the default. ``pipeline.run(compute=NAME)`` and ``mloop pipelines run --compute NAME`` pick one.

The targets are one workspace setting (``compute.targets``, a JSON document), so they need no schema of their
own; each change records one event (``compute.created``, ``compute.deleted``, ``compute.default_set``) about
``compute:<name>`` in the same transaction. Each change is a compare-and-set of the document it read
(``set_setting(..., expected=...)``); a writer that lost the race reads again and re-applies its change, so
concurrent changes all land.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound, shown
from mloop.pipelines.executors import Executor

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = [
    "BUILTIN",
    "SETTING",
    "TYPES",
    "ComputeEvents",
    "ComputeTarget",
    "create_target",
    "delete_target",
    "get_target",
    "list_targets",
    "parse_bytes",
    "resolve_executor",
    "set_default_target",
]

SETTING = "compute.targets"
BUILTIN = "local"
_CAS_ATTEMPTS = 50  # concurrent writers of the targets document: re-read and re-apply this many times at most
TYPES: dict[str, tuple[str, ...]] = {  # type -> the parameters it takes
    "local": ("max_workers",),
    "dask": ("address", "min_workers", "max_workers", "threads_per_worker", "memory_limit"),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


class ComputeEvents:
    CREATED = "compute.created"
    DELETED = "compute.deleted"
    DEFAULT_SET = "compute.default_set"


@dataclass(frozen=True)
class ComputeTarget:
    """A named compute target: its type and parameters; ``default`` when runs use it unless told otherwise."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "params": dict(self.params), "default": self.default,
                "builtin": self.builtin}  # fmt: skip

    def executor(self) -> Executor:
        """A new executor for this target (nothing starts until a step is submitted)."""
        if self.type == "dask":
            from mloop.pipelines.executors.dask import DaskExecutor

            return DaskExecutor(**self.params, target=self.name)
        from mloop.pipelines.executors.local import LocalExecutor

        return LocalExecutor(max_workers=self.params.get("max_workers"))


def parse_bytes(value: str | int) -> int:
    """``4000000000``, ``"4GB"``, ``"512MiB"`` -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
        if match is None or match.group(2).lower() not in _UNITS:
            raise InvalidInput(f"Memory size {shown(value)} is not understood. Use bytes or e.g. '4GB', '512MiB'.")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size < 1:
        raise InvalidInput(f"Memory size {shown(value)} must be at least 1 byte, e.g. '4GB'.")
    return size


def _read(ctx: Context) -> tuple[str | None, dict[str, Any]]:
    text = ctx.store.get_setting(SETTING)
    doc = json.loads(text) if text else {}
    return text, {"default": doc.get("default", BUILTIN), "targets": dict(doc.get("targets", {}))}


def _document(ctx: Context) -> dict[str, Any]:
    return _read(ctx)[1]


_Change = Callable[[dict[str, Any]], tuple[str, str, dict[str, Any]]]


def _update(ctx: Context, change: _Change) -> None:
    """Read the targets, apply ``change`` (it edits the document, returns its event, name and payload), store it
    with a compare-and-set; another writer in between -> read again and re-apply, so no change is lost."""
    for _ in range(_CAS_ATTEMPTS):
        text, doc = _read(ctx)
        event, name, payload = change(doc)
        new = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        try:
            ctx.store.set_setting(SETTING, new, actor=ctx.actor, event=event, subject=f"compute:{name}",
                                  payload=payload, expected=text)  # fmt: skip
            return
        except Conflict:
            continue
    raise Conflict(f"Compute targets changed {_CAS_ATTEMPTS} times while this change was applied; run it again.")


def _target(doc: dict[str, Any], name: str) -> ComputeTarget | None:
    if name == BUILTIN:
        return ComputeTarget(BUILTIN, "local", {}, doc["default"] == BUILTIN, builtin=True)
    spec = doc["targets"].get(name)
    if spec is None:
        return None
    return ComputeTarget(name, spec["type"], dict(spec.get("params", {})), doc["default"] == name)


def list_targets(ctx: Context) -> list[ComputeTarget]:
    """Every target, ``local`` first, then by name."""
    doc = _document(ctx)
    names = [BUILTIN, *sorted(n for n in doc["targets"] if n != BUILTIN)]
    return [t for n in names if (t := _target(doc, n)) is not None]


def get_target(ctx: Context, name: str) -> ComputeTarget:
    doc = _document(ctx)
    found = _target(doc, name) if isinstance(name, str) else None
    if found is None:
        known = [BUILTIN, *sorted(doc["targets"])]
        raise NotFound(
            f"No compute target {shown(name)}; targets are {known}. Create it with "
            "`mloop compute create NAME --type dask ...` or list them with `mloop compute list`."
        )
    return found


def _check_params(kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    owner = f"Compute target {name!r}"
    unknown = sorted(set(params) - set(TYPES[kind]))
    if unknown:
        raise InvalidInput(f"{owner}: type {kind!r} takes {list(TYPES[kind])}, not {unknown}. Drop them.")
    out: dict[str, Any] = {}
    for key, given in params.items():
        if key == "address":
            if not isinstance(given, str) or not re.fullmatch(r"[a-z0-9+]+://\S+", given):
                raise InvalidInput(f"{owner}: address={shown(given)} must be like 'tcp://HOST:8786'.")
            out[key] = given
            continue
        value = parse_bytes(given) if key == "memory_limit" else given
        low = 0 if key == "min_workers" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInput(f"{owner}: {key}={shown(value)} must be an integer >= {low}.")
        out[key] = value
    if "address" in out and len(out) > 1:
        raise InvalidInput(
            f"{owner}: an address connects to a cluster that already exists, so {sorted(set(out) - {'address'})} "
            "cannot apply. Give either --address, or the local cluster's sizes (--min-workers, --max-workers ...)."
        )
    if out.get("min_workers", 0) > out.get("max_workers", out.get("min_workers", 0)):
        raise InvalidInput(
            f"{owner}: min_workers={out['min_workers']} is more than max_workers={out['max_workers']}. "
            "Lower --min-workers or raise --max-workers."
        )
    return out


def create_target(
    ctx: Context, name: str, type: str, params: dict[str, Any] | None = None, *, default: bool = False
) -> ComputeTarget:
    """Store a new target (validated first); ``default=True`` also makes it the workspace's default."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"Compute target name {shown(name)} is not valid. Use letters, digits, '_', '-', '.' "
                           "(at most 64, starting with a letter or digit).")  # fmt: skip
    if type not in TYPES:
        raise InvalidInput(f"Compute target type {shown(type)} is not known. Use one of {sorted(TYPES)}.")
    clean = _check_params(type, name, {k: v for k, v in (params or {}).items() if v is not None})

    def change(doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        if name == BUILTIN or name in doc["targets"]:
            what = "is built in" if name == BUILTIN else "exists already"
            raise AlreadyExists(f"Compute target {name!r} {what}. Pick another name, or delete it first "
                                f"(`mloop compute delete {name}`).")  # fmt: skip
        doc["targets"][name] = {"type": type, "params": clean}
        if default:
            doc["default"] = name
        return ComputeEvents.CREATED, name, {"name": name, "type": type, "params": clean, "default": default}

    _update(ctx, change)
    return ComputeTarget(name, type, clean, default)


def delete_target(ctx: Context, name: str) -> ComputeTarget:
    """Remove a target; if it was the default, ``local`` becomes the default again."""
    target = get_target(ctx, name)
    if target.builtin:
        raise InvalidInput(f"Compute target {BUILTIN!r} is built in and cannot be deleted.")

    def change(doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        if name not in doc["targets"]:
            raise NotFound(f"Compute target {name!r} was deleted by another writer meanwhile; nothing to do.")
        del doc["targets"][name]
        was_default = doc["default"] == name
        if was_default:
            doc["default"] = BUILTIN
        return ComputeEvents.DELETED, name, {"name": name, "was_default": was_default}

    _update(ctx, change)
    return target


def set_default_target(ctx: Context, name: str) -> ComputeTarget:
    """Make ``name`` the target runs use when they name none."""
    get_target(ctx, name)

    def change(doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        if name != BUILTIN and name not in doc["targets"]:
            raise NotFound(f"Compute target {name!r} was deleted by another writer meanwhile; create it again.")
        doc["default"] = name
        return ComputeEvents.DEFAULT_SET, name, {"name": name}

    _update(ctx, change)
    return get_target(ctx, name)


def resolve_executor(ctx: Context, compute: str | Executor | None) -> Executor:
    """An executor given as is; a target's name -> its executor; ``None`` -> the workspace's default target."""
    if compute is None:
        return get_target(ctx, _document(ctx)["default"]).executor()
    if isinstance(compute, str):
        return get_target(ctx, compute).executor()
    if not isinstance(compute, Executor):
        raise InvalidInput(f"compute={shown(compute)} is neither a compute target's name nor an executor "
                           "(LocalExecutor, DaskExecutor). List targets with `mloop compute list`.")  # fmt: skip
    return compute
