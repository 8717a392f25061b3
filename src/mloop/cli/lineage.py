"""``mloop lineage``: what a dataset version, run or model was made from, evaluated on, and what was made from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli.common import JsonOpt, open_client

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

    from mloop.datasets.lineage import LineageNode

__all__ = ["lineage"]

_KIND_STYLES = {"data": "cyan", "run": "yellow", "model": "green", "pipeline": "blue", "deployment": "magenta"}


def _label(node: LineageNode, arrow: str) -> Text:
    from rich.text import Text

    kind = node.ref.partition(":")[0]
    text = Text(node.ref, style=_KIND_STYLES.get(kind, ""))
    if node.relation is not None:
        text.append(f"  {arrow} {node.relation}", style="dim")
    if node.repeated:
        text.append("  (shown above)", style="dim italic")
    return text


def _add(tree: Tree, node: LineageNode, arrow: str) -> None:
    for child in node.children:
        _add(tree.add(_label(child, arrow)), child, arrow)


def lineage(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="data:<name>/<version> or @<alias>, run:<id>, model:<name>/<version> or @<alias>."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show what REF was made from, evaluated on, and used by.

    Upstream lists the sources REF was made from (a run's input datasets, a split's source, the run that
    logged a model); a model's evaluation datasets (the holdout) are listed apart, under "evaluated on";
    downstream lists what used REF (runs that read a dataset, splits, models a run registered, models
    evaluated on it), each with its relation. Aliases resolve to the version they point at; runs accept the
    first or last 8+ characters of their id. A reference that names nothing recorded is an error (exit 3).

    \b
    Examples:
      mloop lineage data:sensors@latest
      mloop lineage model:churn@production
      mloop lineage run:1a2b3c4d --json
    """
    from rich.tree import Tree

    from mloop.cli.output import cell, print_json, stdout_console
    from mloop.datasets.lineage import lineage_tree

    with open_client(ctx) as client:
        trees = lineage_tree(client, ref)
    if as_json:
        print_json({name: node.to_dict() for name, node in trees.items()})
        return
    console = stdout_console()
    up, evaluated, down = trees["upstream"], trees["evaluated_on"], trees["downstream"]
    sections = [("Upstream (made from)", up, "←", "nothing recorded upstream")]
    if evaluated.children or evaluated.ref.startswith("model:"):
        sections.append(("Evaluated on", evaluated, "←", "not evaluated yet"))
    sections.append(("Downstream (used by)", down, "→", "nothing recorded downstream"))
    for title, node, arrow, empty in sections:
        tree = Tree(cell(f"{title}: {node.ref}", "bold"))
        if node.children:
            _add(tree, node, arrow)
        else:
            tree.add(cell(empty, "dim"))
        console.print(tree)
