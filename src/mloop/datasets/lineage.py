"""Lineage graphs: what a reference was made from (upstream) and what was made from it (downstream).

Edges are recorded by dataset readers inside runs (``data:x/1`` → ``run:…``, ``input``), by
``Run.use_dataset``, by splits (``data:x/1`` → ``data:x-train/1``) and by the registry (``run:…`` → ``model:…``
``output``; ``data:…`` → ``model:…`` ``evaluated_on``, shown apart from what the model was made from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.refs import parse_ref

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["EVALUATION_RELATIONS", "LineageNode", "canonical_ref", "delete_dataset_version", "lineage_tree"]

_MAX_DEPTH = 25
EVALUATION_RELATIONS = frozenset({"evaluated_on"})  # model ← data it was scored on: not "made from"


@dataclass
class LineageNode:
    ref: str
    relation: str | None = None
    children: list[LineageNode] = field(default_factory=list)
    repeated: bool = False  # already shown elsewhere in this tree (the graph is a DAG)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref}
        if self.relation is not None:
            out["relation"] = self.relation
        if self.repeated:
            out["repeated"] = True
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


def canonical_ref(client: Context, text: str) -> str:
    """The canonical form of an existing reference: ``data:x@latest`` → ``data:x/4``, ``run:01ab…`` → full id.

    Raises :class:`NotFound` when the reference names nothing recorded.
    """
    ref = parse_ref(text)
    if ref.kind == "data":
        return client.store.get_dataset_version(ref.name, ref.version, ref.alias).ref
    if ref.kind == "run":
        run_id = client.resolve_run_id(ref.name)
        if len(ref.name) == len(run_id):  # a full id is taken as it is: look it up
            client.store.get_run(run_id)
        return f"run:{run_id}"
    if ref.kind == "model":
        if ref.version is None and ref.alias is None:
            raise InvalidInput(f"Give a model version or alias ({text} has neither): model:<name>/<version>.")
        return client.store.get_model_version(ref.name, ref.version, ref.alias).ref
    if ref.kind == "experiment":
        return f"experiment:{client.store.get_experiment_by_name(ref.name).name}"
    if ref.kind == "pipeline":
        return client.store.get_pipeline_version(ref.name, ref.version, ref.alias).ref
    if ref.kind == "deployment":
        return client.store.get_endpoint(ref.name).ref
    if ref.kind == "monitor":
        return client.store.get_monitor(ref.name).ref
    if ref.kind == "automation":
        return client.store.get_automation(ref.name).ref
    raise NotFound(
        f"Nothing is recorded for {text!r}: this store has no {ref.kind}s yet. Lineage covers data:, run:, "
        "model:, pipeline:, experiment:, deployment:, monitor: and automation: "
        "references (list them with `mloop data list`, `mloop runs list`, "
        "`mloop models list`, `mloop pipelines published`)."
    )


def _grow(client: Context, node: LineageNode, direction: str, seen: set[str], depth: int) -> None:
    if depth >= _MAX_DEPTH:
        return
    for edge in client.store.list_lineage(node.ref, direction=direction):
        if direction == "up" and edge.relation in EVALUATION_RELATIONS:
            continue  # a model is not made from the data it was evaluated on
        other = edge.source if direction == "up" else edge.target
        child = LineageNode(other, edge.relation)
        node.children.append(child)
        if other in seen:
            child.repeated = True
            continue
        seen.add(other)
        _grow(client, child, direction, seen, depth + 1)


def lineage_tree(client: Context, text: str) -> dict[str, LineageNode]:
    """``{"upstream": …, "downstream": …, "evaluated_on": …}`` trees rooted at the (canonical) reference.

    Upstream is what the reference was made from; evaluations (``evaluated_on`` edges) are not derivations,
    so they are listed apart, one level deep. Raises :class:`NotFound` for a reference that names nothing.
    """
    ref = canonical_ref(client, text)
    trees = {}
    for name, direction in (("upstream", "up"), ("downstream", "down")):
        root = LineageNode(ref)
        _grow(client, root, direction, {ref}, 0)
        trees[name] = root
    evaluated = LineageNode(ref)
    for edge in client.store.list_lineage(ref, direction="up"):
        if edge.relation in EVALUATION_RELATIONS:
            evaluated.children.append(LineageNode(edge.source, edge.relation))
    trees["evaluated_on"] = evaluated
    return trees


def _models_downstream(client: Context, ref: str) -> list[str]:
    tree = lineage_tree(client, ref)["downstream"]
    found: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.ref.startswith("model:") and node.ref not in found:
            found.append(node.ref)
        stack.extend(node.children)
    return sorted(found)


def delete_dataset_version(client: Context, text: str, *, force: bool = False) -> str:
    """Delete a version unless a registered model depends on it (``force`` overrides). Returns its ref.

    The bytes stay until ``mloop gc`` finds nothing else references them.
    """
    ref = parse_ref(canonical_ref(client, str(parse_ref(text, default_kind="data"))))
    if ref.kind != "data" or ref.version is None:
        raise InvalidInput(f"{text!r} is not a dataset version; use data:<name>/<version>.")
    models = _models_downstream(client, str(ref))
    if models and not force:
        raise Conflict(
            f"{ref} is used by {', '.join(models)}; deleting it would break their lineage. "
            "Archive those models first, or pass --force to delete anyway."
        )
    return client.store.delete_dataset_version(ref.name, ref.version, actor=client.actor).ref
